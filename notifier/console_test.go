package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

// TestConsoleReport: a report is its title and its text indented, or the notice in JSON.
func TestConsoleReport(t *testing.T) {
	n := &finding.Notice{Type: finding.NoticeReport, Title: "Sweep sweep-evicted: deleted 10 of 30 pods",
		Text: "acted on   10\n\nremaining  20 (next run)\n", Route: "oncall"}
	assert.Equal(t, "REPORT   Sweep sweep-evicted: deleted 10 of 30 pods\n  acted on   10\n\n  remaining  20 (next run)\n", RenderNotice(n))

	var buf bytes.Buffer
	c, err := NewConsole(&buf, FormatJSON)
	require.NoError(t, err)
	require.NoError(t, c.Notify(context.Background(), n))
	var got finding.Notice
	require.NoError(t, json.Unmarshal(buf.Bytes(), &got))
	assert.Equal(t, *n, got)
}

// TestConsoleSparkLines: a finding about a SparkApplication run says its state and attempts;
// one about a ScheduledSparkApplication says it is the schedule, and its state.
func TestConsoleSparkLines(t *testing.T) {
	run := &finding.Finding{Kind: finding.SparkAppFailed, Namespace: "spark", Severity: finding.SeverityCritical,
		Spark: &finding.SparkApp{Application: "sales-20261120", State: "FAILED", Attempts: 2}}
	assert.Contains(t, RenderText(run), "  spark     application sales-20261120, FAILED after 2 attempt(s)\n")
	sched := &finding.Finding{Kind: finding.SparkAppFailed, Namespace: "spark", Severity: finding.SeverityCritical,
		Spark: &finding.SparkApp{Application: "sales-hourly", State: "FailedValidation", Schedule: true}}
	assert.Contains(t, RenderText(sched), "  spark     ScheduledSparkApplication sales-hourly, FailedValidation\n")
}
