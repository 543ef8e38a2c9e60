//go:build faults

package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

// TestFaultNATSRestartDuringStorm: podmedic runs against an external nats-server (file
// storage); in the middle of a storm of 1,000 OOM-killed workers the server is killed and
// started again on the same store. Every failure produces exactly one finding: the watchers
// retry the publishes that failed, the consumer resumes, nothing is handled twice.
func TestFaultNATSRestartDuringStorm(t *testing.T) {
	const pods = 1000
	begin := time.Now()
	env := cluster(t)
	nats := startNATS(t, 1)
	ns := actionNamespace(t, env, "fault-nats")
	pm := startPodmedic(t, env, t.TempDir(), "--config", writeRules(t, ns, oomRules), "--nats-url", nats.URL(),
		"--resync", "10m") // no resync during the test: every finding comes from a change
	var outage time.Duration
	uids := oomStorm(t, stormClient(t, env), ns, pods, 0, func() {
		outage = nats.restart(0, 8*time.Second)
		t.Logf("nats-server killed and restarted (unreachable for %s) with %d findings so far", outage.Round(time.Millisecond), len(pm.all()))
	})
	stormEnd := time.Now()
	n := waitCounted(t, 3*time.Minute, pods, func() int { return len(pm.all()) })
	t.Logf("%d findings %s after the storm", n, time.Since(stormEnd).Round(time.Millisecond))
	time.Sleep(5 * time.Second) // late duplicates would show now
	tl := countFindings(uids, findingCount(finding.OOMKilled, pm))
	pubErrs, naks := pm.metricSum("podmedic_observation_publish_errors_total"), pm.metric(`podmedic_bus_handled_total{outcome="nak"}`)
	t.Logf("%s; publish errors retried %.0f, observations naked %.0f, repeats %.0f", tl, pubErrs, naks,
		pm.metric("podmedic_findings_repeated_total"))
	summary(t, begin, "%s; NATS outage %s; publish errors retried %.0f", tl, outage.Round(time.Millisecond), pubErrs)
	require.Zero(t, tl.missing, "failures without a finding")
	require.Zero(t, tl.duplicated, "failures reported twice")
	require.Zero(t, tl.extra)
	pm.stop()
}
