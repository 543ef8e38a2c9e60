package actions

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

// outageKV is a KV whose budget keys do not answer for the next fail reads.
type outageKV struct {
	*MemoryKV
	fail atomic.Int32
}

var errNoResponse = errors.New("nats: no response from stream")

func (k *outageKV) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	if strings.HasPrefix(key, "budget.") && k.fail.Add(-1) >= 0 {
		return nil, 0, errNoResponse
	}
	return k.MemoryKV.Get(ctx, key)
}

// TestServiceStoreOutageBeforeActing: when the store of budgets does not answer, the guard
// attempts nothing — no execution, no Event, no notice — and the finding's delivery fails so
// that it is retried; the retry acts once. An approved proposal waits out a short outage and
// executes.
func TestServiceStoreOutageBeforeActing(t *testing.T) {
	kv := &outageKV{MemoryKV: NewMemoryKV()}
	policy := Policy{Rules: map[string]RulePolicy{"init-stuck": {Budget: &Limit{Max: 5, Window: time.Hour}}}}
	e := newServiceEnv(t, serviceConfig{kv: kv, policy: policy})
	ctx := context.Background()

	pod := e.createPod(stuckPod("airflow", "w1"))
	f := stuckFinding(pod, "init-stuck", finding.ModeAuto)
	kv.fail.Store(1)
	err := e.svc.Handle(ctx, f)
	require.ErrorIs(t, err, ErrNotAttempted)
	require.ErrorIs(t, err, errNoResponse)
	require.Zero(t, e.execs.Load())
	require.Empty(t, e.events.reasons(), "nothing was done: no Event")
	require.Empty(t, e.notices.Notices(), "not delivered: the delivery is retried")
	require.True(t, podExists(t, e.client, "airflow", "w1"))

	require.NoError(t, e.svc.Handle(ctx, f), "the retried delivery")
	require.Equal(t, int32(1), e.execs.Load())
	require.False(t, podExists(t, e.client, "airflow", "w1"))
	ns := e.notices.OfType(finding.NoticeFinding)
	require.Len(t, ns, 1)
	require.Equal(t, finding.ResultExecuted, ns[0].Outcome.Result)
	require.Equal(t, []string{EventExecuted}, e.events.reasons())

	// Approve mode: the approval outlasts two unanswered reads.
	pod2 := e.createPod(stuckPod("airflow", "w2"))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(pod2, "init-stuck", finding.ModeApprove)))
	var id string
	for _, n := range e.notices.OfType(finding.NoticeFinding) {
		if n.Proposal != nil && n.Proposal.State == finding.StatePending {
			id = n.Proposal.ID
		}
	}
	require.NotEmpty(t, id)
	kv.fail.Store(2)
	p, err := e.svc.Decide(ctx, id, "U0ALICE", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateExecuted, p.State, p.Outcome.Message)
	require.Equal(t, int32(2), e.execs.Load())
	require.False(t, podExists(t, e.client, "airflow", "w2"))
}

// TestGuardCooldownOwnedByTheRequest: a replica claimed a pod's cooldown for a request and died
// before it acted. The same request, retried, acts (its own claim); another request on the pod
// is refused; once the action is done the cooldown is settled and refuses everyone.
func TestGuardCooldownOwnedByTheRequest(t *testing.T) {
	pod := stuckPod("airflow", "w1")
	e := newGuardEnv(t, Policy{Cooldown: 30 * time.Minute}, false, pod)
	ctx := context.Background()
	r := deleteRequest(pod, "init-stuck", finding.ModeAuto, "")
	won, err := e.claims.ClaimFor(ctx, "cooldown."+targetKey(r.Target), r.ID, 30*time.Minute) // the replica that died
	require.NoError(t, err)
	require.True(t, won)

	other := deleteRequest(pod, "init-stuck", finding.ModeAuto, "")
	other.Finding.Occurrence = "a-later-failure"
	other.ID = ProposalID(other.Finding)
	require.NotEqual(t, r.ID, other.ID)
	_, err = e.guard.Do(ctx, other)
	require.ErrorIs(t, err, ErrCooldown, "another request on the pod")

	_, err = e.guard.Do(ctx, r)
	require.NoError(t, err, "the retried request")
	require.Equal(t, 1, e.counted)
	won, err = e.claims.ClaimFor(ctx, "cooldown."+targetKey(r.Target), r.ID, 30*time.Minute)
	require.NoError(t, err)
	require.False(t, won, "done: the cooldown is settled, even for the request that acted")
	require.True(t, e.claims.Claimed("cooldown."+targetKey(r.Target)))
}

// TestGuardExhaustedBudgetReadsNoPod: once a budget is spent, the next action is refused
// without reading its pod from the API (a storm of thousands of refusals would otherwise be
// paced by the client's rate limit).
func TestGuardExhaustedBudgetReadsNoPod(t *testing.T) {
	p1, p2 := stuckPod("airflow", "w1"), stuckPod("airflow", "w2")
	e := newGuardEnv(t, Policy{Rules: map[string]RulePolicy{"init-stuck": {Budget: &Limit{Max: 1, Window: time.Hour}}}}, false, p1, p2)
	ctx := context.Background()
	_, err := e.guard.Do(ctx, deleteRequest(p1, "init-stuck", finding.ModeAuto, ""))
	require.NoError(t, err)
	e.client.ClearActions()
	_, err = e.guard.Do(ctx, deleteRequest(p2, "init-stuck", finding.ModeAuto, ""))
	require.ErrorIs(t, err, ErrBudgetExhausted)
	for _, a := range e.client.Actions() {
		require.NotEqual(t, "get", a.GetVerb(), "read %s after the budget was spent", a.GetResource().Resource)
	}
	require.Equal(t, 1, e.counted)
}

// TestServiceReportsAnActionItsReplicaDidNotReport: a replica deleted a pod in auto mode and
// died before it recorded and reported it (the guard's marker is all that is left). The
// redelivered finding is reported with the action as taken, not executed again and not
// dropped as "about a pod podmedic deleted"; a later, different finding about the pod is.
func TestServiceReportsAnActionItsReplicaDidNotReport(t *testing.T) {
	e := newServiceEnv(t, serviceConfig{})
	ctx := context.Background()
	pod := e.createPod(stuckPod("airflow", "w1"))
	f := stuckFinding(pod, "init-stuck", finding.ModeAuto)
	r := &Request{ID: ProposalID(f), Finding: f, Action: *f.Action, Pod: pod,
		Target: finding.Target{Kind: "Pod", Namespace: "airflow", Name: "w1", UID: string(pod.UID)}}
	_, err := e.svc.guard.Do(ctx, r) // the replica's action, and then it died
	require.NoError(t, err)
	require.Equal(t, int32(1), e.execs.Load())

	require.NoError(t, e.svc.Handle(ctx, f), "the redelivered finding")
	require.Equal(t, int32(1), e.execs.Load(), "not executed again")
	ns := e.notices.OfType(finding.NoticeFinding)
	require.Len(t, ns, 1)
	require.Equal(t, finding.ResultExecuted, ns[0].Outcome.Result)
	require.Contains(t, ns[0].Outcome.Message, "the replica that acted stopped before it reported it")
	require.Equal(t, finding.StateExecuted, e.only().State)

	later := stuckFinding(pod, "stuck-terminating", finding.ModeApprove)
	later.Kind, later.Occurrence = finding.StuckTerminating, "terminating"
	require.ErrorIs(t, e.svc.Handle(ctx, later), ErrAfterAction)
}
