package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/schedule"
)

// TestDigestFromDataDir: `podmedic digest` reads the embedded store a stopped `podmedic run`
// left: findings and proposal transitions of the window, as text and as JSON.
func TestDigestFromDataDir(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Options{DataDir: dir})
	require.NoError(t, err)
	oom := finding.Finding{Kind: finding.OOMKilled, Rule: "oom", Namespace: "airflow", Pod: "etl-load-1",
		Airflow: &finding.AirflowTask{DagID: "etl_daily", TaskID: "load", RunID: "r1", TryNumber: 1}}
	for i, pod := range []string{"etl-load-1", "etl-load-2"} {
		f := oom
		f.Pod, f.UID = pod, pod
		require.NoError(t, b.PublishJSON(ctx, "podmedic.findings.prod.OOMKilled", f.Key(), f), i)
	}
	require.NoError(t, b.PublishJSON(ctx, "podmedic.findings.other.Evicted", "x", finding.Finding{Kind: finding.Evicted, Namespace: "spark"}))
	p := finding.Proposal{ID: "aaaaaaaaaaaaa", Finding: oom, Action: finding.Action{Type: finding.ActionDeletePod}, State: finding.StateExpired,
		CreatedAt: time.Now().Add(-time.Hour), ExpiresAt: time.Now().Add(-30 * time.Minute), Target: finding.Target{Kind: "Pod", Namespace: "airflow", Name: "etl-load-1"}}
	require.NoError(t, b.PublishJSON(ctx, "podmedic.audit.prod.proposal", "aaaaaaaaaaaaa/expired", p))

	// While podmedic runs: the digest reads a copy and leaves the store alone.
	code, out, errOut := cli(t, "digest", "--data-dir", dir, "--cluster", "prod")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "2 incidents")
	require.NoError(t, b.PublishJSON(ctx, "podmedic.findings.prod.OOMKilled", "later", finding.Finding{Kind: finding.OOMKilled, Namespace: "airflow"}))
	require.NoError(t, b.Close())
	b, err = bus.Open(ctx, bus.Options{DataDir: dir})
	require.NoError(t, err, "the store opens as before")
	info, err := b.JetStream().Stream(ctx, bus.StreamAudit)
	require.NoError(t, err)
	require.Equal(t, uint64(5), info.CachedInfo().State.Msgs)
	require.NoError(t, b.Close())

	code, out, errOut = cli(t, "digest", "--since", "24h", "--data-dir", dir, "--cluster", "prod")
	require.Equal(t, 0, code, errOut)
	require.True(t, strings.HasPrefix(out, "Digest · prod · last 24h: 3 incidents, 0 actions taken, 0 pending approvals\n"), out)
	require.Contains(t, out, "  OOMKilled              3  airflow 3")
	require.Contains(t, out, "  etl_daily.load    2  (OOMKilled 2; 1 run)")
	require.Contains(t, out, "Expired without a decision: 1\n  aaaaaaaaaaaaa  delete-pod")

	code, out, errOut = cli(t, "digest", "--since", "2d", "--data-dir", dir, "--output", "json")
	require.Equal(t, 0, code, errOut)
	var d schedule.Digest
	require.NoError(t, json.Unmarshal([]byte(out), &d))
	require.Equal(t, 4, d.Incidents, "every cluster without --cluster")
	require.Equal(t, "", d.Cluster)
	require.Equal(t, 48*time.Hour, d.Until.Sub(d.Since))
}

func TestDigestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "yesterday"}, `podmedic: --since: "yesterday" is not a duration such as 24h or 7d`},
		{[]string{"--output", "yaml"}, `podmedic: --output: unknown format "yaml"`},
		{[]string{"--nats-url", "nats://127.0.0.1:1", "--data-dir", "x"}, "podmedic: give --nats-url or --data-dir, not both"},
		{[]string{"--data-dir", filepath.Join("testdata", "nope")}, "podmedic: no podmedic store in testdata/nope (no PODMEDIC_AUDIT stream"},
		{[]string{"--nats-url", "nats://127.0.0.1:1"}, "podmedic: connect to NATS at nats://127.0.0.1:1"},
	} {
		code, out, errOut := cli(t, append([]string{"digest"}, tc.args...)...)
		require.Equal(t, 1, code, tc.args)
		require.Empty(t, out)
		require.True(t, strings.HasPrefix(errOut, tc.want), "stderr: %q", errOut)
		require.Equal(t, 1, strings.Count(errOut, "\n"), "one line: %q", errOut)
	}
}
