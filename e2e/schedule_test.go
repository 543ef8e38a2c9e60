package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/app"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/schedule"
)

// sharedNATS is a NATS server with JetStream that several podmedic instances reach by URL
// (in-process here, listening on a loopback port), as replicas reach an external NATS.
func sharedNATS(t *testing.T) string {
	t.Helper()
	srv, err := server.NewServer(&server.Options{ServerName: "e2e-schedule", Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(10*time.Second), "nats server not ready")
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv.ClientURL()
}

// replica is one podmedic (app.Run in-process) of several against one apiserver and one NATS.
type replica struct {
	*daemon
	id string

	mu      sync.Mutex
	reports []finding.Notice
}

// startReplica runs podmedic with the rules.yaml at path against natsURL; its schedules elect
// their leader on a Lease in leaseNS with identity id (short timings, so a handover takes a
// second or two).
func startReplica(t *testing.T, env *kubeenv.Env, path, natsURL, leaseNS, id string) *replica {
	t.Helper()
	r := &replica{id: id}
	r.daemon = startDaemon(t, "podmedic "+id, path, app.Options{
		Client: env.Client, NATSURL: natsURL, Resync: 10 * time.Minute, Workers: 2,
		Notifier: notifier.Func(func(_ context.Context, n *finding.Notice) error {
			if n.Type == finding.NoticeReport {
				r.mu.Lock()
				r.reports = append(r.reports, *n)
				r.mu.Unlock()
			}
			return nil
		}),
		Logger:  zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named(id),
		Actions: app.ActionsOptions{Interval: time.Second, RefusalQuiet: time.Second},
		Schedule: app.ScheduleOptions{LeaseNamespace: leaseNS, Identity: id,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 500 * time.Millisecond},
	})
	return r
}

func (r *replica) reportsOf(job string) []finding.Notice {
	r.mu.Lock()
	defer r.mu.Unlock()
	return noticesWhere(r.reports, func(n finding.Notice) bool { return strings.HasPrefix(n.Title, "Sweep "+job+":") })
}

// evictedAt is the status the kubelet writes for a pod it evicted at t under memory pressure
// (kubelets since 1.26 add the DisruptionTarget condition, whose time is the eviction's).
func evictedAt(t time.Time) func(*corev1.PodStatus) {
	return func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.Reason = "Evicted"
		s.Message = "The node was low on resource: memory. Threshold quantity: 100Mi, available: 42Mi. "
		s.StartTime = &metav1.Time{Time: t.Add(-30 * time.Minute)}
		s.Conditions = []corev1.PodCondition{
			{Type: "DisruptionTarget", Status: corev1.ConditionTrue, Reason: "TerminationByKubelet",
				Message: "The node was low on resource: memory.", LastTransitionTime: metav1.Time{Time: t}},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "PodFailed", LastTransitionTime: metav1.Time{Time: t}},
		}
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", Image: "apache/airflow:2.10.3",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "Error",
				StartedAt: metav1.Time{Time: t.Add(-30 * time.Minute)}, FinishedAt: metav1.Time{Time: t}}}}}
	}
}

// createEvicted creates an Airflow worker scheduled on a node, evicted by its kubelet at the
// time at, and returns it as created.
func createEvicted(t *testing.T, c kubernetes.Interface, ns, name string, at time.Time) *corev1.Pod {
	t.Helper()
	p := airflowWorker(ns, name, "etl_daily", "aggregate")
	p.Spec.NodeName = "ip-10-0-4-203.ec2.internal"
	p = createPod(t, c, p)
	writeStatus(t, c, p, evictedAt(at))
	return p
}

// TestSweepEvictedPodsWithinBudget: 30 Airflow workers evicted more than an hour ago and 5
// evicted minutes ago, against the real apiserver. One run of the sweep (auto, budget 10)
// deletes exactly the 10 evicted longest ago through the guard, leaves the young ones alone,
// and its one report says 20 remain. The next run takes the next 10.
func TestSweepEvictedPodsWithinBudget(t *testing.T) {
	env := cluster(t)
	ns := actionNamespace(t, env, "sweep")
	path := writeRules(t, ns, `version: 1
cluster: e2e-sweep
namespaces: {include: [{{ns}}]}
rules:
  - name: evicted
    detect: {kind: Evicted}
schedules:
  - name: sweep-evicted
    cron: "0 0 1 1 *"   # yearly: the test runs it itself
    sweep:
      kind: Evicted
      older_than: 1h
      phases: [Failed]
      action: {type: delete-pod, mode: auto}
      budget: 10
    notify: {channel: "#data-oncall"}
`)
	natsURL := sharedNATS(t)
	pm := startReplica(t, env, path, natsURL, ns, "sweeper")
	c := env.Client
	now := time.Now().Truncate(time.Second)
	var old, young []string
	for i := range 30 {
		// etl-old-00 was evicted longest ago: 3h, then a minute later each.
		p := createEvicted(t, c, ns, fmt.Sprintf("etl-old-%02d", i), now.Add(-3*time.Hour+time.Duration(i)*time.Minute))
		old = append(old, p.Name)
	}
	for i := range 5 {
		p := createEvicted(t, c, ns, fmt.Sprintf("etl-young-%02d", i), now.Add(-10*time.Minute))
		young = append(young, p.Name)
	}

	rep, err := pm.h.RunSchedule(context.Background(), "sweep-evicted")
	require.NoError(t, err)
	t.Logf("run 1: %s\n%s", rep.Title(), rep.Text())
	require.Equal(t, 30, rep.Candidates)
	require.Equal(t, 5, rep.Younger)
	require.Equal(t, 10, rep.Acted, "the budget holds at exactly 10")
	require.Equal(t, 20, rep.Remaining)
	require.Zero(t, rep.RefusedTotal())
	require.Equal(t, "sweeper", rep.Leader)

	// What the cluster ends up as: the 10 evicted longest ago are gone, nothing else.
	require.Equal(t, append(slices.Clone(old[10:]), young...), podNames(t, ns))
	require.Eventually(t, func() bool {
		return strings.Contains(strings.Join(podmedicEvents(t, c, ns, old[0]), ","), "PodmedicExecuted")
	}, 10*time.Second, 100*time.Millisecond, "no PodmedicExecuted Event on the deleted pod")
	require.Contains(t, eventNote(t, c, ns, old[0], "PodmedicExecuted"), "pod "+ns+"/"+old[0]+" deleted")

	// One report for the run, to the job's channel, that says what the user needs.
	reports := pm.reportsOf("sweep-evicted")
	require.Len(t, reports, 1)
	require.Equal(t, "Sweep sweep-evicted: deleted 10 of 30 Evicted pods; 20 remain", reports[0].Title)
	require.Equal(t, "#data-oncall", reports[0].Route)
	require.Contains(t, reports[0].Text, "remaining  20 remain for the next run")
	require.Contains(t, reports[0].Text, "(and 5 more not old enough, left alone)")

	// The run and its actions are on the audit stream: the digest counts them.
	a, err := app.OpenAudit(context.Background(), natsURL, "")
	require.NoError(t, err)
	defer a.Close()
	d, err := (&schedule.Digester{Source: a.Source, Proposals: a.Proposals}).Build(context.Background(), "e2e-sweep", time.Now().Add(time.Second), time.Hour, 10)
	require.NoError(t, err)
	require.Equal(t, 10, d.Actions.Taken)
	require.Equal(t, []schedule.SweepCount{{Job: "sweep-evicted", Runs: 1, Acted: 10, Remaining: 20}}, d.Sweeps)
	require.Equal(t, 35, d.Incidents, "the rule reported every eviction")

	time.Sleep(1100 * time.Millisecond) // the next run is for a later second (its tick)
	rep, err = pm.h.RunSchedule(context.Background(), "sweep-evicted")
	require.NoError(t, err)
	require.Equal(t, []int{20, 10, 10}, []int{rep.Candidates, rep.Acted, rep.Remaining})
	require.Equal(t, append(slices.Clone(old[20:]), young...), podNames(t, ns))
}

// podNames returns the names of a namespace's pods that are not being deleted, sorted.
func podNames(t *testing.T, ns string) []string {
	t.Helper()
	list, err := suite.env.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	var out []string
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}

// TestScheduleRunsOnTheLeaderOnly: two podmedic instances against one apiserver and one NATS
// run a job every 2 seconds: each tick runs once, on the replica holding the Lease. When the
// leader stops, it releases the Lease and the other replica runs the next ticks, still once
// each.
func TestScheduleRunsOnTheLeaderOnly(t *testing.T) {
	env := cluster(t)
	ns := actionNamespace(t, env, "leader")
	path := writeRules(t, ns, `version: 1
cluster: e2e-leader
namespaces: {include: [{{ns}}]}
rules:
  - name: evicted
    detect: {kind: Evicted}
schedules:
  - name: list-evicted
    cron: "*/2 * * * * *"   # every 2 seconds
    sweep:
      kind: Evicted
      action: {type: delete-pod, mode: notify}
`)
	c := env.Client
	createEvicted(t, c, ns, "etl-evicted", time.Now().Add(-time.Hour))

	natsURL := sharedNATS(t)
	a := startReplica(t, env, path, natsURL, ns, "replica-a")
	require.Eventually(t, func() bool { return a.h.Scheduler().Leading() }, 20*time.Second, 50*time.Millisecond, "a does not lead")
	b := startReplica(t, env, path, natsURL, ns, "replica-b")
	time.Sleep(9 * time.Second)
	require.True(t, a.h.Scheduler().Leading())
	require.False(t, b.h.Scheduler().Leading(), "two leaders")
	lease, err := c.CoordinationV1().Leases(ns).Get(context.Background(), schedule.DefaultLeaseName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "replica-a", *lease.Spec.HolderIdentity)

	stopped := time.Now()
	a.stop()
	require.Eventually(t, func() bool { return b.h.Scheduler().Leading() }, 10*time.Second, 50*time.Millisecond, "b did not take over")
	t.Logf("b leads %s after a stopped", time.Since(stopped).Round(time.Millisecond))
	time.Sleep(7 * time.Second)
	b.stop()

	// Every tick ran once, on one replica: a's ticks, then b's.
	ticks := map[string][]string{} // tick -> replicas that ran it
	var order []string
	ran := map[string]int{} // replica -> ticks it ran
	for _, r := range []*replica{a, b} {
		for _, n := range r.reportsOf("list-evicted") {
			require.Contains(t, n.Text, "found      1")
			when := strings.Fields(strings.SplitN(n.Text, "run of ", 2)[1]) // "2026-11-21 08:15:04 UTC: ..."
			tick := when[0] + " " + when[1]
			ticks[tick] = append(ticks[tick], r.id)
			order = append(order, tick)
			ran[r.id]++
		}
	}
	for tick, by := range ticks {
		require.Len(t, by, 1, "tick %s ran on %v", tick, by)
	}
	aTicks, bTicks := ran[a.id], ran[b.id]
	t.Logf("ticks run: %d by a, %d by b, none twice", aTicks, bTicks)
	require.GreaterOrEqual(t, aTicks, 5, "a ran about one tick every 2s for 10s")
	require.GreaterOrEqual(t, bTicks, 3, "b ran the ticks after the handover")
	require.Equal(t, len(order), len(ticks))
}
