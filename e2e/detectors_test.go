package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/finding"
)

// detectorRules is a notify-only configuration with every kind the live test exercises; the
// PVC timeout is short because the apiserver stamps creation times itself.
const detectorRules = `version: 1
cluster: e2e
rules:
  - name: oom
    detect: {kind: OOMKilled}
  - name: sigkill
    detect: {kind: SIGKILL}
  - name: init-stuck
    detect: {kind: InitStuck, init_timeout: 15m}
  - name: evicted
    detect: {kind: Evicted}
  - name: task-failed
    detect: {kind: TaskFailed}
    match: {workload: airflow}
  - name: pvc-pending
    detect: {kind: PVCPending, pvc_pending_timeout: 2s}
`

// TestDetectorsLive: statuses and events written through the real API reach podmedic's
// detectors through live informers; each failure gives its finding of its kind, and the
// healthy control pod gives none.
func TestDetectorsLive(t *testing.T) {
	env := cluster(t)
	ns := namespace(t, env, "nightly")
	cfg := writeRules(t, ns, detectorRules)
	pm := startPodmedic(t, env, t.TempDir(), "--config", cfg, "--resync", "1s", "--namespace", ns)
	c := env.Client
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)

	// Healthy control.
	healthy := createPod(t, c, airflowWorker(ns, "etl-extract-ok", "etl_daily", "extract"))
	writeStatus(t, c, healthy, running(now.Add(-5*time.Minute)))

	// OOMKilled.
	writeStatus(t, c, createPod(t, c, airflowWorker(ns, "etl-load-oom", "etl_daily", "load")), oomKilled(now.Add(-3*time.Minute)))

	// SIGKILL: exit 137 with reason Error, after a failed liveness probe (a Killing event).
	sig := createPod(t, c, airflowWorker(ns, "reports-render-sigkill", "reports", "render"))
	event(t, c, sig, "Killing", corev1.EventTypeNormal, "Container base failed liveness probe, will be restarted", 1)
	writeStatus(t, c, sig, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.StartTime = &metav1.Time{Time: now.Add(-10 * time.Minute)}
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 137, Reason: "Error", FinishedAt: metav1.Time{Time: now.Add(-time.Minute)}}}}}
	})

	// InitStuck: a Spark driver whose init container has waited 20 minutes for a volume that
	// does not mount (FailedMount events), with its PVC still Pending.
	pvc, err := c.CoreV1().PersistentVolumeClaims(ns).Create(ctx, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "spark-history-server-pvc"},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: ptr("efs-sc"),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("50Gi")}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pvcEvent(t, c, pvc, "ProvisioningFailed", `failed to provision volume with StorageClass "efs-sc": AccessDenied`)
	driver := createPod(t, c, sparkDriver(ns, "nightly-agg-driver", "spark-history-server-pvc"))
	event(t, c, driver, "FailedMount", corev1.EventTypeWarning,
		`MountVolume.SetUp failed for volume "history" : rpc error: code = DeadlineExceeded desc = context deadline exceeded`, 9)
	writeStatus(t, c, driver, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.StartTime = &metav1.Time{Time: now.Add(-20 * time.Minute)}
		s.InitContainerStatuses = []corev1.ContainerStatus{{Name: "wait-for-history",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "spark-kubernetes-driver",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}
	})

	// Evicted by the kubelet under memory pressure.
	evicted := createPod(t, c, airflowWorker(ns, "etl-aggregate-evicted", "etl_daily", "aggregate"))
	writeStatus(t, c, evicted, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.Reason = "Evicted"
		s.Message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91236Ki."
		s.StartTime = &metav1.Time{Time: now.Add(-30 * time.Minute)}
	})

	// An Airflow task that failed with exit code 1.
	failed := createPod(t, c, airflowWorker(ns, "etl-publish-failed", "etl_daily", "publish"))
	writeStatus(t, c, failed, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.StartTime = &metav1.Time{Time: now.Add(-6 * time.Minute)}
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", StartedAt: metav1.Time{Time: now.Add(-6 * time.Minute)}, FinishedAt: metav1.Time{Time: now.Add(-time.Minute)}}}}}
	})

	within := 30 * time.Second
	pm.waitFinding(finding.OOMKilled, ns, "etl-load-oom", within)
	f := pm.waitFinding(finding.SIGKILL, ns, "reports-render-sigkill", within)
	require.True(t, containsAny(f.Evidence, "liveness probe"), "SIGKILL evidence names the probe: %q", f.Evidence)
	f = pm.waitFinding(finding.InitStuck, ns, "nightly-agg-driver", within)
	require.True(t, containsAny(f.Evidence, "Init:0/1"), "%q", f.Evidence)
	require.True(t, containsAny(f.Evidence, "FailedMount"), "%q", f.Evidence)
	require.True(t, containsAny(f.Evidence, "spark-history-server-pvc is Pending"), "%q", f.Evidence)
	require.NotNil(t, f.Spark)
	require.Equal(t, "driver", f.Spark.Role)
	pm.waitFinding(finding.Evicted, ns, "etl-aggregate-evicted", within)
	f = pm.waitFinding(finding.TaskFailed, ns, "etl-publish-failed", within)
	require.Equal(t, "publish", f.Airflow.TaskID)

	// The PVC finding comes from a resync once its (short) timeout has passed.
	deadline := time.Now().Add(within)
	for !hasPVCFinding(pm.all(), ns, "spark-history-server-pvc") {
		require.True(t, time.Now().Before(deadline), "no PVCPending finding; findings: %+v", pm.all())
		time.Sleep(50 * time.Millisecond)
	}

	// One failure, one finding, even after several resyncs; nothing about the healthy pod.
	time.Sleep(2 * time.Second) // two more resyncs
	seen := map[string]int{}
	for _, g := range pm.all() {
		require.NotEqual(t, "etl-extract-ok", g.Pod, "healthy pod reported: %+v", g)
		seen[string(g.Kind)+"/"+g.Pod+g.PVC]++
	}
	for k, n := range seen {
		require.Equal(t, 1, n, "finding %s reported %d times", k, n)
	}
	require.Len(t, seen, 6, "%v", seen)
	pm.stop()
}

func hasPVCFinding(fs []finding.Finding, ns, name string) bool {
	for _, f := range fs {
		if f.Kind == finding.PVCPending && f.Namespace == ns && f.PVC == name {
			return true
		}
	}
	return false
}

func containsAny(lines []string, sub string) bool {
	for _, l := range lines {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// sparkDriver is a Spark driver pod with an init container and the history PVC mounted.
func sparkDriver(ns, name, claim string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{
			"spark-role": "driver", "spark-app-selector": "spark-4f7c2d9e1b", "spark-app-name": "nightly-agg"}},
		Spec: corev1.PodSpec{
			RestartPolicy:  corev1.RestartPolicyNever,
			InitContainers: []corev1.Container{{Name: "wait-for-history", Image: "busybox:1.36"}},
			Containers:     []corev1.Container{{Name: "spark-kubernetes-driver", Image: "apache/spark:3.5.3"}},
			Volumes: []corev1.Volume{{Name: "history", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
	}
}

// event records an event about a pod as the kubelet would.
func event(t *testing.T, c kubernetes.Interface, p *corev1.Pod, reason, typ, msg string, count int32) {
	t.Helper()
	now := metav1.Now()
	_, err := c.CoreV1().Events(p.Namespace).Create(context.Background(), &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: p.Namespace, GenerateName: p.Name + "."},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID, APIVersion: "v1"},
		Reason:         reason, Message: msg, Type: typ, Count: count,
		FirstTimestamp: metav1.Time{Time: now.Add(-10 * time.Minute)}, LastTimestamp: now,
		Source: corev1.EventSource{Component: "kubelet", Host: "ip-10-0-3-17.ec2.internal"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// pvcEvent records an event about a PVC as a provisioner would.
func pvcEvent(t *testing.T, c kubernetes.Interface, pvc *corev1.PersistentVolumeClaim, reason, msg string) {
	t.Helper()
	now := metav1.Now()
	_, err := c.CoreV1().Events(pvc.Namespace).Create(context.Background(), &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: pvc.Namespace, GenerateName: pvc.Name + "."},
		InvolvedObject: corev1.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: pvc.Namespace, Name: pvc.Name,
			UID: pvc.UID, APIVersion: "v1"},
		Reason: reason, Message: msg, Type: corev1.EventTypeWarning, Count: 12,
		FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "efs.csi.aws.com"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}
