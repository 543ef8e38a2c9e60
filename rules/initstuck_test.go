package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/config"
)

func TestInitStuckDetector(t *testing.T) {
	const historyPV = "pvc-3f2a9c1e-8b7d-4e6f-a1b2-c3d4e5f60718"
	runDetectorCases(t, InitStuckPlugin(), nil, "testdata/pods/initstuck.json", []detectorCase{{
		name: "spark driver waiting 40m on a volume held by another node", namespace: "spark-jobs", pod: "nightly-aggregation-driver",
		want: []wantFinding{{evidence: []string{
			"init container wait-for-pvc not complete after 40m (Init:0/1), timeout 15m",
			"pod Pending on ip-10-0-3-17.ec2.internal since 2026-11-20T01:50:00Z",
			"event FailedAttachVolume (last 01:50:00Z) from attachdetach-controller: Multi-Attach error for volume \"" + historyPV +
				"\" Volume is already used by pod(s) spark-history-server-6d9f7b8c5-x2x7q",
			"volume history: PVC spark-history-server-pvc is Bound (ReadWriteOnce, volume " + historyPV + ", storage class gp3)",
		}, mentions: []string{
			"event FailedMount x18 (last 02:28:44Z): Unable to attach or mount volumes: unmounted volumes=[history]",
		}}},
		absent: []string{
			"unattached volumes=[history]:", // the history cleanup job's own FailedMount
			"x12",                           // ditto
			"spark-drv-1c9e04b7a2d35f68",    // the previous driver of the same name
		},
	}, {
		name: "the same driver 12 minutes in is not stuck yet", namespace: "spark-jobs", pod: "nightly-aggregation-driver",
		now: mustTime("2026-11-20T02:02:00Z"),
	}, {
		name: "init container running for 3 minutes", namespace: "spark-jobs", pod: "adhoc-backfill-driver",
	}, {
		name: "init image cannot be pulled", namespace: "airflow", pod: "sales-sync-crm-2v9h4x7b",
		want: []wantFinding{{evidence: []string{
			"init container git-sync-init not complete after 21m (Init:ImagePullBackOff), timeout 15m",
			`container git-sync-init cannot pull its image: ImagePullBackOff: Back-off pulling image "registry.example.com/mirror/git-sync:v4.3.0"`,
		}, mentions: []string{"event Failed x9 (last 02:28:12Z): Failed to pull image", ": not found"}}},
	}, {
		name: "a deleted pod is not InitStuck", namespace: "spark-jobs", pod: "weekly-compaction-driver",
	}, {
		name: "initialized and running", namespace: "airflow", pod: "airflow-dag-processor-7b9c6d5f4-qm2xv",
	}, {
		name: "no init containers", namespace: "spark-jobs", pod: "spark-history-server-6d9f7b8c5-x2x7q",
	}})
}

func TestInitStuckTimeout(t *testing.T) {
	runDetectorCases(t, InitStuckPlugin(), &InitStuckArgs{InitTimeout: config.Duration{Duration: 45 * time.Minute}}, "testdata/pods/initstuck.json", []detectorCase{{
		name: "40 minutes is within a 45m timeout", namespace: "spark-jobs", pod: "nightly-aggregation-driver",
	}})
	assert.Equal(t, []config.FieldError{{Field: "init_timeout", Message: "must be greater than 0"}}, (&InitStuckArgs{}).Validate())
	assert.Empty(t, DefaultInitStuckArgs().Validate())
	assert.Equal(t, 15*time.Minute, DefaultInitStuckArgs().InitTimeout.Duration)
}

// TestInitStuckIgnoresAnEarlierPodOfTheSameName: the Spark operator reuses the driver's name
// when it resubmits; events about the earlier driver (another UID) are not about this one, even
// when the view can only find events by name.
func TestInitStuckIgnoresAnEarlierPodOfTheSameName(t *testing.T) {
	d := loadFixture(t, "testdata/pods/initstuck.json")
	pod := fixturePod(t, d, "spark-jobs", "nightly-aggregation-driver")
	var others []*corev1.Event
	for _, e := range d.Events {
		if e.InvolvedObject.UID != pod.UID {
			others = append(others, e)
		}
	}
	view := NewStaticView(d.Pods, d.PVCs, others)
	byName := view.EventsFor(config.ObjectPod, pod.Namespace, pod.Name, string(pod.UID))
	require.NotEmpty(t, byName, "precondition: the view falls back to the earlier driver's events")

	got := InitStuckDetector{Args: *DefaultInitStuckArgs()}.Detect(Input{Pod: pod, View: view, Now: nightNow})
	require.Len(t, got, 1)
	assert.False(t, anyContains(got[0].Evidence, "event "), "no event is evidence: %q", got[0].Evidence)
}

// TestInitStatus: the init status reads as kubectl's STATUS column.
func TestInitStatus(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	started := true
	spec := corev1.PodSpec{NodeName: "n", InitContainers: []corev1.Container{{Name: "a"}, {Name: "b"}}}
	done := corev1.ContainerStatus{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}
	tests := []struct {
		name      string
		spec      corev1.PodSpec
		statuses  []corev1.ContainerStatus
		initDone  bool
		want      string
		container string
	}{
		{name: "not started", spec: spec, want: "Init:0/2", container: "a"},
		{name: "second running", spec: spec, statuses: []corev1.ContainerStatus{done,
			{Name: "b", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}, want: "Init:1/2", container: "b"},
		{name: "crash loop", spec: spec, statuses: []corev1.ContainerStatus{
			{Name: "a", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}, want: "Init:CrashLoopBackOff", container: "a"},
		{name: "failed", spec: spec, statuses: []corev1.ContainerStatus{done,
			{Name: "b", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}, want: "Init:Error", container: "b"},
		{name: "exit code without reason", spec: spec, statuses: []corev1.ContainerStatus{
			{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}}}, want: "Init:ExitCode:2", container: "a"},
		{name: "signal without reason", spec: spec, statuses: []corev1.ContainerStatus{
			{Name: "a", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Signal: 9}}}}, want: "Init:Signal:9", container: "a"},
		{name: "started sidecar counts as done", spec: corev1.PodSpec{NodeName: "n", InitContainers: []corev1.Container{{Name: "a", RestartPolicy: &always}, {Name: "b"}}},
			statuses: []corev1.ContainerStatus{{Name: "a", Started: &started, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}},
				{Name: "b", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}, want: "Init:1/2", container: "b"},
		{name: "all done", spec: spec, statuses: []corev1.ContainerStatus{done, {Name: "b", State: done.State}}},
		{name: "Initialized condition", spec: spec, initDone: true},
		{name: "not scheduled", spec: corev1.PodSpec{InitContainers: spec.InitContainers}},
		{name: "no init containers", spec: corev1.PodSpec{NodeName: "n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: tt.spec}
			pod.Status.InitContainerStatuses = tt.statuses
			if tt.initDone {
				pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}}
			}
			st, ok := initStatus(pod)
			assert.Equal(t, tt.want != "", ok)
			assert.Equal(t, tt.want, st.display)
			assert.Equal(t, tt.container, st.container)
		})
	}
}

func TestInitStuckMeasuresFromCreationWithoutStartTime(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "spark-jobs", Name: "d", UID: "u", CreationTimestamp: metav1.NewTime(mustTime("2026-11-20T02:00:00Z"))},
		Spec:       corev1.PodSpec{NodeName: "n", InitContainers: []corev1.Container{{Name: "init"}}},
		Status:     corev1.PodStatus{Phase: corev1.PodPending},
	}
	det := InitStuckDetector{Args: *DefaultInitStuckArgs()}
	assert.Empty(t, det.Detect(Input{Pod: pod, Now: mustTime("2026-11-20T02:14:00Z")}))
	got := det.Detect(Input{Pod: pod, Now: nightNow})
	require.Len(t, got, 1)
	assert.Equal(t, "init container init not complete after 30m (Init:0/1), timeout 15m", got[0].Evidence[0])
	assert.Equal(t, "2026-11-20T02:00:00Z", got[0].Occurrence)
}
