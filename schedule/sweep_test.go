package schedule

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/rules"
)

const evictedRules = `version: 1
cluster: test
rules:
  - {name: evicted, detect: {kind: Evicted}}
  - {name: init-stuck, detect: {kind: InitStuck, init_timeout: 15m}}
schedules:
  - name: sweep-evicted
    cron: "*/15 * * * *"
    sweep:
      kind: Evicted
      older_than: 1h
      phases: [Failed]
      action: {type: delete-pod, mode: auto}
      budget: 10
  - name: sweep-init-stuck
    cron: "*/10 * * * *"
    sweep:
      kind: InitStuck
      older_than: 30m
      action: {type: delete-pod, mode: approve}
      budget: 3
  - name: list-evicted
    cron: "@hourly"
    sweep:
      kind: Evicted
      action: {type: delete-pod, mode: notify}
`

// TestSweepBudget: 30 pods evicted more than an hour ago and 5 evicted minutes ago; with a
// budget of 10 a run deletes exactly the 10 oldest, leaves the young ones alone, and says 20
// remain. The next run takes the next 10.
func TestSweepBudget(t *testing.T) {
	e := newSweepEnv(t, evictedRules, actions.Policy{Cooldown: 30 * time.Minute}, false)
	for i := range 30 {
		// old-00 was evicted longest ago.
		e.create(evicted("airflow", fmt.Sprintf("old-%02d", i), t0.Add(-3*time.Hour+time.Duration(i)*time.Minute)))
	}
	for i := range 5 {
		e.create(evicted("airflow", fmt.Sprintf("young-%02d", i), t0.Add(-10*time.Minute)))
	}

	rep := e.sweep("sweep-evicted")
	require.Empty(t, rep.Error)
	assert.Equal(t, 30, rep.Candidates)
	assert.Equal(t, 5, rep.Younger)
	assert.Equal(t, 10, rep.Acted)
	assert.Equal(t, 20, rep.Remaining)
	assert.Zero(t, rep.RefusedTotal())
	assert.Equal(t, "Sweep sweep-evicted: deleted 10 of 30 Evicted pods; 20 remain", rep.Title())
	assert.Contains(t, rep.Text(), "remaining  20 remain for the next run")
	assert.Equal(t, append(names("old", 10, 30), names("young", 0, 5)...), e.pods("airflow"), "the 10 oldest are gone, nothing else")

	// Each action is recorded as the Service records its own: in the store and on the audit
	// stream; and the actions stage sent no notice per pod (the run's report is one).
	ps, err := actions.KVProposalStore{KV: e.kv}.List(context.Background())
	require.NoError(t, err)
	require.Len(t, ps, 10)
	for _, p := range ps {
		assert.Equal(t, finding.StateExecuted, p.State)
		assert.Equal(t, "sweep-evicted", p.Finding.Rule)
		assert.Equal(t, actions.AutoDecider, p.DecidedBy)
	}
	assert.Len(t, e.rec.audit, 10)
	assert.Empty(t, e.rec.Notices())

	e.now = e.now.Add(15 * time.Minute)
	rep = e.sweep("sweep-evicted")
	assert.Equal(t, []int{20, 10, 10}, []int{rep.Candidates, rep.Acted, rep.Remaining})
	assert.Equal(t, append(names("old", 20, 30), names("young", 0, 5)...), e.pods("airflow"))
}

// TestSweepStorm: 3,000 candidates against a budget of 50: one run deletes 50, says 2,950
// remain, and notifies nothing per pod.
func TestSweepStorm(t *testing.T) {
	var pods []runtime.Object
	for i := range 3000 {
		pods = append(pods, evicted(fmt.Sprintf("ns-%d", i%7), fmt.Sprintf("pod-%04d", i), t0.Add(-2*time.Hour-time.Duration(i)*time.Second)))
	}
	e := newSweepEnv(t, evictedRules, actions.Policy{}, false, pods...)
	e.job("sweep-evicted").Sweep.Budget = 50
	start := time.Now()
	rep := e.sweep("sweep-evicted")
	t.Logf("3000 candidates swept in %s", time.Since(start).Round(time.Millisecond))
	assert.Equal(t, []int{3000, 50, 2950}, []int{rep.Candidates, rep.Acted, rep.Remaining})
	assert.Len(t, rep.Targets, maxTargets)
	assert.Equal(t, "ns-3/pod-2999", rep.Targets[0], "oldest eviction first")
	assert.Empty(t, e.rec.Notices())
}

// TestSweepGlobalBudget: the guard's budgets hold for sweeps: with 4 actions left in the
// cluster's budget, the run deletes 4, counts the refusal, and leaves the rest for later.
func TestSweepGlobalBudget(t *testing.T) {
	e := newSweepEnv(t, evictedRules, actions.Policy{Total: &actions.Limit{Max: 4, Window: time.Hour}}, false)
	for i := range 12 {
		e.create(evicted("airflow", fmt.Sprintf("old-%02d", i), t0.Add(-2*time.Hour+time.Duration(i)*time.Minute)))
	}
	rep := e.sweep("sweep-evicted")
	assert.Equal(t, 4, rep.Acted)
	assert.Equal(t, map[string]int{"budget": 1}, rep.Refused)
	assert.Equal(t, 7, rep.Remaining)
	assert.Equal(t, names("old", 4, 12), e.pods("airflow"))
	assert.Contains(t, rep.Text(), "refused    1: budget 1")
}

// TestSweepRefusals: the guard's scope and owner policy hold for sweeps; each refusal is
// counted by reason, and the sweep goes on with the next pod.
func TestSweepRefusals(t *testing.T) {
	e := newSweepEnv(t, evictedRules, actions.Policy{}, false)
	e.create(evicted("airflow", "worker", t0.Add(-2*time.Hour)))
	e.create(evicted("kube-system", "worker", t0.Add(-2*time.Hour)))
	e.create(evicted("podmedic", "worker", t0.Add(-2*time.Hour)))
	bare := evicted("reporting", "api", t0.Add(-2*time.Hour))
	bare.Labels, bare.Annotations = nil, nil // neither Airflow nor Spark, and no controller
	e.create(bare)
	sts := evicted("reporting", "db-0", t0.Add(-2*time.Hour))
	sts.Labels, sts.Annotations = nil, nil
	sts.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "db", UID: "sts", Controller: ptr(true)}}
	e.create(sts)

	rep := e.sweep("sweep-evicted")
	assert.Equal(t, 5, rep.Candidates)
	assert.Equal(t, 1, rep.Acted)
	assert.Equal(t, map[string]int{"protected-namespace": 2, "owner-policy": 2}, rep.Refused)
	assert.Zero(t, rep.Remaining)
	assert.Empty(t, e.pods("airflow"))
	assert.Equal(t, []string{"api", "db-0"}, e.pods("reporting"))
}

// TestSweepDryRun: in dry-run the guard records what it would do and nothing is deleted.
func TestSweepDryRun(t *testing.T) {
	e := newSweepEnv(t, evictedRules, actions.Policy{}, true)
	for i := range 3 {
		e.create(evicted("airflow", fmt.Sprintf("old-%02d", i), t0.Add(-2*time.Hour)))
	}
	rep := e.sweep("sweep-evicted")
	assert.Equal(t, 3, rep.Acted)
	assert.True(t, rep.DryRun)
	assert.Equal(t, "Sweep sweep-evicted: would have deleted 3 of 3 Evicted pods", rep.Title())
	assert.Len(t, e.pods("airflow"), 3)
}

// TestSweepApprove: approve mode proposes within the budget, one proposal per pod with its
// own notice; a pod already proposed (by an earlier run, or by a rule) is not proposed again.
func TestSweepApprove(t *testing.T) {
	e := newSweepEnv(t, evictedRules, actions.Policy{}, false)
	for i := range 5 {
		e.create(initStuck("spark-jobs", fmt.Sprintf("driver-%02d", i), t0.Add(-50*time.Minute+time.Duration(i)*time.Minute)))
	}
	e.create(initStuck("spark-jobs", "driver-young", t0.Add(-20*time.Minute)))

	rep := e.sweep("sweep-init-stuck")
	assert.Equal(t, []int{5, 1, 3, 0, 2}, []int{rep.Candidates, rep.Younger, rep.Proposed, rep.Pending, rep.Remaining})
	assert.Equal(t, []string{"spark-jobs/driver-00", "spark-jobs/driver-01", "spark-jobs/driver-02"}, rep.Targets)
	assert.Equal(t, "Sweep sweep-init-stuck: proposed 3 of 5 InitStuck pods; 2 remain", rep.Title())
	proposals := e.rec.OfType(finding.NoticeFinding)
	require.Len(t, proposals, 3, "each proposal has its own notice (its buttons)")
	for _, n := range proposals {
		require.NotNil(t, n.Proposal)
		assert.Equal(t, finding.StatePending, n.Proposal.State)
		assert.Equal(t, "sweep-init-stuck", n.Proposal.Finding.Rule)
	}
	assert.Len(t, e.pods("spark-jobs"), 6, "nothing deleted before an approval")

	e.now = e.now.Add(10 * time.Minute)
	rep = e.sweep("sweep-init-stuck")
	assert.Equal(t, []int{6, 3, 3, 0}, []int{rep.Candidates, rep.Proposed, rep.Pending, rep.Remaining}, "driver-young is old enough now")
	rep = e.sweep("sweep-init-stuck")
	assert.Equal(t, []int{0, 6, 0}, []int{rep.Proposed, rep.Pending, rep.Remaining})
	assert.False(t, rep.worthTelling(), "only pods waiting for a decision: nothing to tell")
	assert.Len(t, e.rec.OfType(finding.NoticeFinding), 6)

	// An approval executes through the guard as any proposal does.
	p, err := e.svc.Decide(context.Background(), actions.ProposalID(&proposals[0].Proposal.Finding), "U012AB3CD", true)
	require.NoError(t, err)
	assert.Equal(t, finding.StateExecuted, p.State, p.Outcome)
	assert.False(t, slices.Contains(e.pods("spark-jobs"), "driver-00"))
}

// TestSweepNotifyMode lists the pods without acting.
func TestSweepNotifyMode(t *testing.T) {
	e := newSweepEnv(t, evictedRules, actions.Policy{}, false)
	e.create(evicted("airflow", "a", t0.Add(-2*time.Hour)))
	e.create(evicted("airflow", "b", t0.Add(-time.Minute)))
	rep := e.sweep("list-evicted")
	assert.Equal(t, []int{2, 0, 0}, []int{rep.Candidates, rep.Acted, rep.Remaining})
	assert.Equal(t, []string{"airflow/a", "airflow/b"}, rep.Targets)
	assert.Equal(t, "Sweep list-evicted: found 2 Evicted pods", rep.Title())
	assert.Contains(t, rep.Text(), "listed     airflow/a, airflow/b (mode notify: nothing done)")
	assert.True(t, rep.worthTelling())
	assert.Len(t, e.pods("airflow"), 2)
}

// TestSweepFollowsTheRules: a sweep takes the rules' findings: a pod the rules in force do not
// find (outside the rule's match) is not a candidate, since the guard would refuse it.
func TestSweepFollowsTheRules(t *testing.T) {
	e := newSweepEnv(t, `version: 1
rules:
  - {name: evicted, detect: {kind: Evicted}, match: {namespaces: {include: [airflow]}}}
schedules:
  - name: sweep
    cron: "@hourly"
    sweep: {kind: Evicted, action: {type: delete-pod, mode: auto}}
`, actions.Policy{}, false)
	e.create(evicted("airflow", "a", t0.Add(-2*time.Hour)))
	e.create(evicted("spark-jobs", "b", t0.Add(-2*time.Hour)))
	rep := e.sweep("sweep")
	assert.Equal(t, []int{1, 1, 0}, []int{rep.Candidates, rep.Acted, rep.RefusedTotal()})
	assert.Equal(t, []string{"b"}, e.pods("spark-jobs"))
}

// TestSweepSkipsDeletedPods: a pod already being deleted is not a candidate.
func TestSweepSkipsDeletedPods(t *testing.T) {
	e := newSweepEnv(t, evictedRules, actions.Policy{}, false)
	p := evicted("airflow", "a", t0.Add(-2*time.Hour))
	now := metav1.NewTime(t0)
	p.DeletionTimestamp, p.Finalizers = &now, []string{"example.com/hold"}
	e.create(p)
	rep := e.sweep("sweep-evicted")
	assert.Zero(t, rep.Candidates)
}

func TestFailureSince(t *testing.T) {
	reg := rules.NewDefaultRegistry()
	ev := evicted("airflow", "a", t0.Add(-2*time.Hour))
	assert.Equal(t, t0.Add(-2*time.Hour), reg.FailureSince(&finding.Finding{Kind: finding.Evicted}, ev), "the DisruptionTarget condition")
	ev.Status.Conditions = ev.Status.Conditions[1:]
	assert.Equal(t, t0.Add(-2*time.Hour+time.Second), reg.FailureSince(&finding.Finding{Kind: finding.Evicted}, ev), "else not ready since")
	ev.Status.Conditions = nil
	assert.Equal(t, t0.Add(-2*time.Hour-40*time.Minute), reg.FailureSince(&finding.Finding{Kind: finding.Evicted}, ev), "else the start")
	ev.Status.StartTime = nil
	assert.Equal(t, t0.Add(-72*time.Hour), reg.FailureSince(&finding.Finding{Kind: finding.Evicted}, ev), "else the creation")

	st := initStuck("spark", "d", t0.Add(-50*time.Minute))
	assert.Equal(t, t0.Add(-50*time.Minute), reg.FailureSince(&finding.Finding{Kind: finding.InitStuck}, st))

	oom := airflowPod("airflow", "o")
	oom.Status.ContainerStatuses = []corev1.ContainerStatus{
		{Name: "sidecar", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(t0.Add(-time.Minute))}}},
		{Name: "base", LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "OOMKilled", FinishedAt: metav1.NewTime(t0.Add(-90 * time.Minute))}}},
	}
	assert.Equal(t, t0.Add(-90*time.Minute), reg.FailureSince(&finding.Finding{Kind: finding.OOMKilled, Container: "base"}, oom))

	un := airflowPod("airflow", "u")
	un.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(t0.Add(-25 * time.Minute))}}
	assert.Equal(t, t0.Add(-25*time.Minute), reg.FailureSince(&finding.Finding{Kind: finding.Unschedulable}, un))

	term := airflowPod("airflow", "t")
	del := metav1.NewTime(t0.Add(-time.Hour))
	term.DeletionTimestamp = &del
	assert.Equal(t, t0.Add(-time.Hour), reg.FailureSince(&finding.Finding{Kind: finding.StuckTerminating}, term))
}

func ptr[T any](v T) *T { return &v }
