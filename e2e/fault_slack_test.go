//go:build faults

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/internal/testenv/slackenv"
)

// TestFaultSlackOutage: Slack answers every call with 429 (no Retry-After) for 30 seconds and
// then with 503 for 30 more, while 120 Airflow workers of 6 DAGs are OOM-killed and 10 Spark
// drivers get stuck (10 proposals); Slack's own rate limit (one message a second per channel)
// holds throughout. Once Slack answers again, every failure is in Slack — in its group's
// message or a thread reply of it, each proposal in a message of its own — and none twice.
func TestFaultSlackOutage(t *testing.T) {
	const dags, perDAG, stuck = 6, 20, 10
	begin := time.Now()
	env := cluster(t)
	const bot, app = "xoxb-fault-bot-token-3e9a", "xapp-1-fault-app-token-b21c"
	sl := slackenv.Start(t, slackenv.WithBotToken(bot), slackenv.WithAppToken(app), slackenv.WithRateLimit(time.Second, 1))
	ns := actionNamespace(t, env, "fault-slack")
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
slack:
  api_url: `+sl.URL()+`
  default_channel: "#data-oncall"
  socket_mode: true
  approvers: {users: [U0ALICE]}
rules:
  - name: oom
    detect: {kind: OOMKilled}
  - name: init-stuck
    detect: {kind: InitStuck, init_timeout: 15m}
    action: {type: delete-pod, mode: approve}
`)
	pm := startPodmedicEnv(t, env, t.TempDir(), []string{"SLACK_BOT_TOKEN=" + bot, "SLACK_APP_TOKEN=" + app},
		"--config", cfg, "--resync", "10m")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	require.NoError(t, sl.WaitConnected(ctx))

	outage := time.Now()
	sl.FailFor(30*time.Second, http.StatusTooManyRequests)
	c := stormClient(t, env)
	var names []string
	for d := range dags {
		for i := range perDAG {
			names = append(names, fmt.Sprintf("etl-d%d-%05d", d, i))
		}
	}
	for i := range stuck {
		names = append(names, fmt.Sprintf("spark-driver-%05d", i))
	}
	oomAt := time.Now().Add(-3 * time.Minute).Truncate(time.Second)
	stuckSince := time.Now().Add(-40 * time.Minute)
	stormWait(t, len(names), 8, func(ctx context.Context, i int) error {
		if i >= dags*perDAG {
			_, err := createPodRetrying(ctx, c, stuckWorker(ns, names[i]))
			if err == nil {
				err = writeStatusOnce(ctx, c, ns, names[i], initStuck(stuckSince))
			}
			return err
		}
		d := i / perDAG
		_, err := createPodRetrying(ctx, c, airflowWorker(ns, names[i], fmt.Sprintf("etl_%d", d), "load"))
		if err == nil {
			err = writeStatusOnce(ctx, c, ns, names[i], oomKilled(oomAt))
		}
		return err
	}, nil)
	require.Equal(t, len(names), waitCounted(t, time.Minute, len(names), func() int { return len(pm.all()) }), "findings")
	t.Logf("%d findings during the outage (%s in)", len(pm.all()), time.Since(outage).Round(time.Second))
	time.Sleep(time.Until(outage.Add(30 * time.Second)))
	sl.FailFor(30*time.Second, http.StatusServiceUnavailable)
	time.Sleep(time.Until(outage.Add(60 * time.Second)))
	recovered := time.Now()
	failed := 0
	for _, call := range sl.Calls() {
		if !call.At.Before(outage) && call.Status != http.StatusOK {
			failed++
		}
	}
	t.Logf("Slack answers again after %s; %d calls failed meanwhile", recovered.Sub(outage).Round(time.Second), failed)

	delivered := func() int {
		n := 0
		for _, k := range mentions(sl, names) {
			if k > 0 {
				n++
			}
		}
		return n
	}
	got := waitCounted(t, 4*time.Minute, len(names), delivered)
	t.Logf("%d of %d failures in Slack %s after it recovered", got, len(names), time.Since(recovered).Round(time.Second))
	time.Sleep(10 * time.Second) // a late duplicate would show now
	m := mentions(sl, names)
	missing, twice := 0, 0
	for _, k := range m {
		switch {
		case k == 0:
			missing++
		case k > 1:
			twice++
		}
	}
	roots := map[string]int{} // by the header text of the root messages: one per group or proposal
	for _, call := range sl.CallsTo("chat.postMessage") {
		if call.OK() && call.ThreadTS == "" {
			roots[call.Text]++
		}
	}
	rootsTwice := 0
	for _, k := range roots {
		if k > 1 {
			rootsTwice++
		}
	}
	var n429, n5xx, okCalls int
	for _, call := range sl.Calls() {
		switch {
		case call.Status == http.StatusTooManyRequests:
			n429++
		case call.Status >= 500:
			n5xx++
		case call.OK():
			okCalls++
		}
	}
	proposals := proposalMessages(t, sl)
	t.Logf("failures %d, findings %d, in Slack %d, missing %d, in two messages %d; root messages %d (posted twice %d), proposals %d; Slack answered 429 %d times, 5xx %d times, ok %d",
		len(names), len(pm.all()), len(names)-missing, missing, twice, len(roots), rootsTwice, len(proposals), n429, n5xx, okCalls)
	summary(t, begin, "notices for %d failures (%d groups, %d proposals) through 30s of 429 and 30s of 503: delivered %d, missing %d, twice %d, root messages posted twice %d; Slack answered 429 %d, 5xx %d; all in Slack %s after it recovered",
		len(names), dags, stuck, len(names)-missing, missing, twice, rootsTwice, n429, n5xx, time.Since(recovered).Round(time.Second))
	require.Zero(t, missing, "failures not in Slack")
	require.Zero(t, twice, "failures in two messages")
	require.Zero(t, rootsTwice, "a message posted twice")
	require.Len(t, proposals, stuck)
	for id, k := range proposals {
		require.Equal(t, 1, k, "proposal %s posted %d times", id, k)
	}
	require.Positive(t, n429)
	require.Positive(t, n5xx)
	pm.stop()
}

// mentions counts, for each name, the messages of Slack as they stand now (root messages and
// thread replies) whose blocks or text name it.
func mentions(sl *slackenv.Server, names []string) map[string]int {
	out := make(map[string]int, len(names))
	msgs := sl.Messages()
	for _, n := range names {
		out[n] = 0
		for _, m := range msgs {
			if strings.Contains(string(m.Blocks), n) || strings.Contains(m.Text, n) {
				out[n]++
			}
		}
	}
	return out
}
