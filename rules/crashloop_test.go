package rules

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/podmedic/podmedic/config"
)

func TestCrashLoopDetector(t *testing.T) {
	runDetectorCases(t, CrashLoopPlugin(), nil, "testdata/pods/crashloop.json", []detectorCase{{
		name: "dag processor restarting", namespace: "airflow", pod: "airflow-dag-processor-7b9c6d5f4-qm2xv",
		want: []wantFinding{{container: "dag-processor", evidence: []string{
			"container dag-processor in CrashLoopBackOff after 7 restarts (minimum 5)",
			"last termination: Error (exit 1) at 2026-11-20T02:25:03Z after running 12s",
		}, mentions: []string{"kubelet: back-off 5m0s restarting failed container=dag-processor"}}},
	}, {
		name: "three restarts are below the minimum", namespace: "airflow", pod: "airflow-statsd-5d8c9b7f6-2xk9d",
	}, {
		name: "many restarts but running", namespace: "airflow", pod: "airflow-scheduler-7c9d8b6f5-h2p4w",
	}, {
		name: "init container crash loop", namespace: "airflow", pod: "sales-sync-leads-7t3k9v1m",
		want: []wantFinding{{container: "git-sync-init", evidence: []string{
			"container git-sync-init in CrashLoopBackOff after 6 restarts (minimum 5)",
		}, mentions: []string{"termination message:", "terminal prompts disabled"}}},
	}})
	runDetectorCases(t, CrashLoopPlugin(), &CrashLoopArgs{MinRestarts: 3}, "testdata/pods/crashloop.json", []detectorCase{{
		name: "min_restarts 3", namespace: "airflow", pod: "airflow-statsd-5d8c9b7f6-2xk9d",
		want: []wantFinding{{container: "statsd", evidence: []string{
			"last termination: Error (exit 2) at 2026-11-20T02:27:41Z after running 1s",
		}}},
	}})
	assert.Equal(t, []config.FieldError{{Field: "min_restarts", Message: "must be at least 1"}}, (&CrashLoopArgs{}).Validate())
	assert.Equal(t, 5, DefaultCrashLoopArgs().MinRestarts)
}

// TestCrashLoopOccurrenceSurvivesRestarts: every restart of the loop is the same finding.
func TestCrashLoopOccurrenceSurvivesRestarts(t *testing.T) {
	d := loadFixture(t, "testdata/pods/crashloop.json")
	pod := fixturePod(t, d, "airflow", "airflow-dag-processor-7b9c6d5f4-qm2xv")
	det := CrashLoopDetector{Args: *DefaultCrashLoopArgs()}
	a := det.Detect(Input{Pod: pod, View: d.View(), Now: nightNow})
	more := pod.DeepCopy()
	more.Status.ContainerStatuses[0].RestartCount = 8
	more.Status.ContainerStatuses[0].LastTerminationState.Terminated.FinishedAt.Time = nightNow
	b := det.Detect(Input{Pod: more, View: d.View(), Now: nightNow})
	assert.Len(t, a, 1)
	assert.Len(t, b, 1)
	assert.Equal(t, a[0].Key(), b[0].Key())
}
