package app

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/rules"
)

// openBus starts the embedded NATS server in a temporary directory.
func openBus(t *testing.T) *bus.Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Options{DataDir: t.TempDir(), Name: "test", Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// TestJetStreamKV: the adapter gives the proposals bucket the compare-and-set semantics the
// actions stage relies on.
func TestJetStreamKV(t *testing.T) {
	ctx := context.Background()
	kv := actions.JetStreamKV{KV: openBus(t).Proposals()}

	_, _, err := kv.Get(ctx, "proposal.a")
	require.ErrorIs(t, err, actions.ErrKeyNotFound)
	rev, err := kv.Create(ctx, "proposal.a", []byte("1"))
	require.NoError(t, err)
	_, err = kv.Create(ctx, "proposal.a", []byte("2"))
	require.ErrorIs(t, err, actions.ErrKeyExists)

	rev2, err := kv.Update(ctx, "proposal.a", []byte("2"), rev)
	require.NoError(t, err)
	_, err = kv.Update(ctx, "proposal.a", []byte("3"), rev)
	require.ErrorIs(t, err, actions.ErrRevisionMismatch, "an update from a stale revision loses")
	v, got, err := kv.Get(ctx, "proposal.a")
	require.NoError(t, err)
	require.Equal(t, "2", string(v))
	require.Equal(t, rev2, got)

	_, err = kv.Create(ctx, "proposal.b", nil)
	require.NoError(t, err)
	_, err = kv.Create(ctx, "budget.total", nil)
	require.NoError(t, err)
	keys, err := kv.Keys(ctx, "proposal.")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"proposal.a", "proposal.b"}, keys)

	entries, err := kv.Entries(ctx, "proposal.")
	require.NoError(t, err)
	require.Len(t, entries, 2)
	for _, e := range entries {
		if e.Key == "proposal.a" {
			require.Equal(t, "2", string(e.Value))
			require.Equal(t, rev2, e.Revision)
		}
	}

	require.ErrorIs(t, kv.Delete(ctx, "proposal.a", rev), actions.ErrRevisionMismatch)
	require.NoError(t, kv.Delete(ctx, "proposal.a", rev2))
	_, _, err = kv.Get(ctx, "proposal.a")
	require.ErrorIs(t, err, actions.ErrKeyNotFound)
	_, err = kv.Create(ctx, "proposal.a", []byte("again"))
	require.NoError(t, err, "a deleted key can be created again")
	keys, err = kv.Keys(ctx, "nothing.")
	require.NoError(t, err)
	require.Empty(t, keys)
	entries, err = kv.Entries(ctx, "nothing.")
	require.NoError(t, err)
	require.Empty(t, entries)
	require.NoError(t, kv.Delete(ctx, "proposal.b", 0))
	entries, err = kv.Entries(ctx, "proposal.")
	require.NoError(t, err)
	require.Len(t, entries, 1, "a deleted key is not listed")
}

// natsStage is the actions stage over the real embedded NATS (proposals bucket, dedup claims,
// audit stream) and a fake cluster.
func natsStage(t *testing.T, policy actions.Policy) (*actions.Service, *fake.Clientset, *atomic.Int32, *bus.Bus) {
	t.Helper()
	b := openBus(t)
	client := fake.NewClientset()
	var execs atomic.Int32
	kv := actions.JetStreamKV{KV: b.Proposals()}
	g, err := actions.NewGuard(actions.GuardOptions{
		Client: client, KV: kv, Claimer: b, Policy: policy, Logger: zaptest.NewLogger(t),
		Executor: actions.Executors{finding.ActionDeletePod: actions.ExecutorFunc(func(ctx context.Context, r *actions.Request) (string, error) {
			execs.Add(1)
			return actions.DeletePod{Client: client}.Execute(ctx, r)
		})},
	})
	require.NoError(t, err)
	svc, err := actions.NewService(actions.ServiceOptions{
		Guard: g, Client: client, Store: actions.KVProposalStore{KV: kv}, Claimer: b, Audit: b,
		AuditSubject: bus.SubjectAudit + ".test.proposal", Metrics: actions.NewMetrics(prometheus.NewRegistry()),
		Notifier: notifier.Func(func(context.Context, *finding.Notice) error { return nil }), Logger: zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	return svc, client, &execs, b
}

func stuck(t *testing.T, c *fake.Clientset, name string, mode finding.Mode) *finding.Finding {
	t.Helper()
	pod, err := c.CoreV1().Pods("airflow").Create(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: "airflow", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "1",
		Labels: map[string]string{"kubernetes_executor": "True"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	return &finding.Finding{Kind: finding.InitStuck, Rule: "init-stuck", Namespace: "airflow", Pod: name, UID: string(pod.UID),
		Occurrence: "x", Airflow: &finding.AirflowTask{DagID: "etl", TaskID: name},
		Action: &finding.Action{Type: finding.ActionDeletePod, Mode: mode, Params: map[string]string{}}}
}

// TestConcurrentApprovalsOverNATS: 20 approvals of one proposal race on the real JetStream KV
// (as from several replicas): one executes, 19 are told it was decided.
func TestConcurrentApprovalsOverNATS(t *testing.T) {
	ctx := context.Background()
	svc, client, execs, b := natsStage(t, actions.Policy{})
	f := stuck(t, client, "w1", finding.ModeApprove)
	require.NoError(t, svc.Handle(ctx, f))
	id := actions.ProposalID(f)

	var wg sync.WaitGroup
	var won, lost atomic.Int32
	for i := range 20 {
		wg.Go(func() {
			_, err := svc.Decide(ctx, id, fmt.Sprintf("U%02d", i), true)
			if err == nil {
				won.Add(1)
				return
			}
			require.ErrorIs(t, err, actions.ErrAlreadyDecided)
			lost.Add(1)
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), won.Load())
	require.Equal(t, int32(19), lost.Load())
	require.Equal(t, int32(1), execs.Load(), "executed more than once")
	ps, err := svc.Proposals(ctx)
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.Equal(t, finding.StateExecuted, ps[0].State)

	// The audit stream has each transition once, as the proposal was in that state.
	c, err := b.JetStream().OrderedConsumer(ctx, bus.StreamAudit, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.SubjectAudit + ".test.proposal"}})
	require.NoError(t, err)
	batch, err := c.FetchNoWait(100)
	require.NoError(t, err)
	var trail []string
	for m := range batch.Messages() {
		var p finding.Proposal
		require.NoError(t, json.Unmarshal(m.Data(), &p))
		require.Equal(t, id+"/"+string(p.State), m.Headers().Get(jetstream.MsgIDHeader))
		trail = append(trail, string(p.State)+" by "+p.DecidedBy)
	}
	require.Equal(t, []string{"pending by ", "approved by " + ps[0].DecidedBy, "executed by " + ps[0].DecidedBy}, trail)
}

// TestBudgetOverNATS: 30 concurrent auto actions against a budget of 5 on the real KV: 5 run.
func TestBudgetOverNATS(t *testing.T) {
	ctx := context.Background()
	svc, client, execs, _ := natsStage(t, actions.Policy{Total: &actions.Limit{Max: 5, Window: time.Hour}})
	var fs []*finding.Finding
	for i := range 30 {
		fs = append(fs, stuck(t, client, fmt.Sprintf("w%02d", i), finding.ModeAuto))
	}
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Go(func() { require.NoError(t, svc.Handle(ctx, f)) })
	}
	wg.Wait()
	require.Equal(t, int32(5), execs.Load())
	pods, err := client.CoreV1().Pods("airflow").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 25)
}

func TestPolicyFromRules(t *testing.T) {
	cfg, err := config.Parse("rules.yaml", []byte(`version: 1
budgets:
  total: {max: 50, window: 1h}
  per_namespace: {max: 20, window: 30m}
cooldown: 10m
rules:
  - name: init-stuck
    detect: {kind: InitStuck}
    action:
      type: delete-pod
      mode: auto
      budget: {max: 5, window: 15m}
      cooldown: 2h
  - name: oom
    detect: {kind: OOMKilled}
`), rules.NewDefaultRegistry())
	require.NoError(t, err)
	two := 2 * time.Hour
	require.Equal(t, actions.Policy{
		Total:        &actions.Limit{Max: 50, Window: time.Hour},
		PerNamespace: &actions.Limit{Max: 20, Window: 30 * time.Minute},
		Cooldown:     10 * time.Minute,
		Rules:        map[string]actions.RulePolicy{"init-stuck": {Budget: &actions.Limit{Max: 5, Window: 15 * time.Minute}, Cooldown: &two}},
	}, actions.PolicyOf(cfg))

	def, err := config.Parse(podmedic.DefaultRulesFile, podmedic.DefaultRules(), rules.NewDefaultRegistry())
	require.NoError(t, err)
	p := actions.PolicyOf(def)
	require.Equal(t, 30*time.Minute, p.Cooldown)
	require.Equal(t, &actions.Limit{Max: 50, Window: time.Hour}, p.Total)
}
