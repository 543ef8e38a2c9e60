package schedule

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/rules"
)

// t0 is the tests' "now".
var t0 = time.Date(2026, 11, 20, 8, 15, 0, 0, time.UTC)

// recorder is a notifier and an audit publisher that keep what they get.
type recorder struct {
	notifier.Recorder
	mu      sync.Mutex
	audit   []string // subject msgID
	reports []Report
}

func (r *recorder) PublishJSON(_ context.Context, subject, msgID string, v any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.audit = append(r.audit, subject+" "+msgID)
	if rep, ok := v.(*Report); ok {
		r.reports = append(r.reports, *rep)
	}
	return nil
}

// clientLister lists pods through a clientset (the fake one filters labels, not fields).
type clientLister struct{ c kubernetes.Interface }

func (l clientLister) ListPods(ctx context.Context, ns string, sel labels.Selector, phase string, fn func(*corev1.Pod) error) error {
	list, err := l.c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return err
	}
	for i := range list.Items {
		if phase != "" && string(list.Items[i].Status.Phase) != phase {
			continue
		}
		if err := fn(&list.Items[i]); err != nil {
			return err
		}
	}
	return nil
}

// sweepEnv is a sweeper over a fake cluster with the real guard and actions stage.
type sweepEnv struct {
	t       *testing.T
	client  *fake.Clientset
	cfg     *config.Config
	engine  *rules.Engine
	kv      *actions.MemoryKV
	guard   *actions.Guard
	svc     *actions.Service
	rec     *recorder
	sweeper *Sweeper
	now     time.Time
}

// newSweepEnv loads yaml (a rules.yaml) and builds the stages as the app does.
func newSweepEnv(t *testing.T, yaml string, policy actions.Policy, dryRun bool, pods ...runtime.Object) *sweepEnv {
	t.Helper()
	reg := rules.NewDefaultRegistry()
	cfg, err := config.Parse("rules.yaml", []byte(yaml), reg)
	require.NoError(t, err)
	engine, err := rules.NewEngine(cfg, reg, actions.MemoryPlanner{})
	require.NoError(t, err)
	e := &sweepEnv{t: t, client: fake.NewClientset(pods...), cfg: cfg, engine: engine, kv: actions.NewMemoryKV(),
		rec: &recorder{}, now: t0}
	view := rules.NewStaticView(nil, nil, nil)
	now := func() time.Time { return e.now }
	claimer := actions.NewMemoryClaimer(now)
	e.guard, err = actions.NewGuard(actions.GuardOptions{
		Client: e.client, DryRun: dryRun, Policy: policy, KV: e.kv, Claimer: claimer, Namespace: "podmedic", Now: now,
		Executor: actions.Executors{finding.ActionDeletePod: actions.DeletePod{Client: e.client},
			finding.ActionEvictPod: actions.EvictPod{Client: e.client}},
		Rechecker: actions.RecheckerFunc(func(_ context.Context, f *finding.Finding, pod *corev1.Pod) (bool, string) {
			return holds(engine.EvaluatePod(pod, view, e.now), f), "no longer " + string(f.Kind)
		}),
		Logger: zaptest.NewLogger(t),
	})
	require.NoError(t, err)
	store := actions.KVProposalStore{KV: e.kv}
	e.svc, err = actions.NewService(actions.ServiceOptions{Guard: e.guard, Client: e.client, Store: store, Claimer: claimer,
		Notifier: e.rec, Audit: e.rec, AuditSubject: "podmedic.audit.test.proposal", Now: now, Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	e.sweeper = &Sweeper{Rules: func() *rules.Engine { return engine }, Registry: reg, View: view, Pods: clientLister{e.client},
		Client: e.client, Guard: e.guard, Service: e.svc, Store: store, Audit: e.rec, AuditSubject: "podmedic.audit.test.proposal",
		Now: now, Logger: zaptest.NewLogger(t)}
	return e
}

func (e *sweepEnv) job(name string) *config.Schedule {
	for i := range e.cfg.Schedules {
		if e.cfg.Schedules[i].Name == name {
			return &e.cfg.Schedules[i]
		}
	}
	e.t.Fatalf("no schedule %s", name)
	return nil
}

func (e *sweepEnv) sweep(name string) *Report {
	e.t.Helper()
	return e.sweeper.Sweep(context.Background(), e.cfg, e.job(name), e.now.Truncate(time.Minute))
}

func (e *sweepEnv) create(p *corev1.Pod) {
	e.t.Helper()
	_, err := e.client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{})
	require.NoError(e.t, err)
}

// pods returns the names of the pods of a namespace, sorted.
func (e *sweepEnv) pods(ns string) []string {
	e.t.Helper()
	list, err := e.client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(e.t, err)
	var out []string
	for _, p := range list.Items {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

// airflowPod is a KubernetesExecutor worker pod (bare: Airflow retries it).
func airflowPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name),
			CreationTimestamp: metav1.NewTime(t0.Add(-72 * time.Hour)),
			Labels:            map[string]string{"kubernetes_executor": "True", "dag_id": "etl_daily", "task_id": "load"},
			Annotations:       map[string]string{"dag_id": "etl_daily", "task_id": "load", "run_id": "scheduled__2026-11-19T00:00:00+00:00", "try_number": "1"}},
		Spec: corev1.PodSpec{NodeName: "ip-10-0-4-203.ec2.internal", RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "base", Image: "apache/airflow:2.10.3"}}},
	}
}

// evicted is a worker the kubelet evicted at evictedAt (as kubelets since 1.26 write it).
func evicted(ns, name string, evictedAt time.Time) *corev1.Pod {
	p := airflowPod(ns, name)
	started := metav1.NewTime(evictedAt.Add(-40 * time.Minute))
	p.Status = corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", StartTime: &started,
		Message: "The node was low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. ",
		Conditions: []corev1.PodCondition{
			{Type: "DisruptionTarget", Status: corev1.ConditionTrue, Reason: "TerminationByKubelet", LastTransitionTime: metav1.NewTime(evictedAt)},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: metav1.NewTime(evictedAt.Add(time.Second))},
		}}
	return p
}

// initStuck is a worker whose init container has waited since started.
func initStuck(ns, name string, started time.Time) *corev1.Pod {
	p := airflowPod(ns, name)
	p.Spec.InitContainers = []corev1.Container{{Name: "wait-for-history", Image: "busybox"}}
	st := metav1.NewTime(started)
	p.Status = corev1.PodStatus{Phase: corev1.PodPending, StartTime: &st,
		InitContainerStatuses: []corev1.ContainerStatus{{Name: "wait-for-history",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: st}}}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "base",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}}
	return p
}

func names(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s-%02d", prefix, i))
	}
	return out
}
