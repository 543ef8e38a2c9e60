package e2e

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/app"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/rules"
)

// actionNamespace creates a namespace named prefix plus a random suffix, so that a test can
// run again (-count) against the same apiserver, and removes its pods at the end.
func actionNamespace(t *testing.T, env *kubeenv.Env, prefix string) string {
	t.Helper()
	ns := namespace(t, env, prefix+"-"+rand.String(5))
	removePods(t, env.Client, ns)
	return ns
}

// writeRules writes a rules.yaml into a fresh temporary directory and returns its path; every
// {{ns}} in yaml becomes ns.
func writeRules(t *testing.T, ns, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rules.yaml")
	rewriteRules(t, path, ns, yaml)
	return path
}

// rewriteRules writes yaml to the rules.yaml at path, every {{ns}} in it replaced by ns.
func rewriteRules(t *testing.T, path, ns, yaml string) {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(yaml, "{{ns}}", ns)), 0o600))
}

// daemon is podmedic's daemon (app.Run) running inside the test against the shared
// apiserver; name ("podmedic", or with a replica's id) is how the messages call it.
type daemon struct {
	t      *testing.T
	name   string
	h      *app.Handle
	cancel context.CancelFunc
	done   chan error
}

// startDaemon parses the rules.yaml at path into opts.Config, runs app.Run with opts and
// returns once podmedic is ready (opts.Ready is set here); the daemon stops when the test
// ends.
func startDaemon(t *testing.T, name, path string, opts app.Options) *daemon {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	opts.Config, err = config.Parse(path, data, rules.NewDefaultRegistry())
	require.NoError(t, err)
	d := &daemon{t: t, name: name, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	ready := make(chan *app.Handle, 1)
	opts.Ready = func(h *app.Handle) { ready <- h }
	go func() { d.done <- app.Run(ctx, opts) }()
	t.Cleanup(d.stop)
	select {
	case d.h = <-ready:
	case err := <-d.done:
		d.done <- err
		t.Fatalf("%s stopped before it was ready: %v", name, err)
	case <-time.After(60 * time.Second):
		t.Fatalf("%s not ready within 60s", name)
	}
	return d
}

// stop cancels the daemon and requires a clean exit (idempotent).
func (d *daemon) stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case err := <-d.done:
		require.NoError(d.t, err, "%s exit", d.name)
	case <-time.After(30 * time.Second):
		d.t.Errorf("%s did not stop within 30s", d.name)
	}
}

// inproc is the daemon with a recording notifier and its Handle, through which the test
// approves and denies proposals the way Slack and the local inbox do (the actions stage's
// Decide).
type inproc struct {
	*daemon

	mu      sync.Mutex
	notices []finding.Notice
}

// runInProcess starts app.Run with the rules.yaml at path and an embedded NATS server in a
// temporary directory; it returns once podmedic is ready. The tests write statuses whose
// failures are already old enough, so findings come from the watch, not from resyncs: the
// resync is long, and the pipeline settles (a resync every second would keep it busy).
func runInProcess(t *testing.T, env *kubeenv.Env, path string) *inproc {
	t.Helper()
	p := &inproc{}
	p.daemon = startDaemon(t, "podmedic", path, app.Options{
		Client: env.Client, DataDir: t.TempDir(), Resync: 10 * time.Minute, Workers: 4,
		Notifier: notifier.Func(func(_ context.Context, n *finding.Notice) error {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.notices = append(p.notices, *n)
			return nil
		}),
		Logger:  zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)),
		Actions: app.ActionsOptions{Interval: time.Second, RefusalQuiet: 2 * time.Second},
	})
	return p
}

// ofType returns the notices of one type received so far.
func (p *inproc) ofType(typ finding.NoticeType) []finding.Notice {
	p.mu.Lock()
	defer p.mu.Unlock()
	return noticesWhere(p.notices, func(n finding.Notice) bool { return n.Type == typ })
}

// noticesOf returns the notices of one type received so far.
func (p *podmedic) noticesOf(typ finding.NoticeType) []finding.Notice {
	p.mu.Lock()
	defer p.mu.Unlock()
	return noticesWhere(p.notices, func(n finding.Notice) bool { return n.Type == typ })
}

// noticesWhere returns the notices that keep accepts, in order.
func noticesWhere(notices []finding.Notice, keep func(finding.Notice) bool) []finding.Notice {
	var out []finding.Notice
	for _, n := range notices {
		if keep(n) {
			out = append(out, n)
		}
	}
	return out
}

// waitProposal waits for a proposal about the pod and returns it.
func (p *inproc) waitProposal(ns, pod string, within time.Duration) finding.Proposal {
	p.t.Helper()
	var found finding.Proposal
	require.Eventually(p.t, func() bool {
		ps, err := p.h.Proposals(context.Background())
		require.NoError(p.t, err)
		for _, x := range ps {
			if x.Finding.Namespace == ns && x.Finding.Pod == pod {
				found = x
				return true
			}
		}
		return false
	}, within, 50*time.Millisecond, "no proposal for %s/%s", ns, pod)
	return found
}

// settle waits until the pipeline has handled everything and stayed idle for a second.
func (p *inproc) settle() {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	require.NoError(p.t, p.h.WaitIdle(ctx, time.Second))
}

// stuckWorker is an Airflow worker scheduled on a node whose init container waits for a
// volume.
func stuckWorker(ns, name string) *corev1.Pod {
	p := airflowWorker(ns, name, "spark_etl", "submit")
	p.Spec.NodeName = "ip-10-0-3-17.ec2.internal"
	p.Spec.InitContainers = []corev1.Container{{Name: "wait-for-history", Image: "busybox",
		Command: []string{"sh", "-c", "until [ -d /history/logs ]; do sleep 5; done"}}}
	return p
}

// createStuckWorker creates a stuckWorker whose init container has run for 40 minutes and
// returns it as created.
func createStuckWorker(t *testing.T, c kubernetes.Interface, ns, name string) *corev1.Pod {
	t.Helper()
	p := createPod(t, c, stuckWorker(ns, name))
	writeStatus(t, c, p, initStuck(time.Now().Add(-40*time.Minute)))
	return p
}

// initStuck is the status the kubelet writes for a pod whose init container has run since
// started without completing.
func initStuck(started time.Time) func(*corev1.PodStatus) {
	return func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.StartTime = &metav1.Time{Time: started}
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionFalse, Reason: "ContainersNotInitialized"}}
		s.InitContainerStatuses = []corev1.ContainerStatus{{Name: "wait-for-history", Image: "busybox",
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: started}}}}}
		s.ContainerStatuses = []corev1.ContainerStatus{{Name: "base", Image: "apache/airflow:2.10.3",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}
	}
}

// deleted reports whether the pod is gone or being deleted (without a kubelet, a deleted pod
// that was scheduled stays Terminating).
func deleted(t *testing.T, c kubernetes.Interface, ns, name string) bool {
	t.Helper()
	p, err := c.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true
	}
	require.NoError(t, err)
	return p.DeletionTimestamp != nil
}

// podmedicEvents returns the reasons of the Events podmedic wrote about an object, oldest
// first.
func podmedicEvents(t *testing.T, c kubernetes.Interface, ns, name string) []string {
	t.Helper()
	list, err := c.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	var out []string
	for _, e := range list.Items {
		if e.ReportingController == "podmedic" && e.Regarding.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

// eventNote returns the note of podmedic's Event with this reason about an object.
func eventNote(t *testing.T, c kubernetes.Interface, ns, name, reason string) string {
	t.Helper()
	list, err := c.EventsV1().Events(ns).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	for _, e := range list.Items {
		if e.ReportingController == "podmedic" && e.Regarding.Name == name && e.Reason == reason {
			return e.Note
		}
	}
	return ""
}

// removePods force-deletes every pod of a namespace when the test ends: without a
// controller-manager a deleted namespace keeps its pods, and other tests' podmedic would see
// them.
func removePods(t *testing.T, c kubernetes.Interface, ns string) {
	t.Cleanup(func() {
		ctx := context.Background()
		zero := int64(0)
		err := c.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Logf("removing the pods of %s: %v", ns, err)
		}
	})
}

// deploymentWithPod creates a Deployment, its ReplicaSet and one pod of it, as the
// Deployment and ReplicaSet controllers would (there is no controller-manager), with a
// container "base" limited to limit and requesting request memory.
func deploymentWithPod(t *testing.T, c kubernetes.Interface, ns, name, limit, request string) (*appsv1.Deployment, *corev1.Pod) {
	t.Helper()
	ctx := context.Background()
	labels := map[string]string{"app": name}
	spec := corev1.PodSpec{Containers: []corev1.Container{
		{Name: "proxy", Image: "envoyproxy/envoy:v1.31"},
		{Name: "base", Image: "registry.example/reports-api:1.4", Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(limit)},
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse(request), corev1.ResourceCPU: resource.MustParse("250m")},
		}},
	}}
	d, err := c.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	rsLabels := map[string]string{"app": name, "pod-template-hash": "7f9c6d"}
	rs, err := c.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-7f9c6d", Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID,
				Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(1)), Selector: &metav1.LabelSelector{MatchLabels: rsLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: rsLabels}, Spec: spec}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	pod := createPod(t, c, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: rs.Name + "-x2x7q", Labels: rsLabels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID,
				Controller: ptr(true), BlockOwnerDeletion: ptr(true)}}},
		Spec: *spec.DeepCopy(),
	})
	return d, pod
}

// restartedAfterOOM is the status of a Deployment's pod whose container base was OOM-killed
// and restarted by the kubelet.
func restartedAfterOOM(started time.Time) func(*corev1.PodStatus) {
	return func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.StartTime = &metav1.Time{Time: started}
		s.ContainerStatuses = []corev1.ContainerStatus{
			{Name: "proxy", Image: "envoyproxy/envoy:v1.31", Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: started}}}},
			{Name: "base", Image: "registry.example/reports-api:1.4", RestartCount: 1,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: started.Add(2 * time.Minute)}}},
				LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled",
					StartedAt: metav1.Time{Time: started}, FinishedAt: metav1.Time{Time: started.Add(2 * time.Minute)}}}},
		}
	}
}

// memoryOf returns a container's memory limit and request in a Deployment as stored.
func memoryOf(t *testing.T, c kubernetes.Interface, ns, name, container string) (limit, request string) {
	t.Helper()
	d, err := c.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	for _, ct := range d.Spec.Template.Spec.Containers {
		if ct.Name == container {
			l, r := ct.Resources.Limits[corev1.ResourceMemory], ct.Resources.Requests[corev1.ResourceMemory]
			return l.String(), r.String()
		}
	}
	t.Fatalf("no container %s in deployment %s/%s", container, ns, name)
	return "", ""
}
