package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestEvictedDetector(t *testing.T) {
	const (
		caAdvice = `batch pod disrupted by a cluster-autoscaler scale-down: add the annotation cluster-autoscaler.kubernetes.io/safe-to-evict: "false" to the pod template so its node is not scaled down while it runs`
	)
	runDetectorCases(t, EvictedPlugin(), nil, "testdata/pods/evicted.json", []detectorCase{{
		name: "kubelet memory-pressure eviction", namespace: "airflow", pod: "etl-daily-aggregate-9c4vx1tn",
		want: []wantFinding{{evidence: []string{
			"pod evicted by the kubelet: node ip-10-0-4-203.ec2.internal was low on memory (phase Failed)",
			"container base used 3.4Gi of memory against a request of 1Gi: under node pressure the kubelet evicts first the pods using most above their requests; raise the request towards the usage",
			"message: The node was low on resource: memory. Threshold quantity: 100Mi, available: 87232Ki. Container base was using 3513364Ki, request is 1Gi, has larger consumption of memory.",
			"condition DisruptionTarget=True (TerminationByKubelet) at 2026-11-20T02:08:31Z",
		}}},
		absent: []string{"safe-to-evict", "do-not-disrupt"}, // an annotation does not stop the kubelet
	}, {
		name: "cluster-autoscaler scale-down of an Airflow worker", namespace: "airflow", pod: "ml-features-train-5k1j8d2q",
		want: []wantFinding{{evidence: []string{
			"condition DisruptionTarget=True (EvictionByEvictionAPI) at 2026-11-20T02:11:40Z: Eviction API: evicting",
			"event ScaleDown (last 02:11:40Z) from cluster-autoscaler: deleting pod for node scale down",
			caAdvice,
		}}},
	}, {
		name: "Karpenter expiry of a driver that had do-not-disrupt", namespace: "spark-jobs", pod: "ledger-reconcile-driver",
		want: []wantFinding{{evidence: []string{
			`the pod had karpenter.sh/do-not-disrupt: "true" and was disrupted anyway: a drain, a forced expiry or an explicit eviction does not honour it`,
		}, mentions: []string{"event Disrupted (last 02:15:00Z) from karpenter: Deleting the pod to accommodate the terminationTime"}}},
	}, {
		name: "drain of a worker that had safe-to-evict false", namespace: "airflow", pod: "billing-invoices-render-4m8q1z5t",
		want: []wantFinding{{evidence: []string{
			`the pod had cluster-autoscaler.kubernetes.io/safe-to-evict: "false" and was disrupted anyway: a drain, a forced expiry or an explicit eviction does not honour it`,
		}}},
	}, {
		name: "preempted service pod: no batch advice", namespace: "monitoring", pod: "metrics-exporter-58f6c7d9b4-tq2lm",
		want: []wantFinding{{evidence: []string{
			"condition DisruptionTarget=True (PreemptionByScheduler) at 2026-11-20T02:19:12Z: default-scheduler: preempting to accommodate a higher priority pod",
		}, mentions: []string{"event Preempted (last 02:19:12Z) from default-scheduler"}}},
		absent: []string{"annotation"},
	}, {
		name: "running worker", namespace: "airflow", pod: "etl-daily-report-5j7x2c9p",
	}})

	runDetectorCases(t, EvictedPlugin(), nil, "testdata/pods/sigkill.json", []detectorCase{{
		// SIGKILL is more specific for this pod: the engine keeps that one.
		name: "node shutdown", namespace: "airflow", pod: "etl-hourly-extract-p0x8k2dw",
		want: []wantFinding{{evidence: []string{"node ip-10-0-7-44.ec2.internal shut down while the pod ran"}}},
	}, {
		name: "liveness kill is no disruption", namespace: "airflow", pod: "etl-daily-transform-7hq2mz4c",
	}})
}

func TestEvictedAdvice(t *testing.T) {
	d := loadFixture(t, "testdata/pods/evicted.json")
	view := d.View()

	// Karpenter, no annotation: Karpenter's annotation.
	driver := fixturePod(t, d, "spark-jobs", "ledger-reconcile-driver").DeepCopy()
	driver.Annotations = nil
	got := EvictedDetector{}.Detect(Input{Pod: driver, View: view, Now: nightNow})
	require.Len(t, got, 1)
	assert.Contains(t, got[0].Evidence, `batch pod disrupted by Karpenter: add the annotation karpenter.sh/do-not-disrupt: "true" to the pod template so its node is not disrupted while it runs`)

	// The Eviction API, by whom unknown: both annotations.
	worker := fixturePod(t, d, "airflow", "billing-invoices-render-4m8q1z5t").DeepCopy()
	delete(worker.Annotations, AnnotationSafeToEvict)
	got = EvictedDetector{}.Detect(Input{Pod: worker, View: view, Now: nightNow})
	require.Len(t, got, 1)
	assert.Contains(t, got[0].Evidence, `batch pod disrupted by the Eviction API: add the annotation cluster-autoscaler.kubernetes.io/safe-to-evict: "false" (cluster-autoscaler) or karpenter.sh/do-not-disrupt: "true" (Karpenter) to the pod template so its node is not scaled down while it runs`)

	// Not a batch pod: no advice.
	svc := fixturePod(t, d, "airflow", "ml-features-train-5k1j8d2q").DeepCopy()
	svc.Labels = map[string]string{"app": "api"}
	got = EvictedDetector{}.Detect(Input{Pod: svc, View: view, Now: nightNow})
	require.Len(t, got, 1)
	assert.False(t, anyContains(got[0].Evidence, "annotation"), "%q", got[0].Evidence)
}

func TestEvictedResource(t *testing.T) {
	for msg, want := range map[string]string{
		"The node was low on resource: memory. Threshold quantity: 100Mi, available: 87232Ki. ":       "memory",
		"The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 8Gi. ": "ephemeral-storage",
		"The node was low on resource: pids. ":                                                        "pids",
		"The node had condition: [DiskPressure]. ":                                                    "",
	} {
		var got string
		if m := evictedResource.FindStringSubmatch(msg); m != nil {
			got = m[1]
		}
		assert.Equal(t, want, got, msg)
	}
	assert.Equal(t, "3.4Gi", humanQuantity("3513364Ki"))
	assert.Equal(t, "512Mi", humanQuantity("524288Ki"))
	assert.Equal(t, "12Ki", humanQuantity("12Ki"))
}

// TestEvictedIgnoresForgedEvents: an Event is evidence, never a trigger on its own. A running
// pod named by a Preempted event from any source, a ScaleDown that mentions the autoscaler in
// its text, or even a real-looking Karpenter event is not evicted while its own state says it
// runs undisturbed; the Karpenter event counts once the pod is being deleted.
func TestEvictedIgnoresForgedEvents(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "airflow", Name: "etl-load-1", UID: "u1",
		Labels: map[string]string{"kubernetes_executor": "True"}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	ev := func(reason, component, msg string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "airflow", Name: reason + component},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "airflow", Name: "etl-load-1", UID: "u1"},
			Reason:         reason, Message: msg, Source: corev1.EventSource{Component: component},
			LastTimestamp: metav1.NewTime(nightNow.Add(-time.Minute))}
	}
	for name, e := range map[string]*corev1.Event{
		"Preempted from anyone":       ev("Preempted", "mallory", "Preempted by a higher priority pod"),
		"ScaleDown naming the scaler": ev("ScaleDown", "mallory", "deleting pod for node scale down (cluster-autoscaler)"),
		"Karpenter on a running pod":  ev("Disrupted", "karpenter", "Deleting the pod to accommodate the terminationTime"),
	} {
		view := NewStaticView([]*corev1.Pod{pod}, nil, []*corev1.Event{e})
		assert.Empty(t, EvictedDetector{}.Detect(Input{Pod: pod, View: view, Now: nightNow}), name)
	}

	deleting := pod.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: nightNow.Add(-30 * time.Second)}
	karpenter := ev("Disrupted", "karpenter", "Deleting the pod to accommodate the terminationTime")
	got := EvictedDetector{}.Detect(Input{Pod: deleting, View: NewStaticView([]*corev1.Pod{deleting}, nil, []*corev1.Event{karpenter}), Now: nightNow})
	require.Len(t, got, 1, "Karpenter's event on a pod it is deleting")
	forged := ev("Preempted", "mallory", "Preempted")
	assert.Empty(t, EvictedDetector{}.Detect(Input{Pod: deleting, View: NewStaticView([]*corev1.Pod{deleting}, nil, []*corev1.Event{forged}), Now: nightNow}),
		"a Preempted event from anyone on a pod deleted for another reason")
}
