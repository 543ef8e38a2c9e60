package main

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestReplayBadNightJSON: the JSON lines of a whole bad night (several kinds at once plus
// healthy pods), exactly, with the default rules.
func TestReplayBadNightJSON(t *testing.T) {
	code, out, errOut := cli(t, "replay", "--config", "../../rules.yaml",
		"--input", "../../rules/testdata/replay/bad-night.json", "--output", "json")
	require.Equal(t, 0, code, errOut)
	const golden = "testdata/bad-night.jsonl"
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(out), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), out, "go test ./cmd/podmedic -run TestReplayBadNightJSON -update rewrites %s", golden)
}

// TestReplaySparkApps: `kubectl get pods,sparkapplications,scheduledsparkapplications -A -o json`
// replays with the default rules: an application whose submission failed is a finding about it,
// without a pod; one whose driver was OOM-killed is the driver's OOMKilled, naming the
// application; a schedule the operator refused is a finding about it.
func TestReplaySparkApps(t *testing.T) {
	code, out, errOut := cli(t, "replay", "--config", "../../rules.yaml",
		"--input", "../../rules/testdata/replay/spark-apps.json", "--output", "json")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, `"kind":"SparkAppFailed","rule":"spark-app-failed","severity":"critical","namespace":"spark-jobs","pod":"",`)
	require.Contains(t, out, `"spark":{"application":"events-backfill-20261120","state":"SUBMISSION_FAILED","attempts":3}`)
	require.Contains(t, out, `"kind":"OOMKilled","rule":"oom-other","severity":"warning","namespace":"spark-jobs","pod":"sales-daily-aggregate-20261120-driver",`)
	require.Contains(t, out, `"owner":{"kind":"SparkApplication","name":"sales-daily-aggregate-20261120"}`)
	require.Contains(t, out, `"spark":{"application":"inventory-hourly","state":"FailedValidation","schedule":true}`)
	require.Equal(t, 3, strings.Count(out, "\n"), "one finding per failed run, one for the schedule the operator refused:\n%s", out)
}
