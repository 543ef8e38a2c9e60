package actions

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/podmedic/podmedic/finding"
)

// fakeCluster is a fake clientset that, like the API server, enforces delete preconditions
// and implements the eviction subresource (refusing with 429 when refuseEvictions is set).
func fakeCluster(refuseEvictions bool, objs ...runtime.Object) *fake.Clientset {
	c := fake.NewClientset(objs...)
	c.PrependReactor("delete", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := a.(k8stesting.DeleteActionImpl)
		pre := d.DeleteOptions.Preconditions
		if pre == nil {
			return false, nil, nil
		}
		obj, err := c.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), d.Namespace, d.Name)
		if err != nil {
			return false, nil, nil
		}
		pod := obj.(*corev1.Pod)
		if pre.UID != nil && *pre.UID != pod.UID || pre.ResourceVersion != nil && *pre.ResourceVersion != pod.ResourceVersion {
			return true, nil, apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, d.Name, errors.New("precondition failed"))
		}
		return false, nil, nil
	})
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "eviction" {
			return false, nil, nil
		}
		ev := a.(k8stesting.CreateAction).GetObject().(*policyv1.Eviction)
		if refuseEvictions {
			return true, nil, apierrors.NewTooManyRequestsError("Cannot evict pod as it would violate the pod's disruption budget.")
		}
		return true, nil, c.Tracker().Delete(corev1.SchemeGroupVersion.WithResource("pods"), ev.Namespace, ev.Name)
	})
	return c
}

// guardEnv is a guard over a fake cluster with in-memory stores.
type guardEnv struct {
	client  *fake.Clientset
	kv      *MemoryKV
	claims  *MemoryClaimer
	clock   *clock
	events  *eventLog
	reg     *prometheus.Registry
	guard   *Guard
	holds   bool
	dryRun  bool
	policy  Policy
	counted int // executions that reached the real executor
}

func newGuardEnv(t *testing.T, policy Policy, dryRun bool, objs ...runtime.Object) *guardEnv {
	t.Helper()
	e := &guardEnv{client: fakeCluster(false, objs...), kv: NewMemoryKV(), clock: newClock(), events: &eventLog{},
		reg: prometheus.NewRegistry(), holds: true, dryRun: dryRun, policy: policy}
	e.claims = NewMemoryClaimer(e.clock.now)
	real := Executors{finding.ActionDeletePod: countingDelete{e}}
	g, err := NewGuard(GuardOptions{
		Client: e.client, Executor: real, DryRun: dryRun, Policy: policy, KV: e.kv, Claimer: e.claims,
		Rechecker: RecheckerFunc(func(context.Context, *finding.Finding, *corev1.Pod) (bool, string) {
			if e.holds {
				return true, ""
			}
			return false, "the pod is Running"
		}),
		Namespace: "podmedic", Events: e.events, Now: e.clock.now, Metrics: NewMetrics(e.reg), Logger: zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	e.guard = g
	return e
}

// countingDelete is DeletePod that counts its executions.
type countingDelete struct{ e *guardEnv }

func (c countingDelete) Execute(ctx context.Context, r *Request) (string, error) {
	c.e.counted++
	return DeletePod{Client: c.e.client}.Execute(ctx, r)
}

func (c countingDelete) Describe(r *Request) string { return DeletePod{}.Describe(r) }

func deleteRequest(pod *corev1.Pod, rule string, mode finding.Mode, approvedBy string) *Request {
	f := stuckFinding(pod, rule, mode)
	return &Request{ID: ProposalID(f), Finding: f, Action: *f.Action, ApprovedBy: approvedBy,
		Target: finding.Target{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID)}}
}

// TestGuardDecisions: each check of the guard, alone, as a table: what it refuses (and with
// which typed error), and that a refusal leaves the pod in place.
func TestGuardDecisions(t *testing.T) {
	budget := func(n int) *Limit { return &Limit{Max: n, Window: time.Hour} }
	tests := []struct {
		name   string
		pod    *corev1.Pod
		policy Policy
		dryRun bool
		// setup runs before the request (earlier actions, a changed pod, a recovered pod).
		setup  func(t *testing.T, e *guardEnv, r *Request)
		mutate func(r *Request)
		want   error // sentinel; nil means executed
		// wantDeleted: the pod is gone afterwards.
		wantDeleted bool
		wantResult  string
	}{
		{name: "auto mode deletes a bare Airflow pod", pod: stuckPod("airflow", "w1"), wantDeleted: true, wantResult: finding.ResultExecuted},
		{name: "notify mode never executes", pod: stuckPod("airflow", "w1"),
			mutate: func(r *Request) { r.Action.Mode = finding.ModeNotify }, want: ErrNotifyOnly},
		{name: "approve mode without an approval", pod: stuckPod("airflow", "w1"),
			mutate: func(r *Request) { r.Action.Mode = finding.ModeApprove }, want: ErrNotApproved},
		{name: "approve mode with an approval", pod: stuckPod("airflow", "w1"),
			mutate:      func(r *Request) { r.Action.Mode, r.ApprovedBy = finding.ModeApprove, "U1" },
			wantDeleted: true, wantResult: finding.ResultExecuted},
		{name: "force without an approval", pod: stuckPod("airflow", "w1"),
			mutate: func(r *Request) { r.Action.Params["force"] = "true" }, want: ErrForceNeedsApproval},
		{name: "force with an approval", pod: stuckPod("airflow", "w1"),
			mutate: func(r *Request) {
				r.Action.Mode, r.ApprovedBy, r.Action.Params["force"] = finding.ModeApprove, "U1", "true"
			}, wantDeleted: true, wantResult: finding.ResultExecuted},
		{name: "kube-system is protected", pod: stuckPod("kube-system", "w1"), want: ErrProtectedNamespace},
		{name: "podmedic's own namespace is protected", pod: stuckPod("podmedic", "w1"), want: ErrProtectedNamespace},
		{name: "StatefulSet pod", pod: owned(stuckPod("db", "pg-0"), "StatefulSet", "pg"), want: ErrOwnerPolicy},
		{name: "StatefulSet pod allowed by the rule", pod: owned(stuckPod("db", "pg-0"), "StatefulSet", "pg"),
			mutate:      func(r *Request) { r.Action.Params["allow_owner_kinds"] = "StatefulSet" },
			wantDeleted: true, wantResult: finding.ResultExecuted},
		{name: "DaemonSet pod", pod: owned(stuckPod("mon", "agent-x"), "DaemonSet", "agent"), want: ErrOwnerPolicy},
		{name: "ReplicaSet pod", pod: owned(stuckPod("web", "api-1"), "ReplicaSet", "api-7f"), wantDeleted: true, wantResult: finding.ResultExecuted},
		{name: "bare pod that is neither Airflow nor Spark", pod: owned(stuckPod("web", "debug"), "", ""),
			setup: func(t *testing.T, e *guardEnv, r *Request) {
				p, err := e.client.CoreV1().Pods("web").Get(context.Background(), "debug", metav1.GetOptions{})
				require.NoError(t, err)
				p.OwnerReferences = nil
				_, err = e.client.CoreV1().Pods("web").Update(context.Background(), p, metav1.UpdateOptions{})
				require.NoError(t, err)
				r.Finding.Owner, r.Finding.Airflow = finding.Owner{}, nil
			}, want: ErrOwnerPolicy},
		{name: "static pod", pod: owned(stuckPod("web", "etcd-node1"), "Node", "node1"), want: ErrOwnerPolicy},
		{name: "pod gone", pod: stuckPod("airflow", "w1"),
			setup: func(t *testing.T, e *guardEnv, r *Request) {
				require.NoError(t, e.client.CoreV1().Pods("airflow").Delete(context.Background(), "w1", metav1.DeleteOptions{}))
			}, want: ErrTargetGone},
		{name: "pod replaced under the same name", pod: stuckPod("airflow", "w1"),
			setup: func(t *testing.T, e *guardEnv, r *Request) { r.Target.UID = "uid-of-the-old-pod" }, want: ErrTargetChanged},
		{name: "pod modified since the proposal", pod: stuckPod("airflow", "w1"),
			mutate: func(r *Request) {
				r.Action.Mode, r.ApprovedBy, r.Target.ResourceVersion = finding.ModeApprove, "U1", "9"
			}, want: ErrTargetChanged},
		{name: "pod recovered", pod: stuckPod("airflow", "w1"),
			setup: func(t *testing.T, e *guardEnv, r *Request) { e.holds = false }, want: ErrNoLongerHolds},
		{name: "rule budget spent", pod: stuckPod("airflow", "w1"),
			policy: Policy{Rules: map[string]RulePolicy{"init-stuck": {Budget: budget(2)}}},
			setup:  spend(2, "init-stuck", "airflow"), want: ErrBudgetExhausted},
		{name: "another rule's budget does not count", pod: stuckPod("airflow", "w1"),
			policy: Policy{Rules: map[string]RulePolicy{"init-stuck": {Budget: budget(2)}}},
			setup:  spend(2, "other-rule", "airflow"), wantDeleted: true, wantResult: finding.ResultExecuted},
		{name: "namespace budget spent", pod: stuckPod("airflow", "w1"),
			policy: Policy{PerNamespace: budget(3)}, setup: spend(3, "other-rule", "airflow"), want: ErrBudgetExhausted},
		{name: "another namespace's budget does not count", pod: stuckPod("airflow", "w1"),
			policy: Policy{PerNamespace: budget(3)}, setup: spend(3, "other-rule", "spark"), wantDeleted: true, wantResult: finding.ResultExecuted},
		{name: "total budget spent", pod: stuckPod("airflow", "w1"),
			policy: Policy{Total: budget(3)}, setup: spend(3, "other-rule", "spark"), want: ErrBudgetExhausted},
		{name: "budget window slid past", pod: stuckPod("airflow", "w1"),
			policy: Policy{Total: budget(3)},
			setup: func(t *testing.T, e *guardEnv, r *Request) {
				spend(3, "other-rule", "spark")(t, e, r)
				e.clock.advance(time.Hour)
			}, wantDeleted: true, wantResult: finding.ResultExecuted},
		{name: "cooldown of the target", pod: stuckPod("airflow", "w1"),
			policy: Policy{Cooldown: 30 * time.Minute},
			setup: func(t *testing.T, e *guardEnv, r *Request) {
				_, err := e.claims.Claim(context.Background(), "cooldown."+targetKey(r.Target), 30*time.Minute)
				require.NoError(t, err)
				e.clock.advance(29 * time.Minute)
			}, want: ErrCooldown},
		{name: "cooldown over", pod: stuckPod("airflow", "w1"),
			policy: Policy{Cooldown: 30 * time.Minute},
			setup: func(t *testing.T, e *guardEnv, r *Request) {
				_, err := e.claims.Claim(context.Background(), "cooldown."+targetKey(r.Target), 30*time.Minute)
				require.NoError(t, err)
				e.clock.advance(30 * time.Minute)
			}, wantDeleted: true, wantResult: finding.ResultExecuted},
		{name: "rule cooldown overrides the global one", pod: stuckPod("airflow", "w1"),
			policy: Policy{Cooldown: 30 * time.Minute, Rules: map[string]RulePolicy{"init-stuck": {Cooldown: ptr(time.Duration(0))}}},
			setup: func(t *testing.T, e *guardEnv, r *Request) {
				_, err := e.claims.Claim(context.Background(), "cooldown."+targetKey(r.Target), 30*time.Minute)
				require.NoError(t, err)
			}, wantDeleted: true, wantResult: finding.ResultExecuted},
		{name: "dry-run changes nothing", pod: stuckPod("airflow", "w1"), dryRun: true, wantResult: finding.ResultDryRun},
		{name: "dry-run still refuses", pod: stuckPod("kube-system", "w1"), dryRun: true, want: ErrProtectedNamespace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newGuardEnv(t, tt.policy, tt.dryRun, tt.pod)
			r := deleteRequest(tt.pod, "init-stuck", finding.ModeAuto, "")
			if tt.mutate != nil {
				tt.mutate(r)
			}
			if tt.setup != nil {
				tt.setup(t, e, r)
			}
			out, err := e.guard.Do(context.Background(), r)
			if tt.want != nil {
				require.ErrorIs(t, err, tt.want)
				require.True(t, IsRefusal(err), "a guard refusal is a Refusal: %v", err)
				require.Equal(t, finding.ResultRefused, out.Result)
				require.Equal(t, err.Error(), out.Message)
				require.Zero(t, e.counted, "the executor ran")
				if !errors.Is(err, ErrTargetGone) {
					require.True(t, podExists(t, e.client, tt.pod.Namespace, tt.pod.Name), "a refused action deleted the pod")
				}
				reason, _ := ReasonOf(err)
				require.Equal(t, reason, out.Reason, "the outcome carries the refusal's reason")
				require.Equal(t, 1.0, testutil.ToFloat64(e.guard.metrics.refusals.WithLabelValues("delete-pod", string(reason))))
				if tt.dryRun {
					require.Empty(t, e.events.reasons(), "a dry run wrote Events")
					return
				}
				ev, ok := e.events.find(EventRefused)
				require.True(t, ok, "no PodmedicRefused event: %v", e.events.reasons())
				require.Equal(t, corev1.EventTypeWarning, ev.Type)
				require.Contains(t, ev.Note, err.Error())
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.wantResult, out.Result)
			require.Equal(t, !tt.wantDeleted, podExists(t, e.client, tt.pod.Namespace, tt.pod.Name))
			require.Equal(t, 1.0, testutil.ToFloat64(e.guard.metrics.actions.WithLabelValues("delete-pod", tt.wantResult)))
			if !tt.dryRun {
				ev, ok := e.events.find(EventExecuted)
				require.True(t, ok, "no PodmedicExecuted event: %v", e.events.reasons())
				require.Contains(t, ev.Note, out.Message)
			}
			if tt.dryRun {
				require.Empty(t, e.events.reasons(), "a dry run wrote Events")
				require.Zero(t, e.counted, "dry-run reached the real executor")
				require.Contains(t, out.Message, "dry run: would delete pod "+tt.pod.Namespace+"/"+tt.pod.Name)
				require.Len(t, e.guard.exec.(*Recording).Calls(), 1)
			}
		})
	}
}

// spend records n earlier actions of rule in namespace ns against every configured budget.
func spend(n int, rule, ns string) func(t *testing.T, e *guardEnv, r *Request) {
	return func(t *testing.T, e *guardEnv, r *Request) {
		t.Helper()
		for i := range n {
			prior := &Request{ID: "prior-" + rule + "-" + ns + "-" + string(rune('a'+i)),
				Finding: &finding.Finding{Rule: rule}, Target: finding.Target{Kind: "Pod", Namespace: ns, Name: "x"}}
			_, err := e.guard.budgets.Reserve(context.Background(), prior.ID, e.guard.scopes(prior))
			require.NoError(t, err)
		}
	}
}

// TestGuardBudgetErrorSaysWhich: the refusal names the scope and the limit, for errors.As.
func TestGuardBudgetErrorSaysWhich(t *testing.T) {
	pod := stuckPod("airflow", "w1")
	e := newGuardEnv(t, Policy{Rules: map[string]RulePolicy{"init-stuck": {Budget: &Limit{Max: 1, Window: 10 * time.Minute}}}}, false, pod)
	spend(1, "init-stuck", "airflow")(t, e, nil)
	_, err := e.guard.Do(context.Background(), deleteRequest(pod, "init-stuck", finding.ModeAuto, ""))
	var be *BudgetError
	require.ErrorAs(t, err, &be)
	require.Equal(t, ScopeRule, be.Scope)
	require.Equal(t, "init-stuck", be.Name)
	require.Equal(t, 1, be.Max)
	require.Equal(t, "budget exhausted: 1 actions of rule init-stuck in the last 10m0s", err.Error())
}

// TestGuardRaceBetweenVerifyAndDelete: a pod replaced after the guard read it is protected by
// the delete's preconditions; the refusal gives the budget slot and the cooldown back.
func TestGuardRaceBetweenVerifyAndDelete(t *testing.T) {
	pod := stuckPod("airflow", "w1")
	e := newGuardEnv(t, Policy{Total: &Limit{Max: 1, Window: time.Hour}, Cooldown: time.Hour}, false, pod)
	e.guard.exec = ExecutorFunc(func(ctx context.Context, r *Request) (string, error) {
		// The pod is replaced between the GET and the DELETE.
		require.NoError(t, e.client.CoreV1().Pods("airflow").Delete(ctx, "w1", metav1.DeleteOptions{}))
		p := stuckPod("airflow", "w1")
		p.UID = "new-uid"
		_, err := e.client.CoreV1().Pods("airflow").Create(ctx, p, metav1.CreateOptions{})
		require.NoError(t, err)
		return DeletePod{Client: e.client}.Execute(ctx, r)
	})
	r := deleteRequest(pod, "init-stuck", finding.ModeAuto, "")
	_, err := e.guard.Do(context.Background(), r)
	require.ErrorIs(t, err, ErrTargetChanged)
	got, gerr := e.client.CoreV1().Pods("airflow").Get(context.Background(), "w1", metav1.GetOptions{})
	require.NoError(t, gerr)
	require.Equal(t, "new-uid", string(got.UID), "the new pod was deleted")
	used, err := e.guard.budgets.Used(context.Background(), BudgetScope{Scope: ScopeTotal, Limit: Limit{Max: 1, Window: time.Hour}})
	require.NoError(t, err)
	require.Zero(t, used, "a refused delete kept its budget slot")
	require.False(t, e.claims.Claimed("cooldown."+targetKey(r.Target)), "a refused delete kept its cooldown")
}

// TestGuardEvictPDB: an eviction refused by a PodDisruptionBudget fails with the API's message.
func TestGuardEvictPDB(t *testing.T) {
	pod := owned(stuckPod("web", "api-1"), "ReplicaSet", "api-7f")
	for _, refuse := range []bool{false, true} {
		c := fakeCluster(refuse, pod.DeepCopy())
		g, err := NewGuard(GuardOptions{Client: c, KV: NewMemoryKV(), Claimer: NewMemoryClaimer(nil),
			Executor: Executors{finding.ActionEvictPod: EvictPod{Client: c}}})
		require.NoError(t, err)
		r := deleteRequest(pod, "evict", finding.ModeAuto, "")
		r.Action.Type = finding.ActionEvictPod
		r.Action.Params["grace_period"] = "30"
		out, err := g.Do(context.Background(), r)
		if refuse {
			require.Error(t, err)
			require.False(t, IsRefusal(err), "a PDB refusal is a failed action, not a guard refusal")
			require.Equal(t, finding.ResultFailed, out.Result)
			require.Contains(t, out.Message, "eviction of pod web/api-1 refused (PodDisruptionBudget): ")
			require.Contains(t, out.Message, "Cannot evict pod as it would violate the pod's disruption budget.")
			require.True(t, podExists(t, c, "web", "api-1"))
			continue
		}
		require.NoError(t, err)
		require.Equal(t, "pod web/api-1 evicted (grace period 30s)", out.Message)
		require.False(t, podExists(t, c, "web", "api-1"))
	}
}

// TestGuardMarksPodsItDeleted: a pod deleted through the guard is remembered (for the
// service to drop later findings about it); a dry run keeps its own marks.
func TestGuardMarksPodsItDeleted(t *testing.T) {
	for _, dry := range []bool{false, true} {
		pod := stuckPod("airflow", "w1")
		e := newGuardEnv(t, Policy{}, dry, pod)
		_, err := e.guard.Do(context.Background(), deleteRequest(pod, "init-stuck", finding.ModeAuto, ""))
		require.NoError(t, err)
		acted, err := e.guard.ActedOn(context.Background(), string(pod.UID))
		require.NoError(t, err)
		require.True(t, acted)
		_, _, err = e.kv.Get(context.Background(), "acted."+string(pod.UID))
		require.Equal(t, dry, errors.Is(err, ErrKeyNotFound), "dry-run marks live apart from real ones")
	}
}

// TestGuardProtectsItsOwnNamespaceWithoutPODNAMESPACE: without POD_NAMESPACE the guard
// protects the namespace of the pod's service account (as the Lease code finds it), and says
// so when it cannot find one.
func TestGuardProtectsItsOwnNamespaceWithoutPODNAMESPACE(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	sa := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(sa, "namespace"), []byte("podmedic-system\n"), 0o600))
	pod := stuckPod("podmedic-system", "podmedic-7f9c")
	c := fakeCluster(false, pod)
	g, err := NewGuard(GuardOptions{Client: c, KV: NewMemoryKV(), Claimer: NewMemoryClaimer(nil),
		Executor: Executors{finding.ActionDeletePod: DeletePod{Client: c}}, ServiceAccountDir: sa, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	_, err = g.Do(context.Background(), deleteRequest(pod, "init-stuck", finding.ModeAuto, ""))
	require.ErrorIs(t, err, ErrProtectedNamespace)
	require.True(t, podExists(t, c, "podmedic-system", "podmedic-7f9c"))

	core, logs := observer.New(zap.WarnLevel)
	_, err = NewGuard(GuardOptions{Client: c, KV: NewMemoryKV(), Claimer: NewMemoryClaimer(nil),
		ServiceAccountDir: t.TempDir(), Logger: zap.New(core)})
	require.NoError(t, err)
	require.Equal(t, 1, logs.FilterMessageSnippet("own namespace is unknown").Len())
}

// TestGuardRefusesPodsItMustNotTouch: a pod that opted out (podmedic.io/ignore), a pod the
// cluster runs on (system-critical priority), and a Running pod behind an eviction finding
// are refused at execution, and stay.
func TestGuardRefusesPodsItMustNotTouch(t *testing.T) {
	ignored := stuckPod("airflow", "ignored")
	ignored.Annotations[AnnotationIgnore] = "true"
	critical := stuckPod("airflow", "critical")
	critical.Spec.PriorityClassName = "system-node-critical"
	running := stuckPod("airflow", "running")
	running.Status.Phase = corev1.PodRunning
	e := newGuardEnv(t, Policy{}, false, ignored, critical, running)

	for _, tc := range []struct {
		pod  *corev1.Pod
		kind finding.Kind
		want error
		msg  string
	}{
		{ignored, finding.InitStuck, ErrOwnerPolicy, `carries podmedic.io/ignore: "true": podmedic never acts on it`},
		{critical, finding.InitStuck, ErrOwnerPolicy, "has priority class system-node-critical: the cluster runs on it"},
		{running, finding.Evicted, ErrNoLongerHolds, "the pod is Running, not evicted"},
	} {
		r := deleteRequest(tc.pod, "r", finding.ModeAuto, "")
		r.Finding.Kind = tc.kind
		_, err := e.guard.Do(context.Background(), r)
		require.ErrorIs(t, err, tc.want, tc.pod.Name)
		require.ErrorContains(t, err, tc.msg)
		require.True(t, podExists(t, e.client, "airflow", tc.pod.Name), tc.pod.Name)
	}
	require.Zero(t, e.counted, "nothing executed")
}
