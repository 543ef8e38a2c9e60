package watchers

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/podmedic/podmedic/bus"
)

type recorder struct {
	mu  sync.Mutex
	obs []*bus.Observation
}

func (r *recorder) PublishObservation(_ context.Context, o *bus.Observation) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, o)
	return nil
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.obs)
}

func (r *recorder) find(kind, name string, t bus.ObservationType) *bus.Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.obs {
		if o.Kind == kind && o.Name == name && o.Type == t {
			return o
		}
	}
	return nil
}

func airflowPod(ns, name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: name, UID: "uid-" + "name",
			Labels: map[string]string{"kubernetes_executor": "True", "dag_id": "etl_daily", "task_id": "load"},
			Annotations: map[string]string{
				"dag_id": "etl_daily", "task_id": "load", "run_id": "scheduled__2026-11-20T00:00:00+00:00",
				"try_number": "1", "kubectl.kubernetes.io/last-applied-configuration": "{...huge...}",
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet"}},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "base", Image: "apache/airflow:2.10.3",
			Env: []corev1.EnvVar{{Name: "AIRFLOW__CORE__FERNET_KEY", Value: "secret-value"}},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				corev1.ResourceMemory: resource.MustParse("2Gi")}},
		}}},
	}
}

func start(t *testing.T, client *fake.Clientset, o Options) (*recorder, *Watcher, context.CancelFunc) {
	t.Helper()
	rec := &recorder{}
	o.Client, o.Publisher, o.Logger = client, rec, zaptest.NewLogger(t)
	w, err := New(o)
	require.NoError(t, err)
	cancel := run(t, w)
	require.Eventually(t, w.Synced, 5*time.Second, 10*time.Millisecond)
	return rec, w, cancel
}

// run runs w until the test ends (or cancel).
func run(t *testing.T, w *Watcher) (cancel context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Error("watcher did not stop")
		}
	})
	return cancel
}

func TestWatcherPublishesTrimmedPodsAndDeletes(t *testing.T) {
	existing := airflowPod("airflow", "etl-load-1")
	client := fake.NewClientset(existing)
	rec, w, _ := start(t, client, Options{Cluster: "prod"})

	// The initial list is published as a resync, trimmed.
	var o *bus.Observation
	require.Eventually(t, func() bool { o = rec.find(bus.KindPod, "etl-load-1", bus.Resync); return o != nil },
		5*time.Second, 10*time.Millisecond)
	require.Equal(t, "prod", o.Cluster)
	require.Equal(t, "podmedic.obs.prod.pod.airflow.etl-load-1", o.Subject())
	var got corev1.Pod
	require.NoError(t, json.Unmarshal(o.Object, &got))
	require.Empty(t, got.ManagedFields, "managedFields trimmed")
	require.Empty(t, got.Spec.Containers[0].Env, "env values trimmed")
	require.NotContains(t, string(o.Object), "secret-value")
	require.NotContains(t, got.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
	require.Equal(t, "scheduled__2026-11-20T00:00:00+00:00", got.Annotations["run_id"])
	require.Equal(t, "2Gi", got.Spec.Containers[0].Resources.Limits.Memory().String())

	// The view serves the cache.
	require.NotNil(t, w.Pod("airflow", "etl-load-1"))
	require.Nil(t, w.Pod("airflow", "missing"))

	// An update, then a delete, each published; the delete carries the final state.
	ctx := context.Background()
	p := existing.DeepCopy()
	p.Status.Phase = corev1.PodFailed
	_, err := client.CoreV1().Pods("airflow").UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rec.find(bus.KindPod, "etl-load-1", bus.Updated) != nil }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, client.CoreV1().Pods("airflow").Delete(ctx, "etl-load-1", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { o = rec.find(bus.KindPod, "etl-load-1", bus.Deleted); return o != nil }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, json.Unmarshal(o.Object, &got))
	require.Equal(t, corev1.PodFailed, got.Status.Phase)
}

func TestWatcherScopesNamespacesAndEvents(t *testing.T) {
	client := fake.NewClientset()
	rec, w, _ := start(t, client, Options{Exclude: []string{"kube-system"}})
	ctx := context.Background()
	_, err := client.CoreV1().Pods("kube-system").Create(ctx, airflowPod("kube-system", "coredns"), metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = client.CoreV1().Pods("spark").Create(ctx, airflowPod("spark", "driver"), metav1.CreateOptions{})
	require.NoError(t, err)
	for _, e := range []*corev1.Event{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "spark", Name: "driver.1"}, Reason: "FailedMount", Type: "Warning",
			InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "spark", Name: "driver", UID: "uid-name"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "spark", Name: "node.1"}, Reason: "NodeReady",
			InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "node-a"}},
	} {
		_, err = client.CoreV1().Events(e.Namespace).Create(ctx, e, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return rec.find(bus.KindEvent, "driver.1", bus.Added) != nil }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "FailedMount", rec.find(bus.KindEvent, "driver.1", bus.Added).Reason)
	require.Eventually(t, func() bool { return rec.find(bus.KindPod, "driver", bus.Added) != nil }, 5*time.Second, 10*time.Millisecond)
	require.Nil(t, rec.find(bus.KindPod, "coredns", bus.Added), "excluded namespace is not published")
	require.Nil(t, rec.find(bus.KindEvent, "node.1", bus.Added), "events about nodes are not published")
	evs := w.EventsFor("Pod", "spark", "driver", "uid-name")
	require.Len(t, evs, 1)
	require.Equal(t, "FailedMount", evs[0].Reason)
	require.Len(t, w.EventsFor("Pod", "spark", "driver", ""), 1, "lookup by name when no uid")
}

func TestTransformIsIdempotent(t *testing.T) {
	p := airflowPod("a", "b")
	once, err := Transform(p)
	require.NoError(t, err)
	twice, err := Transform(once)
	require.NoError(t, err)
	require.Equal(t, once, twice)
}
