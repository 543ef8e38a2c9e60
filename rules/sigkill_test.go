package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSIGKILLDetector(t *testing.T) {
	runDetectorCases(t, SIGKILLPlugin(), nil, "testdata/pods/sigkill.json", []detectorCase{{
		name: "liveness probe", namespace: "airflow", pod: "etl-daily-transform-7hq2mz4c",
		want: []wantFinding{{container: "base",
			evidence: []string{
				"container base killed by SIGKILL (exit 137, reason Error) at 2026-11-20T02:06:40Z: not an OOM kill",
				"cause: the kubelet killed the container after its liveness probe failed",
				"event Killing (last 02:06:10Z): Container base failed liveness probe",
				`Airflow logs this as "Task exited with return code Negsignal.SIGKILL"; a higher memory limit will not help`,
			},
			mentions: []string{"event Unhealthy x3 (last 02:06:10Z): Liveness probe failed"}}},
	}, {
		name: "node shutdown", namespace: "airflow", pod: "etl-hourly-extract-p0x8k2dw",
		want: []wantFinding{{container: "base", evidence: []string{
			"cause: node ip-10-0-7-44.ec2.internal shut down and the container did not stop within the shutdown grace period",
			"event Killing (last 02:17:40Z): Stopping container base",
		}}},
	}, {
		name: "active deadline", namespace: "batch", pod: "report-builder-29400060-x7k2p",
		want: []wantFinding{{container: "report", evidence: []string{
			"cause: the pod ran longer than its activeDeadlineSeconds (3600s)",
			"event DeadlineExceeded (last 02:00:04Z): Pod was active on the node longer than the specified deadline",
		}}},
		absent: []string{"Negsignal"}, // not an Airflow worker
	}, {
		name: "grace period ran out after deletion", namespace: "airflow", pod: "etl-daily-publish-w2b7n5rc",
		want: []wantFinding{{container: "base", evidence: []string{
			"cause: the container did not exit within its grace period of 30s after SIGTERM",
		}}},
	}, {
		name: "killed before the restart", namespace: "airflow", pod: "airflow-triggerer-0",
		want: []wantFinding{{container: "triggerer", evidence: []string{
			"container triggerer killed by SIGKILL (exit 137, reason Error) at 2026-11-20T02:08:30Z (restarted, 2 restarts): not an OOM kill",
			"cause: the kubelet killed the container after its liveness probe failed",
		}}},
	}, {
		name: "an OOM kill is not a SIGKILL", namespace: "airflow", pod: "etl-daily-load-3nk8x0qz",
	}})
}

func TestSIGKILLLeavesEvictionsToEvicted(t *testing.T) {
	runDetectorCases(t, SIGKILLPlugin(), nil, "testdata/pods/evicted.json", []detectorCase{{
		name: "kubelet eviction with exit 137", namespace: "airflow", pod: "etl-daily-aggregate-9c4vx1tn",
	}, {
		name: "drained with exit 143", namespace: "airflow", pod: "billing-invoices-render-4m8q1z5t",
	}})
}

// TestOOMIgnoresPlainSIGKILL: exit code 137 with reason Error is not an OOM kill.
func TestOOMIgnoresPlainSIGKILL(t *testing.T) {
	d := loadFixture(t, "testdata/pods/sigkill.json")
	view := d.View()
	for _, name := range []string{"etl-daily-transform-7hq2mz4c", "etl-hourly-extract-p0x8k2dw", "etl-daily-publish-w2b7n5rc", "airflow-triggerer-0"} {
		pod := fixturePod(t, d, "airflow", name)
		assert.Empty(t, OOMDetector{}.Detect(Input{Pod: pod, View: view, Now: nightNow}), name)
		assert.NotEmpty(t, SIGKILLDetector{}.Detect(Input{Pod: pod, View: view, Now: nightNow}), name)
	}
	assert.NotEmpty(t, OOMDetector{}.Detect(Input{Pod: fixturePod(t, d, "airflow", "etl-daily-load-3nk8x0qz"), View: view, Now: nightNow}))
}

// TestSIGKILLOccurrenceSurvivesRestart: the kill seen as the current state, and after the
// restart as the last state, is one finding.
func TestSIGKILLOccurrenceSurvivesRestart(t *testing.T) {
	d := loadFixture(t, "testdata/pods/sigkill.json")
	view := d.View()
	after := fixturePod(t, d, "airflow", "airflow-triggerer-0")
	before := after.DeepCopy()
	cs := &before.Status.ContainerStatuses[0]
	cs.State = corev1.ContainerState{Terminated: cs.LastTerminationState.Terminated}
	cs.LastTerminationState = corev1.ContainerState{}
	cs.RestartCount--

	a := SIGKILLDetector{}.Detect(Input{Pod: before, View: view, Now: nightNow})
	b := SIGKILLDetector{}.Detect(Input{Pod: after, View: view, Now: nightNow.Add(time.Minute)})
	require.Len(t, a, 1)
	require.Len(t, b, 1)
	assert.Equal(t, a[0].Key(), b[0].Key())

	// The next kill is another finding.
	next := after.DeepCopy()
	next.Status.ContainerStatuses[0].LastTerminationState.Terminated = &corev1.ContainerStateTerminated{
		ExitCode: 137, Reason: "Error", FinishedAt: metav1.NewTime(mustTime("2026-11-20T02:29:00Z"))}
	next.Status.ContainerStatuses[0].RestartCount++
	c := SIGKILLDetector{}.Detect(Input{Pod: next, View: view, Now: nightNow})
	require.Len(t, c, 1)
	assert.NotEqual(t, b[0].Key(), c[0].Key())
}

func TestSIGKILLBySignal(t *testing.T) {
	cs := corev1.ContainerStatus{Name: "base", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: 0, Signal: 9}}}
	term, _ := sigkillTermination(cs)
	assert.NotNil(t, term, "signal 9 without an exit code")
	cs.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 143, Reason: "Error"}
	term, _ = sigkillTermination(cs)
	assert.Nil(t, term, "SIGTERM is not SIGKILL")
}
