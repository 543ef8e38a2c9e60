package rules_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/rules"
)

// memStore is an in-memory Store with the bus's claim semantics: claims[key] is the owner of
// an open claim, or "" once settled.
type memStore struct {
	mu        sync.Mutex
	claims    map[string]string
	published []string
	failPub   error
}

func (s *memStore) ClaimFor(_ context.Context, key, owner string, _ time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.claims[key]; ok {
		return cur == owner, nil
	}
	s.claims[key] = owner
	return true, nil
}

func (s *memStore) Settle(_ context.Context, key, owner string, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claims[key] == owner {
		s.claims[key] = ""
	}
	return nil
}

func (s *memStore) Release(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.claims, key)
	return nil
}

func (s *memStore) PublishJSON(_ context.Context, subject, _ string, _ any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failPub != nil {
		return s.failPub
	}
	s.published = append(s.published, subject)
	return nil
}

func oomPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "airflow", Name: "etl-load-1", UID: "u1", ResourceVersion: "7",
			Labels:      map[string]string{"kubernetes_executor": "True"},
			Annotations: map[string]string{"dag_id": "etl", "task_id": "load", "run_id": "r1", "try_number": "1"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "base", Resources: corev1.ResourceRequirements{
			Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{Name: "base",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled",
				FinishedAt: metav1.Date(2026, 11, 20, 2, 13, 9, 0, time.UTC)}}}}},
	}
}

func observation(t *testing.T, kind string, obj metav1.Object) *bus.Observation {
	raw, err := json.Marshal(obj)
	require.NoError(t, err)
	return &bus.Observation{Version: bus.EnvelopeVersion, Cluster: "c", Type: bus.Updated, Kind: kind,
		Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: string(obj.GetUID()), ResourceVersion: "1", Object: raw}
}

// newTestPipeline returns a rule handler with the default rules whose stage notifies n, and
// the Live it evaluates with.
func newTestPipeline(t *testing.T, view rules.View, store rules.Claims, n notifier.Notifier) (*rules.Handler, *rules.Live, *prometheus.Registry) {
	cfg, err := config.Parse("rules.yaml", podmedic.DefaultRules(), rules.NewDefaultRegistry())
	require.NoError(t, err)
	e, err := rules.NewEngine(cfg, rules.NewDefaultRegistry(), actions.MemoryPlanner{})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	live := rules.NewLive(e, view, nil)
	stage := rules.StageFunc(func(ctx context.Context, f *finding.Finding) error {
		return n.Notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Finding: f})
	})
	return rules.NewHandler(rules.HandlerOptions{Live: live, Claims: store, Stage: stage, Logger: zaptest.NewLogger(t), Registerer: reg}),
		live, reg
}

func TestPipelineReportsAFailureOnce(t *testing.T) {
	store := &memStore{claims: map[string]string{}}
	var got []finding.Finding
	n := notifier.Func(func(_ context.Context, n *finding.Notice) error { got = append(got, *n.Finding); return nil })
	p, _, reg := newTestPipeline(t, rules.NewStaticView(nil, nil, nil), store, n)

	o := observation(t, bus.KindPod, oomPod())
	require.NoError(t, p.Handle(context.Background(), o))
	require.NoError(t, p.Handle(context.Background(), o), "the same failure again")
	require.Len(t, got, 1)
	require.Equal(t, finding.OOMKilled, got[0].Kind)
	require.Equal(t, []string{"podmedic.findings.default.OOMKilled"}, store.published)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP podmedic_findings_repeated_total Findings seen again (resync, restart, another replica) and not reported twice.
# TYPE podmedic_findings_repeated_total counter
podmedic_findings_repeated_total 1
`), "podmedic_findings_repeated_total"))
}

func TestPipelineReleasesTheClaimWhenDeliveryFails(t *testing.T) {
	store := &memStore{claims: map[string]string{}}
	fail := true
	var got int
	n := notifier.Func(func(context.Context, *finding.Notice) error {
		if fail {
			return errors.New("slack is down")
		}
		got++
		return nil
	})
	p, _, _ := newTestPipeline(t, rules.NewStaticView(nil, nil, nil), store, n)
	o := observation(t, bus.KindPod, oomPod())
	err := p.Handle(context.Background(), o)
	require.ErrorContains(t, err, "slack is down")
	require.False(t, errors.Is(err, bus.ErrPermanent), "a delivery failure is retried")
	require.Empty(t, store.claims, "the claim was released")

	fail = false // the redelivery succeeds and reports the finding
	require.NoError(t, p.Handle(context.Background(), o))
	require.Equal(t, 1, got)
}

// TestPipelineFinishesTheClaimOfAHandlerThatDied: a replica claimed a finding and died before
// it delivered it. Another observation of the same failure does not report it (the claim is
// not its own); the redelivery of the observation that made the claim does, once.
func TestPipelineFinishesTheClaimOfAHandlerThatDied(t *testing.T) {
	store := &memStore{claims: map[string]string{}}
	var got []finding.Finding
	n := notifier.Func(func(_ context.Context, n *finding.Notice) error { got = append(got, *n.Finding); return nil })
	p, live, _ := newTestPipeline(t, rules.NewStaticView(nil, nil, nil), store, n)
	o := observation(t, bus.KindPod, oomPod())
	var key string
	for _, fd := range live.Engine().EvaluatePod(oomPod(), rules.NewStaticView(nil, nil, nil), time.Now()) {
		key = "finding." + fd.Key()
	}
	require.NotEmpty(t, key)
	won, err := store.ClaimFor(context.Background(), key, o.MsgID(), time.Hour) // the replica that died
	require.NoError(t, err)
	require.True(t, won)

	later := observation(t, bus.KindPod, oomPod())
	later.ResourceVersion = "2"
	require.NoError(t, p.Handle(context.Background(), later))
	require.Empty(t, got, "another observation of the failure while the claim is open")

	require.NoError(t, p.Handle(context.Background(), o), "the redelivery")
	require.Len(t, got, 1)
	require.NoError(t, p.Handle(context.Background(), o), "delivered again after it settled")
	require.NoError(t, p.Handle(context.Background(), later))
	require.Len(t, got, 1)
	require.Equal(t, "", store.claims[key], "settled")
}

func TestPipelineTerminatesUndecodableObjects(t *testing.T) {
	p, _, _ := newTestPipeline(t, rules.NewStaticView(nil, nil, nil), &memStore{claims: map[string]string{}},
		notifier.Func(func(context.Context, *finding.Notice) error { return nil }))
	o := observation(t, bus.KindPod, oomPod())
	o.Object = json.RawMessage(`{"spec":{"containers":"not a list"}}`)
	require.ErrorIs(t, p.Handle(context.Background(), o), bus.ErrPermanent)
}

func TestPipelineEventReevaluatesTheCachedPod(t *testing.T) {
	pod := oomPod()
	view := rules.NewStaticView([]*corev1.Pod{pod}, nil, nil)
	var got []finding.Finding
	p, _, _ := newTestPipeline(t, view, &memStore{claims: map[string]string{}},
		notifier.Func(func(_ context.Context, n *finding.Notice) error { got = append(got, *n.Finding); return nil }))

	other := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "airflow", Name: "e1", UID: "e1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "airflow", Name: "etl-load-1", UID: "a-previous-pod"}}
	require.NoError(t, p.Handle(context.Background(), observation(t, bus.KindEvent, other)))
	require.Empty(t, got, "an event about an earlier pod with the same name re-evaluates nothing")

	ev := other.DeepCopy()
	ev.InvolvedObject.UID = "u1"
	require.NoError(t, p.Handle(context.Background(), observation(t, bus.KindEvent, ev)))
	require.Len(t, got, 1)
	require.Equal(t, "etl-load-1", got[0].Pod)
}

// failedWorker is an Airflow worker whose task failed with a termination message that prints
// a database URL with its password.
func failedWorker() *corev1.Pod {
	p := oomPod()
	p.Name, p.UID = "etl-load-2", "u2"
	p.Status.ContainerStatuses[0].State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error",
		Message:    "could not connect to postgres://etl:hunter2@db:5432/dw",
		FinishedAt: metav1.Date(2026, 11, 20, 2, 13, 9, 0, time.UTC)}
	return p
}

// TestHandlerRedactsEvidence: what a finding carries to the stage (and so to Slack, the
// audit trail and Events) is cleaned of secrets, from the termination message and from the
// log tail alike; evidence.log_tails: false leaves the log out.
func TestHandlerRedactsEvidence(t *testing.T) {
	logs := rules.LogSource(func(context.Context, string, string, string, int64, int64) ([]byte, error) {
		return []byte("INFO starting\nERROR login failed password=hunter2\nAuthorization: Bearer abcdefghijklmnop\n"), nil
	})
	for _, tails := range []bool{true, false} {
		cfg, err := config.Parse("rules.yaml", podmedic.DefaultRules(), rules.NewDefaultRegistry())
		require.NoError(t, err)
		cfg.Evidence.LogTails = &tails
		e, err := rules.NewEngine(cfg, rules.NewDefaultRegistry(), actions.MemoryPlanner{})
		require.NoError(t, err)
		var got []finding.Finding
		h := rules.NewHandler(rules.HandlerOptions{Live: rules.NewLive(e, rules.NewStaticView(nil, nil, nil), nil),
			Claims: &memStore{claims: map[string]string{}}, Logs: &rules.LogTailer{Source: logs},
			Stage: rules.StageFunc(func(_ context.Context, f *finding.Finding) error { got = append(got, *f); return nil })})
		require.NoError(t, h.Handle(context.Background(), observation(t, bus.KindPod, failedWorker())))
		require.Len(t, got, 1)
		ev := strings.Join(got[0].Evidence, "\n")
		assert.NotContains(t, ev, "hunter2")
		assert.NotContains(t, ev, "abcdefghijklmnop")
		assert.Contains(t, ev, "postgres://[redacted]@db:5432/dw")
		if tails {
			assert.Contains(t, ev, "  | ERROR login failed password=[redacted]")
			assert.Contains(t, ev, "  | Authorization: Bearer [redacted]")
		} else {
			assert.NotContains(t, ev, "last log lines")
		}
	}
}
