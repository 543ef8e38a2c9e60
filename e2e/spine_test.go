package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

// TestOOMKilledWorkerIsReportedOnce runs `podmedic run` (embedded NATS, console notifier)
// against the real apiserver: an Airflow worker OOM-killed through the status subresource
// gives one OOMKilled finding with its task identity and a limit proposal; a healthy worker
// gives none; a restart of podmedic on the same data dir does not report the failure again.
func TestOOMKilledWorkerIsReportedOnce(t *testing.T) {
	env := cluster(t)
	ns := namespace(t, env, "airflow-spine")
	data := t.TempDir()
	pm := startPodmedic(t, env, data, "--config", "../rules.yaml", "--namespace", ns)

	now := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	healthy := createPod(t, env.Client, airflowWorker(ns, "etl-extract-ok", "etl_daily", "extract"))
	writeStatus(t, env.Client, healthy, running(now))
	worker := createPod(t, env.Client, airflowWorker(ns, "etl-load-7f9c", "etl_daily", "load"))
	writeStatus(t, env.Client, worker, oomKilled(now))

	f := pm.waitFinding(finding.OOMKilled, ns, "etl-load-7f9c", 30*time.Second)
	require.Equal(t, "oom", f.Rule)
	require.Equal(t, "base", f.Container)
	require.Equal(t, string(worker.UID), f.UID)
	require.NotNil(t, f.Airflow)
	require.Equal(t, "etl_daily", f.Airflow.DagID)
	require.Equal(t, "load", f.Airflow.TaskID)
	require.Equal(t, "scheduled__2026-11-20T00:00:00+00:00", f.Airflow.RunID, "run_id from the annotation, not the sanitized label")
	require.Equal(t, 1, f.Airflow.TryNumber)
	require.Contains(t, f.Evidence, "memory limit 2Gi")
	require.NotNil(t, f.Action)
	require.Equal(t, finding.ActionProposeMemoryLimit, f.Action.Type)
	require.Equal(t, map[string]string{"container": "base", "limit": "3Gi", "request": "2Gi"}, f.Action.Params)

	// The finding is counted, and nothing was said about the healthy pod.
	require.Eventually(t, func() bool { return pm.metric(`podmedic_findings_total{kind="OOMKilled",rule="oom"}`) == 1 },
		10*time.Second, 50*time.Millisecond)
	for _, g := range pm.all() {
		require.NotEqual(t, "etl-extract-ok", g.Pod, "healthy pod reported: %+v", g)
	}
	pm.stop()

	// Restarted on the same store, podmedic relists the pod, recognises the failure as already
	// reported (podmedic_findings_repeated_total), and reports nothing new.
	pm2 := startPodmedic(t, env, data, "--config", "../rules.yaml", "--namespace", ns)
	require.Eventually(t, func() bool { return pm2.metric("podmedic_findings_repeated_total") >= 1 },
		30*time.Second, 50*time.Millisecond, "the relisted OOMKilled pod was not re-evaluated")
	require.Empty(t, pm2.all(), "a failure already reported was reported again")
	pm2.stop()
}

// TestRunUnreachableNATS: with a reachable cluster but an unreachable --nats-url, run fails at
// once with one line that names the URL, and exit code 1.
func TestRunUnreachableNATS(t *testing.T) {
	env := cluster(t)
	cmd := exec.Command(suite.bin, "run", "--kubeconfig", env.Kubeconfig, "--nats-url", "nats://127.0.0.1:1",
		"--http-addr", "", "--log-level", "error")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, 1, ee.ExitCode())
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	require.Len(t, lines, 1, stderr.String())
	require.True(t, strings.HasPrefix(lines[0], "podmedic: connect to NATS at nats://127.0.0.1:1"), lines[0])
}
