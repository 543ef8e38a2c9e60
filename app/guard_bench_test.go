package app

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/bench/podgen"
)

// BenchmarkGuard is the one guard's decision on a delete-pod action for a stuck Airflow
// worker: Admit (what a proposal is checked with: mode, protected namespaces, owner policy),
// and Do in dry-run (Admit, re-verification of the pod against the API — a fake clientset
// here — budgets and cooldown in an in-memory KV, the recording executor), once per pod
// (executed) and again on the same pod (refused by the cooldown).
func BenchmarkGuard(b *testing.B) {
	const n = 2000
	objs := make([]runtime.Object, n)
	reqs := make([]*actions.Request, n)
	for i := range n {
		p := podgen.Stored("airflow", i, false)
		objs[i] = p
		reqs[i] = guardRequest(p)
	}
	newGuard := func(b *testing.B, p actions.Policy) *actions.Guard {
		g, err := actions.NewGuard(actions.GuardOptions{
			Client: fake.NewClientset(objs...), DryRun: true, Policy: p, KV: actions.NewMemoryKV(),
			Claimer: actions.NewMemoryClaimer(nil), Namespace: "podmedic", Metrics: actions.NewMetrics(prometheus.NewRegistry()),
			Rechecker: actions.RecheckerFunc(func(context.Context, *finding.Finding, *corev1.Pod) (bool, string) { return true, "" }),
		})
		if err != nil {
			b.Fatal(err)
		}
		return g
	}
	ctx := context.Background()
	b.Run("admit", func(b *testing.B) {
		g := newGuard(b, actions.Policy{Cooldown: 30 * time.Minute})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := g.Admit(ctx, reqs[i%n], false); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("do-executed", func(b *testing.B) {
		b.ReportAllocs()
		var g *actions.Guard
		i := 0
		for b.Loop() {
			if i%n == 0 {
				b.StopTimer()
				g = newGuard(b, actions.Policy{Cooldown: 30 * time.Minute}) // every pod fresh again
				b.StartTimer()
			}
			if _, err := g.Do(ctx, reqs[i%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("do-refused-cooldown", func(b *testing.B) {
		g := newGuard(b, actions.Policy{Cooldown: 30 * time.Minute})
		if _, err := g.Do(ctx, reqs[0]); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := g.Do(ctx, reqs[0]); err == nil {
				b.Fatal("the cooldown did not refuse")
			}
		}
	})
}

// guardRequest is an approved delete of a pod stuck in Init.
func guardRequest(p *corev1.Pod) *actions.Request {
	f := &finding.Finding{Kind: finding.InitStuck, Rule: "init-stuck", Severity: finding.SeverityWarning,
		Namespace: p.Namespace, Pod: p.Name, UID: string(p.UID), Occurrence: "2026-11-20T02:00:00Z",
		Airflow: &finding.AirflowTask{DagID: p.Annotations["dag_id"], TaskID: p.Annotations["task_id"], RunID: p.Annotations["run_id"]},
		Action:  &finding.Action{Type: finding.ActionDeletePod, Mode: finding.ModeApprove, Params: map[string]string{}}}
	return &actions.Request{ID: actions.ProposalID(f), Finding: f, Action: *f.Action, ApprovedBy: "U0ONCALL",
		Target: finding.Target{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: string(p.UID)}}
}
