package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/slackenv"
)

// TestSlackSocketModeApproval runs the real binary with Slack configured against a local
// Slack-compatible server: the proposal is posted with Approve/Deny buttons; a click by someone
// not on the approver list is refused ephemerally and changes nothing; the approver's click
// (over Socket Mode) deletes the pod, and the message is updated to say who approved and what
// happened. The tokens never appear in podmedic's logs.
func TestSlackSocketModeApproval(t *testing.T) {
	env := cluster(t)
	const bot, app = "xoxb-e2e-bot-token-7f3a", "xapp-1-e2e-app-token-9c2b"
	sl := slackenv.Start(t, slackenv.WithBotToken(bot), slackenv.WithAppToken(app))
	ns := namespace(t, env, "slack-"+strings.ReplaceAll(time.Now().Format("150405.000"), ".", ""))
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
slack:
  api_url: `+sl.URL()+`
  default_channel: "#data-oncall"
  socket_mode: true
  approvers: {users: [U0ALICE]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck, init_timeout: 15m}
    action: {type: delete-pod, mode: approve, params: {grace_period: 0}}
`)
	pm := startPodmedicEnv(t, env, t.TempDir(), []string{"SLACK_BOT_TOKEN=" + bot, "SLACK_APP_TOKEN=" + app},
		"--config", cfg, "--log-level", "debug")
	c := env.Client
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(t, sl.WaitConnected(ctx), "Socket Mode connected")

	createStuckWorker(t, c, ns, "spark-submit-stuck")

	// The proposal arrives in the channel with its buttons.
	msg := waitProposal(ctx, t, sl, "spark-submit-stuck")
	require.Equal(t, sl.ChannelID("#data-oncall"), msg.Channel)

	// Mallory may not approve: acked, told so, nothing happens.
	approve(ctx, t, sl, msg, "U0MALLORY")
	require.NoError(t, sl.Wait(ctx, func(s *slackenv.Server) bool {
		for _, call := range s.CallsTo("chat.postEphemeral") {
			if call.User == "U0MALLORY" && call.OK() {
				return true
			}
		}
		return false
	}), "the unlisted user was not told")
	_, err := c.CoreV1().Pods(ns).Get(context.Background(), "spark-submit-stuck", metav1.GetOptions{})
	require.NoError(t, err, "nothing happened on an unlisted user's click")

	// Alice approves over Socket Mode: the pod is deleted and the message says so.
	approve(ctx, t, sl, msg, "U0ALICE")
	require.Eventually(t, func() bool {
		_, err := c.CoreV1().Pods(ns).Get(context.Background(), "spark-submit-stuck", metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 20*time.Second, 100*time.Millisecond, "the approved pod was not deleted")
	require.NoError(t, sl.Wait(ctx, func(s *slackenv.Server) bool {
		m, ok := s.Message(msg.Channel, msg.TS)
		return ok && strings.Contains(string(m.Blocks), "U0ALICE") && strings.Contains(string(m.Blocks), "deleted") &&
			!strings.Contains(string(m.Blocks), "podmedic.approve")
	}), "the message was not updated with the approver and the outcome")

	pm.waitFinding(finding.InitStuck, ns, "spark-submit-stuck", 5*time.Second)
	pm.stop()
	logs := pm.logs()
	require.NotContains(t, logs, bot, "the bot token was logged")
	require.NotContains(t, logs, app, "the app token was logged")
}

// waitProposal waits for the top-level message with Approve/Deny buttons that names pod.
func waitProposal(ctx context.Context, t *testing.T, sl *slackenv.Server, pod string) slackenv.Message {
	t.Helper()
	var msg slackenv.Message
	require.NoError(t, sl.Wait(ctx, func(s *slackenv.Server) bool {
		for _, m := range s.Messages() {
			if m.ThreadTS == "" && strings.Contains(string(m.Blocks), pod) && strings.Contains(string(m.Blocks), "podmedic.approve") {
				msg = m
				return true
			}
		}
		return false
	}), "no proposal message about %s in Slack", pod)
	return msg
}

// approve clicks the message's Approve button as user, over Socket Mode, and waits for
// podmedic's acknowledgement.
func approve(ctx context.Context, t *testing.T, sl *slackenv.Server, msg slackenv.Message, user string) {
	t.Helper()
	envID, err := sl.SendInteractive(slackenv.Click{UserID: user, Channel: msg.Channel, MessageTS: msg.TS,
		ActionID: "podmedic.approve", Value: buttonValue(t, msg.Blocks, "podmedic.approve")}.Payload())
	require.NoError(t, err)
	_, err = sl.WaitAck(ctx, envID)
	require.NoError(t, err)
}

// buttonValue returns the value of the button with this action id in a Block Kit message.
func buttonValue(t *testing.T, blocks json.RawMessage, actionID string) string {
	t.Helper()
	v, ok, err := findButton(blocks, actionID)
	require.NoError(t, err)
	if !ok {
		t.Fatalf("no %s button in %s", actionID, blocks)
	}
	return v
}

// findButton looks for the button with this action id in a Block Kit message and returns
// its value.
func findButton(blocks json.RawMessage, actionID string) (value string, ok bool, err error) {
	var bs []struct {
		Elements []struct {
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
		} `json:"elements"`
	}
	if err := json.Unmarshal(blocks, &bs); err != nil {
		return "", false, err
	}
	for _, b := range bs {
		for _, e := range b.Elements {
			if e.ActionID == actionID {
				return e.Value, true, nil
			}
		}
	}
	return "", false, nil
}
