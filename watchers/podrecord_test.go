package watchers

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/internal/bench/podgen"
)

func TestPodRecordHoldsTheTrimmedPod(t *testing.T) {
	for i, p := range []*corev1.Pod{podgen.Stored("airflow", 3, false), podgen.Stored("airflow", 4, true), airflowPod("a", "b")} {
		obj, err := Transform(p)
		require.NoError(t, err)
		r, ok := obj.(*podRecord)
		require.True(t, ok, "pods are cached as records")
		want, err := json.Marshal(TrimPod(p))
		require.NoError(t, err)
		got, err := r.JSON()
		require.NoError(t, err)
		require.JSONEq(t, string(want), string(got), "pod %d", i)
		pod, err := r.Pod()
		require.NoError(t, err)
		require.Equal(t, p.Name, pod.Name)
		require.Equal(t, p.UID, pod.UID)
		require.Equal(t, p.ResourceVersion, r.GetResourceVersion())
		require.Less(t, len(r.deflated), len(got)/3, "compressed against the dictionary")
	}
}

func TestTrimPodKeepsWhatDetectorsRead(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	p := podgen.Stored("airflow", 5, true)
	p.Spec.InitContainers[0].RestartPolicy = &always
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "EvictionByEvictionAPI"})
	got := TrimPod(p)
	require.Equal(t, &always, got.Spec.InitContainers[0].RestartPolicy, "sidecars are told apart by their restart policy")
	require.Equal(t, "2Gi", got.Spec.Containers[0].Resources.Limits.Memory().String())
	require.Equal(t, "2Gi", got.Spec.Containers[0].Resources.Requests.Memory().String())
	require.NotContains(t, got.Spec.Containers[0].Resources.Requests, corev1.ResourceCPU, "only memory is read")
	var types []corev1.PodConditionType
	for _, c := range got.Status.Conditions {
		types = append(types, c.Type)
	}
	require.ElementsMatch(t, []corev1.PodConditionType{corev1.PodInitialized, corev1.PodScheduled, corev1.DisruptionTarget}, types)
	require.Equal(t, "OOMKilled", got.Status.ContainerStatuses[0].State.Terminated.Reason)
	require.Equal(t, map[string]string{"dag_id": p.Annotations["dag_id"], "task_id": p.Annotations["task_id"], "run_id": p.Annotations["run_id"],
		"try_number": p.Annotations["try_number"], "cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}, got.Annotations)
}

func TestFingerprintIgnoresTheResourceVersion(t *testing.T) {
	a := podgen.Stored("airflow", 6, false)
	b := a.DeepCopy()
	b.ResourceVersion = "999999"
	b.Status.PodIP = "10.9.9.9"                    // trimmed
	b.Status.Conditions[2].Status = "False"        // Ready: trimmed
	b.Annotations["prometheus.io/scrape"] = "true" // trimmed
	ra, err := newPodRecord(a)
	require.NoError(t, err)
	rb, err := newPodRecord(b)
	require.NoError(t, err)
	require.Equal(t, ra.fingerprint, rb.fingerprint)
	b.Status.ContainerStatuses[0].RestartCount = 1
	rc, err := newPodRecord(b)
	require.NoError(t, err)
	require.NotEqual(t, ra.fingerprint, rc.fingerprint)
}

func TestWatcherSkipsUpdatesDetectorsCannotSee(t *testing.T) {
	existing := airflowPod("airflow", "etl-load-1")
	existing.ResourceVersion = "1"
	client := fake.NewClientset(existing)
	rec, _, _ := start(t, client, Options{Cluster: "prod"})
	require.Eventually(t, func() bool { return rec.find(bus.KindPod, "etl-load-1", bus.Resync) != nil }, 5*time.Second, 10*time.Millisecond)

	ctx := context.Background()
	p := existing.DeepCopy()
	p.ResourceVersion = "2"
	p.Status.PodIP = "10.0.0.7"
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	_, err := client.CoreV1().Pods("airflow").UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	p.ResourceVersion = "3"
	p.Status.Phase = corev1.PodFailed
	_, err = client.CoreV1().Pods("airflow").UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rec.find(bus.KindPod, "etl-load-1", bus.Updated) != nil }, 5*time.Second, 10*time.Millisecond)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	var updates []string
	for _, o := range rec.obs {
		if o.Type == bus.Updated {
			updates = append(updates, o.ResourceVersion)
		}
	}
	require.Equal(t, []string{"3"}, updates, "the IP and Ready change is not published; the phase change is")
}

func TestWatcherLeavesOutTheEventsOfEveryPodStart(t *testing.T) {
	client := fake.NewClientset()
	rec, w, _ := start(t, client, Options{})
	ctx := context.Background()
	for _, r := range []string{"Scheduled", "Pulled", "Started", "Killing", "FailedMount"} {
		_, err := client.CoreV1().Events("airflow").Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Namespace: "airflow", Name: "etl-1." + r},
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "airflow", Name: "etl-1", UID: "u1"}, Reason: r,
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return rec.find(bus.KindEvent, "etl-1.FailedMount", bus.Added) != nil }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return rec.find(bus.KindEvent, "etl-1.Killing", bus.Added) != nil }, 5*time.Second, 10*time.Millisecond)
	require.Nil(t, rec.find(bus.KindEvent, "etl-1.Scheduled", bus.Added))
	require.Nil(t, rec.find(bus.KindEvent, "etl-1.Started", bus.Added))
	var reasons []string
	for _, e := range w.EventsFor("Pod", "airflow", "etl-1", "u1") {
		if e.Reason == "Killing" || e.Reason == "FailedMount" {
			reasons = append(reasons, e.Reason)
		}
	}
	require.ElementsMatch(t, []string{"Killing", "FailedMount"}, reasons)
}

func TestResyncPassesRepublishWithoutTheQueue(t *testing.T) {
	existing := airflowPod("airflow", "etl-load-1")
	existing.ResourceVersion = "1"
	client := fake.NewClientset(existing)
	rec, w, _ := start(t, client, Options{Cluster: "prod", Resync: 200 * time.Millisecond})
	epochs := func() map[int64]bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		out := map[int64]bool{}
		for _, o := range rec.obs {
			if o.Type == bus.Resync && o.Name == "etl-load-1" {
				out[o.Epoch] = true
			}
		}
		return out
	}
	require.Eventually(t, func() bool { return len(epochs()) >= 3 }, 5*time.Second, 10*time.Millisecond,
		"the initial list and the following periods are each published once")
	require.Eventually(t, w.Idle, time.Second, 5*time.Millisecond)
}

// batchRecorder is a recorder that also takes batches, as the bus does.
type batchRecorder struct {
	recorder
	batches atomic.Int64
}

func (r *batchRecorder) PublishObservations(ctx context.Context, obs []*bus.Observation) []error {
	r.batches.Add(1)
	errs := make([]error, len(obs))
	for i, o := range obs {
		errs[i] = r.PublishObservation(ctx, o)
	}
	return errs
}

func TestResyncPassesPublishInBatches(t *testing.T) {
	var pods []runtime.Object
	for i := range 600 {
		pods = append(pods, podgen.Stored("airflow", i, false))
	}
	rec := &batchRecorder{}
	w, err := New(Options{Client: fake.NewClientset(pods...), Publisher: rec, Logger: zaptest.NewLogger(t), Resync: time.Hour})
	require.NoError(t, err)
	run(t, w)
	require.Eventually(t, func() bool { return rec.len() == 600 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, int64((600+resyncBatch-1)/resyncBatch), rec.batches.Load(), "600 pods in batches of %d", resyncBatch)
}

// backlogRecorder reports a backlog that drains as the test reads it.
type backlogRecorder struct {
	batchRecorder
	backlog atomic.Int64
	reads   atomic.Int64
}

func (r *backlogRecorder) ObservationBacklog(context.Context) (int, error) {
	r.reads.Add(1)
	return int(r.backlog.Add(-500)), nil
}

func TestResyncPassesWaitForTheBacklog(t *testing.T) {
	var pods []runtime.Object
	for i := range 300 {
		pods = append(pods, podgen.Stored("airflow", i, false))
	}
	rec := &backlogRecorder{}
	// A batch publisher's messages are frames of resyncBatch observations: the pass waits until
	// at most maxBacklog/resyncBatch are pending, after 6 reads.
	rec.backlog.Store(maxBacklog + 2000)
	w, err := New(Options{Client: fake.NewClientset(pods...), Publisher: rec, Logger: zaptest.NewLogger(t), Resync: time.Hour, Workers: 1})
	require.NoError(t, err)
	run(t, w)
	require.Eventually(t, func() bool { return rec.len() == 300 }, 10*time.Second, 10*time.Millisecond)
	require.GreaterOrEqual(t, rec.reads.Load(), int64(6), "the pass waited for the backlog to drain")
}
