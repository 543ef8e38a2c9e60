package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/internal/testenv/airflowenv"
	"github.com/podmedic/podmedic/internal/testenv/slackenv"
)

// TestAirflow3ClearApprovedInSlack runs the real binary against Airflow 3's API (the v2
// stand-in, which takes only JWTs): a failed KubernetesExecutor task of a mapped task is
// proposed in Slack, approved over Socket Mode, and cleared with a token podmedic fetched at
// POST /auth/token for its user — the one map index only. The stand-in's log of calls is the
// proof; the password never appears in podmedic's logs.
func TestAirflow3ClearApprovedInSlack(t *testing.T) {
	env := cluster(t)
	const bot, app, password = "xoxb-e2e-bot-token-7f3a", "xapp-1-e2e-app-token-9c2b", "e2e-airflow-pw-41c9"
	sl := slackenv.Start(t, slackenv.WithBotToken(bot), slackenv.WithAppToken(app))
	af := airflowenv.Start(t, airflowenv.WithVersion(airflowenv.V2), airflowenv.WithUser("podmedic", password))
	const run = "scheduled__2026-11-20T00:00:00+00:00"
	af.AddRun("etl_daily", run, time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC))
	af.SetTask("etl_daily", run, "publish", 2, airflowenv.StateFailed)
	af.SetTask("etl_daily", run, "publish", 3, airflowenv.StateFailed)

	ns := namespace(t, env, "airflow3-"+strings.ReplaceAll(time.Now().Format("150405.000"), ".", ""))
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
airflow:
  url: `+af.URL()+`
  api_version: v2
slack:
  api_url: `+sl.URL()+`
  default_channel: "#data-oncall"
  socket_mode: true
  approvers: {users: [U0ALICE]}
rules:
  - name: airflow-task-failed
    detect: {kind: TaskFailed}
    action: {type: airflow-clear-task, mode: approve}
`)
	pm := startPodmedicEnv(t, env, t.TempDir(), []string{"SLACK_BOT_TOKEN=" + bot, "SLACK_APP_TOKEN=" + app,
		"AIRFLOW_USERNAME=podmedic", "AIRFLOW_PASSWORD=" + password}, "--config", cfg, "--log-level", "debug")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	require.NoError(t, sl.WaitConnected(ctx), "Socket Mode connected")

	c := env.Client
	now := time.Now()
	w := airflowWorker(ns, "etl-publish-2-failed", "etl_daily", "publish")
	w.Annotations["map_index"] = "2"
	failed := createPod(t, c, w)
	writeStatus(t, c, failed, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.StartTime = &metav1.Time{Time: now.Add(-6 * time.Minute)}
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 1, Reason: "Error", StartedAt: metav1.Time{Time: now.Add(-6 * time.Minute)}, FinishedAt: metav1.Time{Time: now.Add(-time.Minute)}}}}}
	})

	msg := waitProposal(ctx, t, sl, "etl-publish-2-failed")
	assert.Contains(t, string(msg.Blocks), "map_index", "the proposal names the map index it clears")
	require.Empty(t, af.CallsTo("/clearTaskInstances"), "nothing cleared before the approval")
	approve(ctx, t, sl, msg, "U0ALICE")
	require.Eventually(t, func() bool { return len(af.CallsTo("/clearTaskInstances")) == 1 }, 30*time.Second, 100*time.Millisecond,
		"the approved clear did not reach Airflow")

	calls := af.Calls()
	require.GreaterOrEqual(t, len(calls), 2)
	assert.Equal(t, "/auth/token", calls[0].Path, "a token first")
	assert.Equal(t, 201, calls[0].Status)
	clear := af.CallsTo("/clearTaskInstances")[0]
	assert.Equal(t, "bearer:jwt", clear.Auth, "with the fetched JWT")
	assert.Equal(t, 200, clear.Status)
	assert.Equal(t, 1, af.TokensIssued())
	st2, _ := af.TaskState("etl_daily", run, "publish", 2)
	st3, _ := af.TaskState("etl_daily", run, "publish", 3)
	assert.Equal(t, airflowenv.StateNone, st2, "map index 2 cleared")
	assert.Equal(t, airflowenv.StateFailed, st3, "map index 3 is another task instance")

	require.NoError(t, sl.Wait(ctx, func(s *slackenv.Server) bool {
		m, ok := s.Message(msg.Channel, msg.TS)
		return ok && strings.Contains(string(m.Blocks), "U0ALICE") && strings.Contains(string(m.Blocks), "Airflow cleared 1 task instance") &&
			!strings.Contains(string(m.Blocks), "podmedic.approve")
	}), "the message was not updated with the approver and the outcome")
	pm.stop()
	assert.NotContains(t, pm.logs(), password, "the Airflow password was logged")
}
