package slack

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/slackenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares a rendered message with testdata/<name>.golden.json, and has the local Slack
// (which enforces Slack's block limits) accept it.
func golden(t *testing.T, env *slackenv.Server, name string, r rendered) {
	t.Helper()
	got, err := json.MarshalIndent(struct {
		Text   string        `json:"text"`
		Blocks []slack.Block `json:"blocks"`
	}{r.Text, r.Blocks}, "", "  ")
	require.NoError(t, err)
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	} else {
		want, err := os.ReadFile(path)
		require.NoError(t, err, "missing golden file; run go test -run %s -update", t.Name())
		assert.Equal(t, string(want), string(got), "rendering of %s changed; review and run go test -update", name)
	}
	api := slack.New(slackenv.DefaultBotToken, slack.OptionAPIURL(env.URL()))
	_, _, err = api.PostMessageContext(t.Context(), "#golden", slack.MsgOptionText(r.Text, false), slack.MsgOptionBlocks(r.Blocks...))
	require.NoError(t, err, "Slack would refuse %s", name)
}

func blocksJSON(t *testing.T, r rendered) string {
	b, err := json.Marshal(r.Blocks)
	require.NoError(t, err)
	return string(b)
}

// actionsBlock returns the buttons of a rendered proposal.
func actionsBlock(r rendered) *slack.ActionBlock {
	for _, b := range r.Blocks {
		if a, ok := b.(*slack.ActionBlock); ok {
			return a
		}
	}
	return nil
}

// TestGoldenKinds renders the first message of a finding of every kind as the pipeline sends
// it: a pending proposal with buttons when its rule approves an action, else a notice.
func TestGoldenKinds(t *testing.T) {
	env := slackenv.Start(t)
	fx := fixtures()
	for _, k := range finding.Kinds() {
		t.Run(string(k), func(t *testing.T) {
			f, ok := fx[k]
			require.True(t, ok, "no fixture for kind %s", k)
			nt := noticeFor(f)
			var r rendered
			if p := nt.Proposal; p != nil {
				r = renderProposal(testSummaries, p, nil, p.State)
				a := actionsBlock(r)
				require.NotNil(t, a, "a pending proposal has buttons")
				assert.Equal(t, p.ID, a.BlockID)
				require.Len(t, a.Elements.ElementSet, 2)
				approve := a.Elements.ElementSet[0].(*slack.ButtonBlockElement)
				deny := a.Elements.ElementSet[1].(*slack.ButtonBlockElement)
				assert.Equal(t, ActionApprove, approve.ActionID)
				assert.Equal(t, ActionDeny, deny.ActionID)
				assert.Equal(t, p.ID, approve.Value)
				assert.Equal(t, p.ID, deny.Value)
				assert.Equal(t, destructive(p.Action.Type), approve.Confirm != nil, "confirm dialog only for destructive actions")
				assert.Nil(t, deny.Confirm)
			} else {
				r = renderGroup(testSummaries, []member{{f: f, action: f.Action, at: at}}, 10)
				assert.Nil(t, actionsBlock(r))
			}
			js := blocksJSON(t, r)
			assert.Contains(t, js, string(k))
			switch {
			case f.Pod != "":
				assert.Contains(t, js, f.Pod)
			case f.PVC != "":
				assert.Contains(t, js, f.PVC)
			default:
				assert.Contains(t, js, f.Spark.Application)
			}
			golden(t, env, "kind-"+string(k), r)
		})
	}
}

func TestMemoryProposalInWords(t *testing.T) {
	f := fixtures()[finding.OOMKilled]
	assert.Equal(t, "raise the memory of container `base`: limit 2Gi -&gt; 3Gi, request 1Gi -&gt; 2Gi", ActionWords(f, f.Action))
	r := renderProposal(testSummaries, proposalFor(f, "p1"), nil, finding.StatePending)
	assert.Contains(t, blocksJSON(t, r), "limit 2Gi -\\u0026gt; 3Gi, request 1Gi -\\u0026gt; 2Gi")
	assert.Contains(t, r.Text, "limit 2Gi -&gt; 3Gi, request 1Gi -&gt; 2Gi")

	g := *f
	g.Evidence = []string{"no memory limit", "memory request 2Gi"}
	g.Action = &finding.Action{Type: finding.ActionProposeMemoryLimit, Params: map[string]string{"container": "base", "limit": "3Gi", "request": "2Gi"}}
	assert.Equal(t, "raise the memory of container `base`: limit none -&gt; 3Gi, request 2Gi (unchanged)", ActionWords(&g, g.Action))
}

// decided returns the OOM proposal in a later state.
func decided(state finding.ProposalState, by string, outcome *finding.Outcome) *finding.Proposal {
	p := proposalFor(fixtures()[finding.OOMKilled], "p-oom-1")
	p.State = state
	p.DecidedBy = by
	if by != "" {
		p.DecidedAt = time.Date(2026, 11, 20, 3, 12, 0, 0, time.UTC)
	}
	p.Outcome = outcome
	return p
}

// TestGoldenDecisions renders the message after each decision (buttons replaced by who
// decided, when and the outcome) and the thread reply that records it.
func TestGoldenDecisions(t *testing.T) {
	env := slackenv.Start(t)
	done := time.Date(2026, 11, 20, 3, 12, 4, 0, time.UTC)
	cases := []struct {
		name string
		p    *finding.Proposal
		want string
	}{
		{"approved", decided(finding.StateApproved, "U012AB3CD", nil), "Approved* by <@U012AB3CD> at <!date^1795144320^{time}|03:12 UTC> -&gt; executing"},
		{"executed", decided(finding.StateExecuted, "U012AB3CD", &finding.Outcome{Result: finding.ResultExecuted, Message: "memory limit of ReplicaSet airflow/etl raised to 3Gi", At: done}),
			"Approved* by <@U012AB3CD> at <!date^1795144320^{time}|03:12 UTC> -&gt; memory limit of ReplicaSet airflow/etl raised to 3Gi"},
		{"failed", decided(finding.StateFailed, "U012AB3CD", &finding.Outcome{Result: finding.ResultFailed, Message: "pod changed since the proposal (new UID); nothing done", At: done}),
			"-&gt; failed: pod changed since the proposal (new UID); nothing done"},
		{"denied", decided(finding.StateDenied, "U012AB3CD", nil), "Denied* by <@U012AB3CD>"},
		{"denied-inbox", decided(finding.StateDenied, "inbox:alice", nil), "Denied* by alice (local inbox)"},
		{"expired", decided(finding.StateExpired, "", nil), "Expired* at <!date^1795142589^{time}|02:43 UTC> without a decision"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := renderProposal(testSummaries, c.p, nil, c.p.State)
			assert.Nil(t, actionsBlock(r), "no buttons after a decision")
			assert.Contains(t, blocksJSON(t, r), jsonEscape(c.want))
			golden(t, env, "decision-"+c.name, r)
			if c.p.State.Final() {
				reply := renderDecisionReply(c.p)
				assert.Contains(t, blocksJSON(t, reply), jsonEscape(c.want))
				golden(t, env, "decision-"+c.name+"-reply", reply)
			}
		})
	}
	t.Run("expired-by-time", func(t *testing.T) {
		p := decided(finding.StatePending, "", nil)
		r := renderProposal(testSummaries, p, nil, finding.StateExpired)
		assert.Nil(t, actionsBlock(r))
		assert.Contains(t, blocksJSON(t, r), "Expired")
	})
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return strings.Trim(string(b), `"`)
}

// TestGoldenModes: an action taken automatically with its outcome, and one suggested in
// notify mode.
func TestGoldenModes(t *testing.T) {
	env := slackenv.Start(t)
	f := *fixtures()[finding.Evicted]
	f.Action = &finding.Action{Type: finding.ActionEvictPod, Mode: finding.ModeAuto, Params: map[string]string{"grace_period": "30"}}
	auto := renderGroup(testSummaries, []member{{f: &f, action: f.Action, at: at,
		outcome: &finding.Outcome{Result: finding.ResultExecuted, Message: "pod evicted", At: at}}}, 10)
	assert.Contains(t, blocksJSON(t, auto), "Action taken automatically")
	golden(t, env, "mode-auto", auto)

	g := *fixtures()[finding.CrashLoop]
	g.Action = &finding.Action{Type: finding.ActionDeletePod, Mode: finding.ModeNotify, Params: map[string]string{}}
	notify := renderGroup(testSummaries, []member{{f: &g, action: g.Action, at: at}}, 10)
	assert.Contains(t, blocksJSON(t, notify), "notify mode, not executed")
	golden(t, env, "mode-notify", notify)
}

// TestGoldenGroup: a storm folded into one message, and the thread reply listing the rest.
func TestGoldenGroup(t *testing.T) {
	env := slackenv.Start(t)
	var ms []member
	for i := range 37 {
		f := worker(i)
		f.Airflow.TryNumber = 1 + i%2
		ms = append(ms, member{f: f, at: at.Add(time.Duration(i) * time.Second)})
	}
	r := renderGroup(testSummaries, ms, 10)
	js := blocksJSON(t, r)
	assert.Contains(t, js, "37× · DAG etl_daily, task load")
	assert.Contains(t, js, "…and 26 more, listed in the thread.")
	for i := range 11 {
		assert.Contains(t, js, worker(i).Pod)
	}
	assert.NotContains(t, js, worker(11).Pod)
	golden(t, env, "group", r)

	reply := renderMembers(ms[11:], 11, 36)
	rj := blocksJSON(t, reply)
	for i := 11; i < 37; i++ {
		assert.Contains(t, rj, worker(i).Pod)
	}
	golden(t, env, "group-reply", reply)
}

func TestGoldenRefusal(t *testing.T) {
	env := slackenv.Start(t)
	f := fixtures()[finding.InitStuck]
	r := renderRefusal(&finding.Notice{Type: finding.NoticeRefusal, Finding: f, Count: 7,
		Outcome: &finding.Outcome{Result: finding.ResultRefused, Message: "budget exhausted: 5 actions of rule init-stuck in the last 10m0s", At: at}})
	assert.Contains(t, blocksJSON(t, r), "budget exhausted")
	golden(t, env, "refusal", r)
}

// TestLongEvidenceStaysValid: evidence far beyond Slack's limits is cut, never refused.
func TestLongEvidenceStaysValid(t *testing.T) {
	env := slackenv.Start(t)
	f := *fixtures()[finding.PVCPending]
	f.Evidence = nil
	for range 40 {
		f.Evidence = append(f.Evidence, strings.Repeat("x<y>&z ", 300))
	}
	f.Namespace = strings.Repeat("n", 200)
	r := renderGroup(testSummaries, []member{{f: &f, at: at}}, 10)
	api := slack.New(slackenv.DefaultBotToken, slack.OptionAPIURL(env.URL()))
	_, _, err := api.PostMessageContext(t.Context(), "#x", slack.MsgOptionText(r.Text, false), slack.MsgOptionBlocks(r.Blocks...))
	require.NoError(t, err)
}

func TestGroupKey(t *testing.T) {
	fx := fixtures()
	assert.Equal(t, "oom|airflow|airflow|etl_daily|load", GroupKey(fx[finding.OOMKilled]))
	assert.Equal(t, "crash-loop|airflow|owner|ReplicaSet|airflow-dag-processor-7b9c6d5f4", GroupKey(fx[finding.CrashLoop]))
	assert.Equal(t, "pvc-pending|spark-jobs|kind|PVCPending", GroupKey(fx[finding.PVCPending]))
	sp := *fx[finding.Unschedulable]
	sp.Owner = finding.Owner{}
	assert.Equal(t, "unschedulable|spark-jobs|spark|spark-b0ef35939e7be10e667441c0098c5aef|checkpoint-compactor", GroupKey(&sp))
}

func TestChannelFor(t *testing.T) {
	cfg := Config{DefaultChannel: "#default", Routes: []Route{
		{Name: "oncall", Channel: "#airflow-oncall", Namespaces: []string{"airflow"}},
		{Name: "oncall", Channel: "#pager", Severities: []finding.Severity{finding.SeverityCritical}},
		{Name: "oncall", Channel: "#oncall"},
	}}
	f := func(route string, sev finding.Severity, ns string) *finding.Finding {
		return &finding.Finding{Route: route, Severity: sev, Namespace: ns}
	}
	assert.Equal(t, "#airflow-oncall", cfg.ChannelFor(f("oncall", finding.SeverityCritical, "airflow")))
	assert.Equal(t, "#pager", cfg.ChannelFor(f("oncall", finding.SeverityCritical, "spark")))
	assert.Equal(t, "#oncall", cfg.ChannelFor(f("oncall", finding.SeverityWarning, "spark")))
	assert.Equal(t, "#default", cfg.ChannelFor(f("", finding.SeverityWarning, "spark")))
	assert.Equal(t, "#default", cfg.ChannelFor(f("unknown-route", finding.SeverityWarning, "spark")))
	assert.Equal(t, "#fixed", cfg.ChannelFor(f("#fixed", finding.SeverityWarning, "spark")), "a rule's fixed notify.channel")
	assert.Equal(t, "C0123ABCD", cfg.ChannelFor(f("C0123ABCD", finding.SeverityWarning, "spark")))
	assert.Equal(t, "#default", cfg.ChannelFor(nil))
}

func TestSecretsNeverPrinted(t *testing.T) {
	cfg := Config{Secrets: Secrets{BotToken: "xoxb-secret", AppToken: "xapp-secret", SigningSecret: "shh"}}
	for _, s := range []string{
		func() string { b, _ := json.Marshal(cfg); return string(b) }(),
		fmtV(cfg), fmtPlusV(cfg), fmtSharpV(cfg),
	} {
		assert.NotContains(t, s, "secret")
		assert.NotContains(t, s, "shh")
	}
}

// TestScheduleField: a finding about a ScheduledSparkApplication names the schedule, and its
// state, not a run's attempts.
func TestScheduleField(t *testing.T) {
	f := &finding.Finding{Kind: finding.SparkAppFailed, Namespace: "spark", Severity: finding.SeverityCritical,
		Spark: &finding.SparkApp{Application: "sales-hourly", State: "FailedValidation", Schedule: true}}
	var texts []string
	for _, b := range fields(f) {
		texts = append(texts, b.Text)
	}
	assert.Contains(t, strings.Join(texts, "\n"), "ScheduledSparkApplication `sales-hourly`, FailedValidation")
	assert.NotContains(t, strings.Join(texts, "\n"), "attempt(s)")
}
