package demo

import (
	"bytes"
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/rules"
)

// TestDemoNight plays the bundled night through the real pipeline with the default rules and
// checks what a user sees: one finding per incident, of the right kind, nothing about the
// healthy pods, and a summary.
func TestDemoNight(t *testing.T) {
	cfg, err := rules.Parse(podmedic.DefaultRulesFile, podmedic.DefaultRules(), rules.NewDefaultRegistry())
	require.NoError(t, err)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{Config: cfg, ConfigName: "rules.yaml", Out: &out, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err, out.String())

	var got []string
	for _, f := range res.Findings {
		got = append(got, string(f.Kind)+" "+f.Namespace+"/"+f.Pod+f.PVC)
	}
	sort.Strings(got)
	require.Equal(t, []string{
		"Evicted spark/nightly-agg-exec-3",
		"InitStuck spark/nightly-agg-driver",
		"OOMKilled airflow/etl-load-7f9c",
		"PVCPending spark/spark-checkpoints-pvc",
		"SIGKILL airflow/reports-render-2b8e",
		"TaskFailed airflow/etl-publish-5c1d",
	}, got, out.String())

	text := out.String()
	require.Contains(t, text, "action    propose-memory-limit (approve): container=base limit=3Gi request=2Gi")
	require.Contains(t, text, "event FailedMount x11")
	require.Contains(t, text, "a higher memory limit will not help", "SIGKILL is not reported as OOM")
	require.NotContains(t, text, "etl-extract-9d2a  (rule", "the healthy worker has no finding")
	require.Contains(t, text, "findings            6 (OOMKilled 1, SIGKILL 1, InitStuck 1, Evicted 1, TaskFailed 1, PVCPending 1)")
	require.Contains(t, text, "pods without finding 2 of 7: airflow/etl-extract-9d2a, reporting/report-api-6c9f7d-x2x7q")
	// Findings are printed under the step that caused them.
	require.Less(t, strings.Index(text, "01:12  The load task"), strings.Index(text, "OOMKilled  airflow/etl-load-7f9c"))
	require.Less(t, strings.Index(text, "OOMKilled  airflow/etl-load-7f9c"), strings.Index(text, "01:14  The extract task"))
}

func TestParseScenarioErrors(t *testing.T) {
	_, err := ParseScenario([]byte("name: x\nstart: 2026-11-20T01:00:00Z\nsteps:\n- at: '1am'\n"))
	require.ErrorContains(t, err, `steps[0].at: "1am" is not HH:MM`)
	_, err = ParseScenario([]byte("name: x\nstart: 2026-11-20T01:00:00Z\nsteps:\n- at: '01:00'\n  sya: typo\n"))
	require.ErrorContains(t, err, "unknown field")
	_, err = ParseScenario([]byte("name: x\nstart: 2026-11-20T01:00:00Z\nsteps:\n- at: '02:00'\n- at: '01:30'\n"))
	require.ErrorContains(t, err, "steps[1].at 01:30 is earlier than the step before")
	sc, err := ParseScenario([]byte("name: x\nstart: 2026-11-20T22:00:00Z\nsteps:\n- at: '23:00'\n- at: '01:30'\n"))
	require.NoError(t, err)
	require.Equal(t, "2026-11-21T01:30:00Z", sc.Steps[1].Time().Format(time.RFC3339), "past midnight is the next day")
}
