package rules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

// TestSparkAppFailed replays SparkApplications as the operator leaves them: a run that FAILED
// (its driver OOM-killed) and one whose submission failed (the quota refused the driver) are
// one finding each, with the operator's message, the attempts, the driver's end, the
// executors and the Airflow task that created them; COMPLETED and RUNNING ones are not
// findings. The same run replayed later keeps its key; a new submission is a new finding.
func TestSparkAppFailed(t *testing.T) {
	d := loadFixture(t, "testdata/replay/spark-apps.json")
	require.Len(t, d.Apps, 4)
	e := allRulesEngine(t)
	var apps []finding.Finding
	for _, f := range Replay(e, d, nightNow) {
		if f.Kind == finding.SparkAppFailed {
			apps = append(apps, f)
		}
	}
	require.Len(t, apps, 2)
	backfill, sales := apps[0], apps[1]

	assert.Equal(t, "spark-jobs/sales-daily-aggregate-20261120", sales.Name())
	assert.Empty(t, sales.Pod)
	assert.Equal(t, &finding.SparkApp{Application: "sales-daily-aggregate-20261120", AppID: "spark-4c8b1e2f9a7d4b3c8e1f0a9b7c6d5e4f",
		State: "FAILED", Attempts: 1}, sales.Spark)
	assert.Equal(t, []string{
		"SparkApplication sales-daily-aggregate-20261120 is FAILED after 1 execution attempt(s): driver container failed with ExitCode: 137, Reason: OOMKilled",
		"driver pod sales-daily-aggregate-20261120-driver: container spark-kubernetes-driver terminated OOMKilled (exit code 137)",
		"executors: 2 FAILED, 1 COMPLETED",
		"created by Airflow task sales_daily.aggregate (try 1, SparkKubernetesOperator)",
		"terminated at 2026-11-20T02:11:42Z",
	}, sales.Evidence)
	require.NotNil(t, sales.Airflow)
	assert.Equal(t, []string{"sales_daily", "aggregate", ""}, []string{sales.Airflow.DagID, sales.Airflow.TaskID, sales.Airflow.RunID},
		"the run_id label is the label-safe form: not taken for the run's id")
	assert.Equal(t, "0b6e2a4c-9d1f-4e3b-8a7c-5f2d1e0c9b8a", sales.Occurrence, "one finding per run: the submission")

	assert.Equal(t, "SUBMISSION_FAILED", backfill.Spark.State)
	assert.Equal(t, 3, backfill.Spark.Attempts)
	assert.Contains(t, backfill.Evidence[0], "SparkApplication events-backfill-20261120 is SUBMISSION_FAILED after 3 submission attempt(s): failed to run spark-submit: ")
	assert.Contains(t, backfill.Evidence[0], "exceeded quota: spark-jobs-quota")
	for _, line := range backfill.Evidence {
		assert.NotContains(t, line, "driver pod", "no driver ever ran")
	}

	// Later, the same runs keep their keys; a resubmission is another run.
	app := d.Apps[0]
	again := e.EvaluateSparkApp(app, d.View(), nightNow.Add(time.Hour))
	require.Len(t, again, 1)
	assert.Equal(t, sales.Key(), again[0].Key())
	next := *app
	next.Status.SubmissionID = "2f3e4d5c-6b7a-4891-a0b1-c2d3e4f5a6b7"
	rerun := e.EvaluateSparkApp(&next, d.View(), nightNow)
	require.Len(t, rerun, 1)
	assert.NotEqual(t, sales.Key(), rerun[0].Key())
	next.Status.AppState.State = "RUNNING"
	assert.Empty(t, e.EvaluateSparkApp(&next, d.View(), nightNow), "running again: nothing to report")
}
