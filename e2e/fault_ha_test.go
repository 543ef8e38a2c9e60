//go:build faults

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/finding"
)

// TestFaultReplicasAndNATSNodeKilled runs three podmedic replicas against a three-node NATS
// cluster (streams and buckets R3, --nats-replicas 3) with an auto-mode rule that deletes
// Spark/Airflow workers stuck in Init. In the middle of a storm of 1,000 stuck pods one replica
// is killed (SIGKILL) and so is the NATS node that leads the observation stream. Every failure
// gives one finding (over the three replicas' output; a finding the killed replica reported just
// before it died may be reported again once by a survivor) and at most one deletion.
func TestFaultReplicasAndNATSNodeKilled(t *testing.T) {
	const pods = 1000
	begin := time.Now()
	env := cluster(t)
	nats := startNATS(t, 3)
	ns := actionNamespace(t, env, "fault-ha")
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck, init_timeout: 15m}
    action: {type: delete-pod, mode: auto, params: {grace_period: 30}}
`)
	var replicas []*podmedic
	for range 3 {
		replicas = append(replicas, startPodmedic(t, env, t.TempDir(), "--config", cfg, "--nats-url", nats.URL(),
			"--nats-replicas", "3", "--resync", "10m"))
	}
	c := stormClient(t, env)
	uids := createStorm(t, c, pods, func(i int) *corev1.Pod {
		return stuckWorker(ns, fmt.Sprintf("spark-submit-%04d", i))
	})

	start := time.Now()
	stuckSince := time.Now().Add(-40 * time.Minute)
	var killedNATS int
	stormWait(t, pods, 16, func(ctx context.Context, i int) error {
		return writeStatusOnce(ctx, c, ns, fmt.Sprintf("spark-submit-%04d", i), initStuck(stuckSince))
	}, func() {
		found := len(findingCount(finding.InitStuck, replicas...))
		replicas[0].kill9()
		killedNATS = max(nats.streamLeader(bus.StreamObservations), 0)
		nats.kill(killedNATS)
		t.Logf("killed podmedic replica 0 and nats-server %s (leader of %s) with %d findings so far",
			nats.nodes[killedNATS].name, bus.StreamObservations, found)
	})
	t.Logf("wrote %d Init-stuck statuses in %s", pods, time.Since(start).Round(time.Millisecond))

	// Messages the killed replica held come back after AckWait (30s).
	stormEnd := time.Now()
	n := waitCounted(t, 3*time.Minute, pods, func() int { return len(findingCount(finding.InitStuck, replicas...)) })
	t.Logf("%d failures with a finding %s after the storm", n, time.Since(stormEnd).Round(time.Millisecond))
	time.Sleep(5 * time.Second) // late duplicates would show now
	tl := countFindings(uids, findingCount(finding.InitStuck, replicas...))
	// A finding the killed replica reported in its last milliseconds — after its notice, before
	// it could settle the claim — is reported again by the replica that gets the observation
	// back: notices are at least once, never lost (README "Design"). So a duplicate is allowed
	// only as one copy from the killed replica and one from a survivor, and no more of them than
	// the killed replica had workers (16) handling observations.
	survivors := findingCount(finding.InitStuck, replicas[1:]...)
	killed := findingCount(finding.InitStuck, replicas[0])
	resumed := 0
	for u, n := range survivors {
		require.LessOrEqual(t, n, 1, "finding %s reported twice by the surviving replicas", u)
		if killed[u] > 0 {
			require.Equal(t, 1, killed[u], "finding %s reported twice by the killed replica", u)
			resumed++
		}
	}
	require.Equal(t, resumed, tl.duplicated, "failures reported twice (first: %v)", tl.duplicatedUIDs)
	require.LessOrEqual(t, resumed, 16, "more findings reported again than the killed replica had in hand")

	// Actions, counted three ways per pod: the deletions the replicas' guards logged (the
	// killed replica's log up to its death included), podmedic's PodmedicExecuted Events, and
	// the executed outcomes the replicas printed (a redelivered finding prints its outcome
	// again without acting: that count shows duplicate notices, not actions).
	printed := map[string]int{}
	for _, r := range replicas {
		for _, nt := range r.executedNotices() {
			printed[nt.Finding.Pod]++
		}
	}
	list, err := c.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	events := map[string]int{}
	for _, e := range list.Items {
		if e.ReportingController == "podmedic" && e.Reason == actions.EventExecuted {
			n := 1
			if e.Series != nil {
				n = int(e.Series.Count)
			}
			events[e.Regarding.Name] += n
		}
	}
	podList, err := c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	deleting := 0
	for _, p := range podList.Items {
		if p.DeletionTimestamp != nil {
			deleting++
		}
	}
	for _, r := range replicas[1:] {
		r.stop()
	}
	executed := map[string]int{}
	perReplica := make([]int, len(replicas))
	for i, r := range replicas {
		for _, target := range r.loggedExecutions() {
			executed[strings.TrimPrefix(target, "Pod "+ns+"/")]++
			perReplica[i]++
		}
	}
	over := func(m map[string]int) (total, twice int) {
		for _, n := range m {
			total += n
			if n > 1 {
				twice++
			}
		}
		return total, twice
	}
	acted, actedTwice := over(executed)
	evTotal, evTwice := over(events)
	prTotal, prTwice := over(printed)
	t.Logf("%s; deletions logged by the guards %d (per replica %v), pods deleted twice %d; PodmedicExecuted Events %d, pods with two %d; executed outcomes printed %d, printed twice %d; pods deleted %d of %d",
		tl, acted, perReplica, actedTwice, evTotal, evTwice, prTotal, prTwice, deleting, pods)
	summary(t, begin, "%s; pods deleted %d, deletions logged %d (%v per replica), pods acted on twice %d (Events: %d, twice %d), reported executed %d; killed replica 0 and nats-server %s",
		tl, deleting, acted, perReplica, actedTwice, evTotal, evTwice, prTotal, nats.nodes[killedNATS].name)
	require.Zero(t, tl.missing, "failures without a finding")
	require.Zero(t, tl.extra)
	require.Zero(t, actedTwice, "pods acted on twice")
	require.Zero(t, evTwice, "pods acted on twice (Events)")
	// Deletions the killed replica made without living to log them are in deleting, not in
	// acted.
	require.Equal(t, pods, deleting, "every stuck pod is deleted")
	require.LessOrEqual(t, acted, pods)
}

// executedNotices are the finding notices whose action was executed.
func (p *podmedic) executedNotices() []finding.Notice {
	p.mu.Lock()
	defer p.mu.Unlock()
	return noticesWhere(p.findingNotices, func(n finding.Notice) bool {
		return n.Type == finding.NoticeFinding && n.Outcome != nil && n.Outcome.Result == finding.ResultExecuted && n.Finding != nil
	})
}
