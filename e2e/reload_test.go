package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/finding"
)

// TestReloadRules runs the binary and changes its rules.yaml while it runs: an invalid file is
// refused with its problems logged (file:line:col) and the running rules stay in force; a valid
// one takes effect without a restart (a rule added detects the next failure); SIGHUP reloads
// the file even when it did not change.
func TestReloadRules(t *testing.T) {
	env := cluster(t)
	ns := actionNamespace(t, env, "reload")
	path := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: oom
    detect: {kind: OOMKilled}
`)
	pm := startPodmedic(t, env, t.TempDir(), "--config", path)
	c := env.Client
	now := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	sigkilled := func(started time.Time) func(*corev1.PodStatus) {
		return func(s *corev1.PodStatus) {
			s.Phase = corev1.PodFailed
			s.StartTime = &metav1.Time{Time: started}
			s.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 137, Reason: "Error", StartedAt: metav1.Time{Time: started}, FinishedAt: metav1.Time{Time: started.Add(time.Minute)}}}}}
		}
	}
	reloads := func(result string) float64 {
		return pm.metric(`podmedic_config_reloads_total{result="` + result + `"}`)
	}

	// An invalid file: refused, the oom rule stays in force.
	rewriteRules(t, path, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: oom
    detect: {kind: OOMKilled, timeout: 5m}
`)
	require.Eventually(t, func() bool { return reloads("failure") >= 1 }, 15*time.Second, 100*time.Millisecond, "the invalid file was not refused")
	require.Zero(t, pm.metric("podmedic_config_last_reload_successful"))
	writeStatus(t, c, createPod(t, c, airflowWorker(ns, "etl-load-oom-1", "etl_daily", "load")), oomKilled(now))
	pm.waitFinding(finding.OOMKilled, ns, "etl-load-oom-1", 30*time.Second)

	// A valid file with a SIGKILL rule: in force without a restart.
	rewriteRules(t, path, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: oom
    detect: {kind: OOMKilled}
  - name: sigkill
    detect: {kind: SIGKILL}
`)
	require.Eventually(t, func() bool { return reloads("success") >= 1 }, 15*time.Second, 100*time.Millisecond, "the valid file was not loaded")
	require.Equal(t, 1.0, pm.metric("podmedic_config_last_reload_successful"))
	writeStatus(t, c, createPod(t, c, airflowWorker(ns, "reports-render-1", "reports", "render")), sigkilled(now))
	f := pm.waitFinding(finding.SIGKILL, ns, "reports-render-1", 30*time.Second)
	require.Equal(t, "sigkill", f.Rule)

	// SIGHUP reloads the unchanged file.
	before := reloads("success")
	require.NoError(t, pm.cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return reloads("success") == before+1 }, 10*time.Second, 100*time.Millisecond, "SIGHUP did not reload")
	require.Zero(t, reloads("failure")-1, "one failed reload, the invalid file")
	pm.stop()

	logs := pm.logs()
	require.Contains(t, logs, "rules.yaml is invalid; the running rules stay in force")
	require.Contains(t, logs, path+":6:", "the problem is located in the file")
	require.Contains(t, logs, "timeout")
}
