package actions

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podmedic/podmedic/airflow"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
)

// serviceEnv is the actions stage over a fake cluster and in-memory stores.
type serviceEnv struct {
	t       *testing.T
	client  *fake.Clientset
	kv      KV
	claims  *MemoryClaimer
	clock   *clock
	events  *eventLog
	notices *notifier.Recorder
	audit   *auditLog
	reg     *prometheus.Registry
	svc     *Service
	execs   atomic.Int32 // executions that reached the real executors
}

type serviceConfig struct {
	policy  Policy
	airflow *airflow.Client // airflow-clear-task's client, when set
	// overrides: memory proposals of Airflow tasks store memory overrides here.
	overrides OverrideStore
	dryRun    bool
	kv        KV // default a MemoryKV
	objs      []runtime.Object
}

func newServiceEnv(t *testing.T, cfg serviceConfig) *serviceEnv {
	t.Helper()
	e := &serviceEnv{t: t, client: fakeCluster(false, cfg.objs...), kv: cfg.kv, clock: newClock(), events: &eventLog{},
		notices: &notifier.Recorder{}, audit: &auditLog{}, reg: prometheus.NewRegistry()}
	if e.kv == nil {
		e.kv = NewMemoryKV()
	}
	e.claims = NewMemoryClaimer(e.clock.now)
	count := func(x Executor) Executor { return counting{x, &e.execs} }
	metrics := NewMetrics(e.reg)
	log := zaptest.NewLogger(t)
	execs := Executors{
		finding.ActionDeletePod:          count(DeletePod{Client: e.client}),
		finding.ActionEvictPod:           count(EvictPod{Client: e.client}),
		finding.ActionProposeMemoryLimit: count(PatchMemoryLimit{Client: e.client}),
	}
	if cfg.overrides != nil {
		execs[finding.ActionProposeMemoryLimit] = count(MemoryLimit{Patch: PatchMemoryLimit{Client: e.client},
			Override: &MemoryOverride{Store: cfg.overrides, Cluster: "prod-eu", Now: e.clock.now, Airflow: cfg.airflow,
				MaxLimit: func(rule string) (resource.Quantity, bool) { return resource.MustParse("8Gi"), rule == "oom" }}})
	}
	if cfg.airflow != nil {
		execs[finding.ActionAirflowClearTask] = count(AirflowClearTask{Client: cfg.airflow})
	}
	g, err := NewGuard(GuardOptions{
		Client: e.client, DryRun: cfg.dryRun, Policy: cfg.policy, KV: e.kv, Claimer: e.claims, Namespace: "podmedic",
		Executor: execs,
		Rechecker: RecheckerFunc(func(_ context.Context, f *finding.Finding, pod *corev1.Pod) (bool, string) {
			if pod.Status.Phase == corev1.PodRunning {
				return false, "the pod is Running"
			}
			return true, ""
		}),
		Events: e.events, Now: e.clock.now, Metrics: metrics, Logger: log,
	})
	require.NoError(t, err)
	var revoker OverrideBook
	if r, ok := cfg.overrides.(OverrideBook); ok {
		revoker = r
	}
	e.svc, err = NewService(ServiceOptions{
		Guard: g, Client: e.client, Store: KVProposalStore{KV: e.kv}, Claimer: e.claims, Notifier: e.notices, Overrides: revoker,
		Audit: e.audit, AuditSubject: "podmedic.audit.test.proposal", RefusalSubject: "podmedic.audit.test.refusal", Events: e.events, Now: e.clock.now,
		Metrics: metrics, Logger: log,
	})
	require.NoError(t, err)
	return e
}

// counting is an executor that counts its executions.
type counting struct {
	Executor
	n *atomic.Int32
}

func (c counting) Execute(ctx context.Context, r *Request) (string, error) {
	c.n.Add(1)
	return c.Executor.Execute(ctx, r)
}

func (c counting) Describe(r *Request) string { return c.Executor.(Describer).Describe(r) }

func (c counting) Advises(r *Request) bool {
	a, ok := c.Executor.(Adviser)
	return ok && a.Advises(r)
}

func (c counting) Ref(r *Request) string {
	if rf, ok := c.Executor.(Referrer); ok {
		return rf.Ref(r)
	}
	return ""
}

func (e *serviceEnv) createPod(p *corev1.Pod) *corev1.Pod {
	e.t.Helper()
	got, err := e.client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	require.NoError(e.t, err)
	return got
}

// only returns the one proposal in the store.
func (e *serviceEnv) only() finding.Proposal {
	e.t.Helper()
	ps, err := e.svc.Proposals(context.Background())
	require.NoError(e.t, err)
	require.Len(e.t, ps, 1)
	return ps[0]
}

func TestServiceAutoMode(t *testing.T) {
	e := newServiceEnv(t, serviceConfig{})
	pod := e.createPod(stuckPod("airflow", "w1"))
	f := stuckFinding(pod, "init-stuck", finding.ModeAuto)
	require.NoError(t, e.svc.Handle(context.Background(), f))

	require.False(t, podExists(t, e.client, "airflow", "w1"))
	ns := e.notices.OfType(finding.NoticeFinding)
	require.Len(t, ns, 1)
	require.Equal(t, finding.ResultExecuted, ns[0].Outcome.Result)
	require.Equal(t, "pod airflow/w1 deleted", ns[0].Outcome.Message)
	p := ns[0].Proposal
	require.Equal(t, finding.StateExecuted, p.State)
	require.Equal(t, AutoDecider, p.DecidedBy)
	require.Equal(t, []string{p.ID + "/executed"}, e.audit.all())
	require.Equal(t, []string{EventExecuted}, e.events.reasons())

	// A retried delivery of the same finding executes nothing and says the same.
	require.NoError(t, e.svc.Handle(context.Background(), f))
	require.Equal(t, int32(1), e.execs.Load())
	ns = e.notices.OfType(finding.NoticeFinding)
	require.Len(t, ns, 2)
	require.Equal(t, "pod airflow/w1 deleted", ns[1].Outcome.Message)

	// What the deleted pod does next (here: stuck terminating) is not a new finding.
	later := stuckFinding(pod, "stuck-terminating", finding.ModeApprove)
	later.Kind, later.Occurrence, later.Action.Params["force"] = finding.StuckTerminating, "terminating", "true"
	require.ErrorIs(t, e.svc.Handle(context.Background(), later), ErrAfterAction)
	require.Len(t, e.notices.OfType(finding.NoticeFinding), 2)
	require.Equal(t, 1.0, testutil.ToFloat64(e.svc.o.Metrics.suppressed))
}

func TestServiceNotifyOnly(t *testing.T) {
	e := newServiceEnv(t, serviceConfig{})
	pod := e.createPod(stuckPod("airflow", "w1"))
	f := stuckFinding(pod, "init-stuck", finding.ModeNotify)
	require.NoError(t, e.svc.Handle(context.Background(), f))
	f.Action = nil
	require.NoError(t, e.svc.Handle(context.Background(), f))
	ns := e.notices.OfType(finding.NoticeFinding)
	require.Len(t, ns, 2)
	require.Nil(t, ns[0].Proposal)
	require.Nil(t, ns[0].Outcome)
	require.True(t, podExists(t, e.client, "airflow", "w1"))
	require.Empty(t, e.events.reasons())
}

// TestServiceApproval walks the state machine: pending, approved, executed; a second
// decision is refused and says who decided.
func TestServiceApproval(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{})
	pod := e.createPod(stuckPod("airflow", "w1"))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(pod, "init-stuck", finding.ModeApprove)))

	require.True(t, podExists(t, e.client, "airflow", "w1"), "approve mode acted without an approval")
	p := e.only()
	require.Equal(t, finding.StatePending, p.State)
	require.True(t, ValidProposalID(p.ID), p.ID)
	require.Equal(t, e.clock.now().Add(DefaultProposalTTL), p.ExpiresAt)
	require.Equal(t, finding.Target{Kind: "Pod", Namespace: "airflow", Name: "w1", UID: "uid-w1", ResourceVersion: pod.ResourceVersion}, p.Target)
	n := e.notices.OfType(finding.NoticeFinding)
	require.Len(t, n, 1)
	require.Equal(t, p.ID, n[0].Proposal.ID)
	ev, _ := e.events.find(EventProposed)
	require.Contains(t, ev.Note, "Proposed delete-pod of Pod airflow/w1 as "+p.ID)

	e.clock.advance(5 * time.Minute)
	got, err := e.svc.Decide(ctx, p.ID, "U012AB3CD", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateExecuted, got.State)
	require.Equal(t, "U012AB3CD", got.DecidedBy)
	require.Equal(t, e.clock.now(), got.DecidedAt)
	require.Equal(t, "pod airflow/w1 deleted", got.Outcome.Message)
	require.False(t, podExists(t, e.client, "airflow", "w1"))

	require.Equal(t, []string{p.ID + "/pending", p.ID + "/approved", p.ID + "/executed"}, e.audit.all())
	require.Equal(t, []string{EventProposed, EventApproved, EventExecuted}, e.events.reasons())
	ev, _ = e.events.find(EventExecuted)
	require.Contains(t, ev.Note, "approved by U012AB3CD")
	var states []finding.ProposalState
	for _, d := range e.notices.OfType(finding.NoticeDecision) {
		states = append(states, d.Proposal.State)
	}
	require.Equal(t, []finding.ProposalState{finding.StateApproved, finding.StateExecuted}, states)

	_, err = e.svc.Decide(ctx, p.ID, "U999", false)
	var de *DecisionError
	require.ErrorAs(t, err, &de)
	require.ErrorIs(t, err, ErrAlreadyDecided)
	require.Equal(t, fmt.Sprintf("proposal %s was already approved by U012AB3CD at 2026-11-20 02:05:00Z and executed: pod airflow/w1 deleted", p.ID), err.Error())

	_, err = e.svc.Decide(ctx, "nosuchproposa", "U1", true)
	require.ErrorIs(t, err, ErrUnknownProposal)
	require.EqualError(t, err, `there is no proposal "nosuchproposa"`)
	_, err = e.svc.Decide(ctx, "../../x", "U1", true)
	require.ErrorIs(t, err, ErrUnknownProposal)
}

func TestServiceDeny(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{})
	pod := e.createPod(stuckPod("airflow", "w1"))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(pod, "init-stuck", finding.ModeApprove)))
	p := e.only()
	got, err := e.svc.Decide(ctx, p.ID, "inbox:alice", false)
	require.NoError(t, err)
	require.Equal(t, finding.StateDenied, got.State)
	require.True(t, podExists(t, e.client, "airflow", "w1"))
	_, err = e.svc.Decide(ctx, p.ID, "U1", true)
	require.ErrorIs(t, err, ErrAlreadyDecided)
	require.Contains(t, err.Error(), "was already denied by inbox:alice")
	require.Zero(t, e.execs.Load())
	require.Equal(t, []string{EventProposed, EventDenied}, e.events.reasons())
}

func TestServiceExpiry(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{})
	a := e.createPod(stuckPod("airflow", "a"))
	b := e.createPod(stuckPod("airflow", "b"))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(a, "init-stuck", finding.ModeApprove)))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(b, "init-stuck", finding.ModeApprove)))
	ids := map[string]string{}
	ps, err := e.svc.Proposals(ctx)
	require.NoError(t, err)
	for _, p := range ps {
		ids[p.Target.Name] = p.ID
	}

	e.clock.advance(DefaultProposalTTL)
	// A decision that comes too late is refused and expires the proposal.
	got, err := e.svc.Decide(ctx, ids["a"], "U1", true)
	require.ErrorIs(t, err, ErrProposalExpired)
	require.Equal(t, fmt.Sprintf("proposal %s expired at 2026-11-20 02:30:00Z without a decision; it was not executed", ids["a"]), err.Error())
	require.Equal(t, finding.StateExpired, got.State)

	// The maintenance loop expires the other one and says so.
	e.svc.Maintain(ctx)
	for _, name := range []string{"a", "b"} {
		p, err := e.svc.store.Get(ctx, ids[name])
		require.NoError(t, err)
		require.Equal(t, finding.StateExpired, p.State, name)
		require.Equal(t, SystemDecider, p.DecidedBy)
		require.Equal(t, "expired after 30m0s without a decision; delete-pod of Pod airflow/"+name+" was not executed", p.Outcome.Message)
		require.True(t, podExists(t, e.client, "airflow", name))
	}
	require.Len(t, e.notices.OfType(finding.NoticeDecision), 2)
	require.Equal(t, 2.0, testutil.ToFloat64(e.svc.o.Metrics.transitions.WithLabelValues("expired")))
	require.Equal(t, 2.0, testutil.ToFloat64(e.svc.o.Metrics.proposals.WithLabelValues("expired")))
	require.Zero(t, testutil.ToFloat64(e.svc.o.Metrics.proposals.WithLabelValues("pending")))
	_, err = e.svc.Decide(ctx, ids["b"], "U1", true)
	require.ErrorIs(t, err, ErrProposalExpired)

	// Decided proposals are forgotten after the retention.
	e.clock.advance(DefaultRetention + time.Minute)
	e.svc.Maintain(ctx)
	ps, err = e.svc.store.List(ctx)
	require.NoError(t, err)
	require.Empty(t, ps)
}

// TestServiceConcurrentApprovals: 20 approvals of one proposal race (two replicas, a double
// click): exactly one executes, the others are told who won.
func TestServiceConcurrentApprovals(t *testing.T) {
	e := newServiceEnv(t, serviceConfig{})
	concurrentApprovals(t, e)
}

func concurrentApprovals(t *testing.T, e *serviceEnv) {
	ctx := context.Background()
	pod := e.createPod(stuckPod("airflow", "w1"))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(pod, "init-stuck", finding.ModeApprove)))
	id := e.only().ID

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		losers  int
	)
	for i := range 20 {
		wg.Go(func() {
			user := fmt.Sprintf("U%02d", i)
			p, err := e.svc.Decide(ctx, id, user, true)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				winners = append(winners, user)
				require.Equal(t, finding.StateExecuted, p.State)
				return
			}
			require.ErrorIs(t, err, ErrAlreadyDecided)
			losers++
		})
	}
	wg.Wait()
	require.Len(t, winners, 1)
	require.Equal(t, 19, losers)
	require.Equal(t, int32(1), e.execs.Load(), "the action ran more than once")
	p, err := e.svc.store.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, finding.StateExecuted, p.State)
	require.Equal(t, winners[0], p.DecidedBy)
	require.False(t, podExists(t, e.client, "airflow", "w1"))
}

// TestServiceReplacedPod: a pod replaced (same name, new UID) between the proposal and the
// approval is not deleted; the proposal fails and says why.
func TestServiceReplacedPod(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{})
	pod := e.createPod(stuckPod("airflow", "w1"))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(pod, "init-stuck", finding.ModeApprove)))
	id := e.only().ID

	require.NoError(t, e.client.CoreV1().Pods("airflow").Delete(ctx, "w1", metav1.DeleteOptions{}))
	fresh := stuckPod("airflow", "w1")
	fresh.UID = "uid-new"
	e.createPod(fresh)

	got, err := e.svc.Decide(ctx, id, "U1", true)
	require.NoError(t, err, "the decision was taken; the action was refused")
	require.Equal(t, finding.StateFailed, got.State)
	require.Equal(t, finding.ResultRefused, got.Outcome.Result)
	require.Equal(t, "Pod airflow/w1 was replaced (uid uid-w1 -> uid-new); not touched", got.Outcome.Message)
	require.True(t, podExists(t, e.client, "airflow", "w1"))
	require.Zero(t, e.execs.Load())

	// And a pod that vanished: the proposal fails with a clear outcome.
	other := e.createPod(stuckPod("airflow", "w2"))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(other, "init-stuck", finding.ModeApprove)))
	id2 := ProposalID(stuckFinding(other, "init-stuck", finding.ModeApprove))
	require.NoError(t, e.client.CoreV1().Pods("airflow").Delete(ctx, "w2", metav1.DeleteOptions{}))
	got, err = e.svc.Decide(ctx, id2, "U1", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateFailed, got.State)
	require.Equal(t, "Pod airflow/w2 no longer exists; nothing done", got.Outcome.Message)
}

// TestServiceRecoveredPod: a pod that recovered meanwhile is not deleted.
func TestServiceRecoveredPod(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{})
	pod := e.createPod(stuckPod("airflow", "w1"))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(pod, "init-stuck", finding.ModeApprove)))
	pod.Status.Phase = corev1.PodRunning
	_, err := e.client.CoreV1().Pods("airflow").UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	require.NoError(t, err)
	// The fake keeps resourceVersions; a real API server would also refuse on the new one.
	got, err := e.svc.Decide(ctx, e.only().ID, "U1", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateFailed, got.State)
	require.Contains(t, got.Outcome.Message, "the pod is Running; nothing done")
	require.True(t, podExists(t, e.client, "airflow", "w1"))
}

// TestServiceRefusalsReportedOnce: ten stuck pods against a budget of three: three are
// deleted, every finding is reported, and the seven refusals make one notice.
func TestServiceRefusalsReportedOnce(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{policy: Policy{Rules: map[string]RulePolicy{"init-stuck": {Budget: &Limit{Max: 3, Window: time.Hour}}}}})
	for i := range 10 {
		pod := e.createPod(stuckPod("airflow", fmt.Sprintf("w%d", i)))
		require.NoError(t, e.svc.Handle(ctx, stuckFinding(pod, "init-stuck", finding.ModeAuto)))
	}
	pods, err := e.client.CoreV1().Pods("airflow").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 7)
	require.Len(t, e.notices.OfType(finding.NoticeFinding), 10, "every finding is reported")
	require.Empty(t, e.notices.OfType(finding.NoticeRefusal), "refusals wait for the storm to end")

	e.clock.advance(DefaultRefusalQuiet)
	e.svc.refusals.flush(ctx, e.clock.now(), false, e.claims, e.svc.notifyRefusal, e.svc.log)
	rs := e.notices.OfType(finding.NoticeRefusal)
	require.Len(t, rs, 1)
	require.Equal(t, 7, rs[0].Count)
	require.Equal(t, finding.ResultRefused, rs[0].Outcome.Result)
	require.Contains(t, rs[0].Outcome.Message, "rule init-stuck: 7 delete-pod action(s) refused since 02:00:00Z: budget exhausted: 3 actions of rule init-stuck in the last 1h0m0s")
	require.Equal(t, 7.0, testutil.ToFloat64(e.svc.o.Metrics.refusals.WithLabelValues("delete-pod", "budget")))
	// The notice is on the audit stream too, for the digest.
	var recs []string
	for _, id := range e.audit.all() {
		if len(id) > 8 && id[:8] == "refusal/" {
			recs = append(recs, id)
		}
	}
	require.Len(t, recs, 1)
	require.Regexp(t, `^refusal/init-stuck/budget/\d+$`, recs[0])

	// More refusals in the same window are counted, and reported once the window is over.
	for i := 10; i < 12; i++ {
		pod := e.createPod(stuckPod("airflow", fmt.Sprintf("w%d", i)))
		require.NoError(t, e.svc.Handle(ctx, stuckFinding(pod, "init-stuck", finding.ModeAuto)))
	}
	e.clock.advance(10 * time.Minute)
	e.svc.FlushRefusals(ctx)
	require.Len(t, e.notices.OfType(finding.NoticeRefusal), 1)
	e.clock.advance(DefaultRefusalWindow)
	e.svc.FlushRefusals(ctx)
	rs = e.notices.OfType(finding.NoticeRefusal)
	require.Len(t, rs, 2)
	require.Equal(t, 2, rs[1].Count)
}

func TestServiceDryRun(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{dryRun: true, policy: Policy{Total: &Limit{Max: 1, Window: time.Hour}}})
	pod := e.createPod(stuckPod("airflow", "w1"))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(pod, "init-stuck", finding.ModeAuto)))
	n := e.notices.OfType(finding.NoticeFinding)
	require.Len(t, n, 1)
	require.Equal(t, finding.ResultDryRun, n[0].Outcome.Result)
	require.Equal(t, "dry run: would delete pod airflow/w1", n[0].Outcome.Message)
	require.True(t, podExists(t, e.client, "airflow", "w1"))
	require.Zero(t, e.execs.Load())
	// The real budget is untouched.
	used, err := NewBudgets(e.kv, "", nil).Used(ctx, BudgetScope{Scope: ScopeTotal, Limit: Limit{Max: 1, Window: time.Hour}})
	require.NoError(t, err)
	require.Zero(t, used)
}

// TestServiceOwnerPolicyAtProposal: a StatefulSet pod is not proposed for deletion; the
// finding is still reported.
func TestServiceOwnerPolicyAtProposal(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{})
	pod := e.createPod(owned(stuckPod("db", "pg-0"), "StatefulSet", "pg"))
	require.NoError(t, e.svc.Handle(ctx, stuckFinding(pod, "init-stuck", finding.ModeApprove)))
	ps, err := e.svc.Proposals(ctx)
	require.NoError(t, err)
	require.Empty(t, ps)
	n := e.notices.OfType(finding.NoticeFinding)
	require.Len(t, n, 1)
	require.Nil(t, n[0].Proposal)
	ev, ok := e.events.find(EventRefused)
	require.True(t, ok)
	require.Contains(t, ev.Note, "is owned by StatefulSet pg")
	e.svc.FlushRefusals(ctx)
	require.Len(t, e.notices.OfType(finding.NoticeRefusal), 1)
}

// deployment, its ReplicaSet and an OOM-killed pod of it, as the controllers would leave them.
func deploymentObjects(limit, request string) (*appsv1.Deployment, *appsv1.ReplicaSet, *corev1.Pod) {
	res := corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)},
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(request)},
	}
	tmpl := corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "sidecar", Image: "proxy"}, {Name: "api", Image: "api:1", Resources: res}}}}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "api", UID: "dep-uid"},
		Spec: appsv1.DeploymentSpec{Template: tmpl}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "api-7f9c", UID: "rs-uid",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "api", UID: "dep-uid", Controller: ptr(true)}}},
		Spec: appsv1.ReplicaSetSpec{Template: tmpl}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "api-7f9c-x1", UID: "pod-uid",
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "api-7f9c", UID: "rs-uid", Controller: ptr(true)}}},
		Spec: tmpl.Spec}
	return d, rs, pod
}

func oomFinding(pod *corev1.Pod, mode finding.Mode, limit, request string) *finding.Finding {
	f := &finding.Finding{Kind: finding.OOMKilled, Rule: "oom", Namespace: pod.Namespace, Pod: pod.Name, Container: "api",
		UID: string(pod.UID), Occurrence: "2026-11-20T02:13:09Z", Evidence: []string{"container api terminated: OOMKilled"},
		Action: &finding.Action{Type: finding.ActionProposeMemoryLimit, Mode: mode,
			Params: map[string]string{"container": "api", "limit": limit, "request": request}}}
	if ref := metav1.GetControllerOf(pod); ref != nil {
		f.Owner = finding.Owner{Kind: ref.Kind, Name: ref.Name}
	}
	return f
}

func TestServiceMemoryLimitPatchesDeployment(t *testing.T) {
	ctx := context.Background()
	d, rs, pod := deploymentObjects("2Gi", "1Gi")
	e := newServiceEnv(t, serviceConfig{objs: []runtime.Object{d, rs, pod}})
	require.NoError(t, e.svc.Handle(ctx, oomFinding(pod, finding.ModeApprove, "3Gi", "2Gi")))
	p := e.only()
	require.Equal(t, finding.Target{Kind: "Deployment", Namespace: "web", Name: "api", UID: "dep-uid"}, p.Target)
	require.Empty(t, p.Advice)

	// A second pod of the same Deployment killed meanwhile makes no second proposal.
	pod2 := pod.DeepCopy()
	pod2.Name, pod2.UID = "api-7f9c-x2", "pod-uid-2"
	e.createPod(pod2)
	require.NoError(t, e.svc.Handle(ctx, oomFinding(pod2, finding.ModeApprove, "3Gi", "2Gi")))
	e.only()

	got, err := e.svc.Decide(ctx, p.ID, "U1", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateExecuted, got.State, got.Outcome.Message)
	require.Equal(t, "Deployment web/api patched: container api memory limit 3Gi, request 2Gi (new pods get them)", got.Outcome.Message)
	cur, err := e.client.AppsV1().Deployments("web").Get(ctx, "api", metav1.GetOptions{})
	require.NoError(t, err)
	c := cur.Spec.Template.Spec.Containers
	require.Equal(t, "sidecar", c[0].Name, "the other container is untouched")
	require.Empty(t, c[0].Resources.Limits)
	require.Equal(t, "3Gi", ptr(c[1].Resources.Limits[corev1.ResourceMemory]).String())
	require.Equal(t, "2Gi", ptr(c[1].Resources.Requests[corev1.ResourceMemory]).String())
	ev, _ := e.events.find(EventExecuted)
	require.Equal(t, "*v1.Deployment web/api", ev.Regarding)
}

func TestServiceMemoryLimitAlreadyRaised(t *testing.T) {
	ctx := context.Background()
	d, rs, pod := deploymentObjects("4Gi", "3Gi")
	e := newServiceEnv(t, serviceConfig{objs: []runtime.Object{d, rs, pod}})
	require.NoError(t, e.svc.Handle(ctx, oomFinding(pod, finding.ModeApprove, "3Gi", "2Gi")))
	got, err := e.svc.Decide(ctx, e.only().ID, "U1", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateFailed, got.State)
	require.Equal(t, "Deployment web/api: the memory limit of container api is already 4Gi (proposed 3Gi); nothing done", got.Outcome.Message)
}

// TestServiceMemoryLimitAdvisory: an Airflow worker is a bare pod: the proposal carries the
// executor_config snippet, and approving it records the decision without patching anything.
func TestServiceMemoryLimitAdvisory(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{})
	pod := e.createPod(stuckPod("airflow", "etl-load-1"))
	f := oomFinding(pod, finding.ModeApprove, "3Gi", "2Gi")
	f.Airflow = &finding.AirflowTask{DagID: "etl_daily", TaskID: "load", RunID: "r1", TryNumber: 1}
	f.Action.Params["container"] = "base"
	require.NoError(t, e.svc.Handle(ctx, f))
	p := e.only()
	require.Equal(t, "Pod", p.Target.Kind)
	require.Contains(t, p.Advice, "Raise the memory of task etl_daily.load")
	require.Contains(t, p.Advice, `"pod_override": k8s.V1Pod(`)
	require.Contains(t, p.Advice, `name="base",`)
	require.Contains(t, p.Advice, `requests={"memory": "2Gi"},`)
	require.Contains(t, p.Advice, `limits={"memory": "3Gi"},`)

	got, err := e.svc.Decide(ctx, p.ID, "U1", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateExecuted, got.State)
	require.Equal(t, finding.ResultRecorded, got.Outcome.Result)
	require.Contains(t, got.Outcome.Message, "decision recorded; podmedic does not patch Pod airflow/etl-load-1")
	require.Zero(t, e.execs.Load())
	require.True(t, podExists(t, e.client, "airflow", "etl-load-1"))
}

// TestServiceSparkMemoryAdvisory: without --patch-spark-applications, a proposal in a
// SparkApplication's settings is advice: it says which spec fields to set, and approving it
// records the decision without patching anything.
func TestServiceSparkMemoryAdvisory(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{})
	pod := e.createPod(stuckPod("spark-jobs", "sales-driver"))
	f := oomFinding(pod, finding.ModeApprove, "5222Mi", "5222Mi")
	f.Owner = finding.Owner{Kind: "SparkApplication", Name: "sales"}
	maps.Copy(f.Action.Params, map[string]string{"container": "spark-kubernetes-driver", "target": "SparkApplication", "role": "driver",
		"memory": "4g", "memoryOverhead": "1126m"})
	require.NoError(t, e.svc.Handle(ctx, f))
	p := e.only()
	require.Equal(t, "SparkApplication", p.Target.Kind)
	require.Contains(t, p.Advice, "Set in SparkApplication spark-jobs/sales (the pod's limit becomes 5222Mi):\n\nspec:\n  driver:\n    memory: 4g\n    memoryOverhead: 1126m")

	got, err := e.svc.Decide(ctx, p.ID, "U1", true)
	require.NoError(t, err)
	require.Equal(t, finding.StateExecuted, got.State)
	require.Equal(t, finding.ResultRecorded, got.Outcome.Result)
	require.Equal(t, "decision recorded; podmedic does not patch SparkApplication spark-jobs/sales (--patch-spark-applications is off): make the change in the proposal's advice (spec.driver: memory 4g, memoryOverhead 1126m)", got.Outcome.Message)
	require.Zero(t, e.execs.Load())
}

func TestServiceProposalsList(t *testing.T) {
	ctx := context.Background()
	e := newServiceEnv(t, serviceConfig{})
	var ids []string
	for i := range 3 {
		pod := e.createPod(stuckPod("airflow", fmt.Sprintf("w%d", i)))
		f := stuckFinding(pod, "init-stuck", finding.ModeApprove)
		require.NoError(t, e.svc.Handle(ctx, f))
		ids = append(ids, ProposalID(f))
		e.clock.advance(time.Minute)
	}
	_, err := e.svc.Decide(ctx, ids[0], "U1", false)
	require.NoError(t, err)
	ps, err := e.svc.Proposals(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{ids[2], ids[1], ids[0]}, []string{ps[0].ID, ps[1].ID, ps[2].ID}, "newest first")

	// A decision older than Recent drops out of the list; pending ones stay.
	e.clock.advance(DefaultRecent + time.Hour)
	e.svc.Maintain(ctx) // expires the two pending ones, now decided
	ps, err = e.svc.Proposals(ctx)
	require.NoError(t, err)
	require.Len(t, ps, 2)
}
