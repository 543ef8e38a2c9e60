package slack

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/slackenv"
)

// digestText is a digest as schedule.Digest.Text writes it (schedule/testdata/digest.txt).
const digestText = `prod-eu-1, 2026-11-19 08:15 to 2026-11-20 08:15 UTC

Incidents: 11
  kind               count  namespaces
  OOMKilled              5  airflow 4, reporting 1
  Evicted                3  spark-jobs 3
  SIGKILL                1  airflow 1
  InitStuck              1  spark-jobs 1
  TaskFailed             1  airflow 1
  by namespace: airflow 6, spark-jobs 4, reporting 1

Airflow tasks that failed most
  etl_daily.load        5  (OOMKilled 4, TaskFailed 1; 4 runs)
  etl_hourly.extract    1  (SIGKILL 1; 1 run)

Actions: 2 taken, 1 failed, 3 refused, 1 denied
  delete-pod             2 taken (1 in auto mode)
  propose-memory-limit   0 taken, 1 failed
  refused by reason: owner-policy 2, cooldown 1

Pending approvals: 1
  ggggggggggggg  delete-pod           Pod spark-jobs/driver-9 (rule sweep-init-stuck), since 11-20 08:05Z
Expired without a decision: 1
  fffffffffffff  delete-pod           Pod spark-jobs/driver-fffffffffffff (rule init-stuck), expired 11-20 05:45Z

Sweeps
  sweep-evicted          2 runs, 20 acted, 0 proposed, 2 refused, 10 remain
`

func TestGoldenReport(t *testing.T) {
	env := slackenv.Start(t)
	r := renderReport(&finding.Notice{Type: finding.NoticeReport, Title: "Digest · prod-eu-1 · last 24h: 11 incidents, 2 actions taken, 1 pending approval",
		Text: digestText, Route: "oncall"})
	assert.Contains(t, r.Text, "Digest · prod-eu-1")
	assert.Contains(t, blocksJSON(t, r), "etl_daily.load")
	golden(t, env, "report-digest", r)
}

// TestLongReportStaysValid: a report far beyond Slack's limits is cut into code blocks and
// then cut short, never refused; special characters are escaped.
func TestLongReportStaysValid(t *testing.T) {
	env := slackenv.Start(t)
	var b strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&b, "line %04d <tag> & more %s\n", i, strings.Repeat("x", i%300))
	}
	r := renderReport(&finding.Notice{Type: finding.NoticeReport, Title: strings.Repeat("T", 400), Text: b.String()})
	require.LessOrEqual(t, len(r.Blocks), 1+maxReportSections)
	js := blocksJSON(t, r)
	assert.Contains(t, js, "more line(s) not shown")
	assert.NotContains(t, js, "<tag>")
	api := slack.New(slackenv.DefaultBotToken, slack.OptionAPIURL(env.URL()))
	_, _, err := api.PostMessageContext(t.Context(), "#x", slack.MsgOptionText(r.Text, false), slack.MsgOptionBlocks(r.Blocks...))
	require.NoError(t, err)
}

func TestChannelForRoute(t *testing.T) {
	cfg := Config{DefaultChannel: "#default", Routes: []Route{
		{Name: "oncall", Channel: "#oncall", Severities: []finding.Severity{finding.SeverityCritical}, Namespaces: []string{"airflow"}},
		{Name: "oncall", Channel: "#later"},
	}}
	assert.Equal(t, "#oncall", cfg.ChannelForRoute("oncall"), "a report ignores the route's severities and namespaces")
	assert.Equal(t, "#fixed", cfg.ChannelForRoute("#fixed"))
	assert.Equal(t, "C0123ABCD", cfg.ChannelForRoute("C0123ABCD"))
	assert.Equal(t, "#default", cfg.ChannelForRoute("unknown"))
	assert.Equal(t, "#default", cfg.ChannelForRoute(""))
}

// TestReportDelivered: a report notice is posted once to its route's channel.
func TestReportDelivered(t *testing.T) {
	env := slackenv.Start(t)
	h := start(t, env, testConfig(env))
	require.NoError(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeReport,
		Title: "Sweep sweep-evicted · deleted 10 of 30", Text: "20 left for the next run", Route: "oncall"}))
	require.ErrorIs(t, h.n.Notify(t.Context(), &finding.Notice{Type: finding.NoticeReport}), ErrInvalidNotice)
	h.flush(t, 10*time.Second)
	msgs := topLevel(env, env.ChannelID("#oncall"))
	require.Len(t, msgs, 1)
	assert.Contains(t, msgs[0].Text, "20 left for the next run")
	assert.Empty(t, topLevel(env, env.ChannelID("#alerts")))
}
