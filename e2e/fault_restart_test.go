//go:build faults

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/slackenv"
)

// TestFaultKilledWithPendingProposals: podmedic (embedded NATS in its data dir, Slack over
// Socket Mode against a Slack-compatible server) proposes to delete 100 stuck Spark drivers and
// is killed with SIGKILL while Slack is still being told about them (Slack allows one message a
// second per channel, and podmedic paces itself after the first 429). Restarted on the same data dir, it shows every one of the 100 proposals in Slack
// once; an approver clicks Approve on each (and a second approver clicks again): each pod is
// deleted exactly once.
func TestFaultKilledWithPendingProposals(t *testing.T) {
	const pods = 100
	begin := time.Now()
	env := cluster(t)
	const bot, app = "xoxb-fault-bot-token-51c2", "xapp-1-fault-app-token-77d0"
	sl := slackenv.Start(t, slackenv.WithBotToken(bot), slackenv.WithAppToken(app), slackenv.WithRateLimit(time.Second, 1))
	ns := actionNamespace(t, env, "fault-kill")
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
slack:
  api_url: `+sl.URL()+`
  default_channel: "#data-oncall"
  socket_mode: true
  approvers: {users: [U0ALICE, U0BOB]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck, init_timeout: 15m}
    action: {type: delete-pod, mode: approve, params: {grace_period: 0}}
`)
	data := t.TempDir()
	secrets := []string{"SLACK_BOT_TOKEN=" + bot, "SLACK_APP_TOKEN=" + app}
	pm := startPodmedicEnv(t, env, data, secrets, "--config", cfg, "--resync", "10m")
	c := stormClient(t, env)
	stuckSince := time.Now().Add(-40 * time.Minute)
	stormWait(t, pods, 8, func(ctx context.Context, i int) error {
		_, err := createPodRetrying(ctx, c, stuckWorker(ns, fmt.Sprintf("spark-driver-%03d", i)))
		return err
	}, nil)
	stormWait(t, pods, 8, func(ctx context.Context, i int) error {
		return writeStatusOnce(ctx, c, ns, fmt.Sprintf("spark-driver-%03d", i), initStuck(stuckSince))
	}, nil)

	// 100 proposals pending (the console says so at once); Slack has been told of a few.
	pending := func() int {
		n := 0
		for _, nt := range pm.findingNoticesCopy() {
			if nt.Proposal != nil && nt.Proposal.State == finding.StatePending {
				n++
			}
		}
		return n
	}
	require.Equal(t, pods, waitCounted(t, 2*time.Minute, pods, pending), "proposals pending before the kill")
	posted := func() map[string]int { return proposalMessages(t, sl) }
	waitCounted(t, time.Minute, 5, func() int { return len(posted()) })
	before := len(posted())
	pm.kill9()
	t.Logf("killed podmedic with %d proposals pending, %d of them posted to Slack", pods, before)

	pm2 := startPodmedicEnv(t, env, data, secrets, "--config", cfg, "--resync", "10m")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, sl.Wait(ctx, func(s *slackenv.Server) bool { return s.Hellos() >= 2 && s.Connections() > 0 }))
	restarted := time.Now()
	n := waitCounted(t, 3*time.Minute, pods, func() int { return len(posted()) })
	t.Logf("%d of %d proposals in Slack %s after the restart", n, pods, time.Since(restarted).Round(time.Second))

	// Alice approves every proposal; Bob clicks Approve on each too, after her.
	messages := map[string]slackenv.Message{}
	for _, m := range sl.Messages() {
		if id := approveValue(m.Blocks); id != "" {
			if _, ok := messages[id]; !ok {
				messages[id] = m
			}
		}
	}
	clickStart := time.Now()
	for _, who := range []string{"U0ALICE", "U0BOB"} {
		for id, m := range messages {
			envID, err := sl.SendInteractive(slackenv.Click{UserID: who, Channel: m.Channel, MessageTS: m.TS,
				ActionID: "podmedic.approve", Value: id}.Payload())
			require.NoError(t, err)
			_, err = sl.WaitAck(ctx, envID)
			require.NoError(t, err)
		}
	}
	gone := func() int { // one list, not a get per pod
		list, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return 0
		}
		left := make(map[string]bool, len(list.Items))
		for _, p := range list.Items {
			left[p.Name] = true
		}
		n := 0
		for i := range pods {
			if !left[fmt.Sprintf("spark-driver-%03d", i)] {
				n++
			}
		}
		return n
	}
	deleted := waitCounted(t, time.Minute, pods, gone)
	t.Logf("%d clicks acknowledged; %d pods deleted %s after the first click", 2*len(messages), deleted, time.Since(clickStart).Round(time.Second))
	waitCounted(t, 30*time.Second, pods, func() int { return countEvents(t, c, ns, actions.EventExecuted) })
	events := countEvents(t, c, ns, actions.EventExecuted)
	already := 0
	for _, call := range sl.CallsTo("chat.postEphemeral") {
		if call.User == "U0BOB" && strings.Contains(call.Text, "already approved") {
			already++
		}
	}
	pm2.stop()
	executed := len(pm.loggedExecutions()) + len(pm2.loggedExecutions())
	final := posted()
	dup := 0
	for _, k := range final {
		if k > 1 {
			dup++
		}
	}
	t.Logf("proposals pending %d, in Slack %d (posted twice %d), approved %d, pods deleted %d, actions executed %d, PodmedicExecuted Events %d, second clicks told 'already approved' %d",
		pods, len(final), dup, len(messages), deleted, executed, events, already)
	summary(t, begin, "proposals pending at SIGKILL %d (%d in Slack), approvable after restart %d, posted twice %d, approved %d, executed %d, Events %d, second approvals refused %d",
		pods, before, len(messages), dup, len(messages), executed, events, already)
	require.Len(t, messages, pods, "every pending proposal is in Slack after the restart")
	require.Zero(t, dup, "a proposal posted twice")
	require.Equal(t, pods, deleted)
	require.Equal(t, pods, executed, "each approval executes exactly once")
	require.Equal(t, pods, events)
	require.Equal(t, pods, already, "every second approval is refused")
}

// findingNoticesCopy returns the finding notices received so far.
func (p *podmedic) findingNoticesCopy() []finding.Notice {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]finding.Notice(nil), p.findingNotices...)
}

// proposalMessages counts the root messages in Slack that carry an Approve button, by
// proposal id.
func proposalMessages(t *testing.T, sl *slackenv.Server) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, call := range sl.CallsTo("chat.postMessage") {
		if call.OK() && call.ThreadTS == "" {
			if id := approveValue(call.Blocks); id != "" {
				out[id]++
			}
		}
	}
	return out
}

// approveValue is the value of the podmedic.approve button in blocks, or "".
func approveValue(blocks json.RawMessage) string {
	v, _, _ := findButton(blocks, "podmedic.approve")
	return v
}
