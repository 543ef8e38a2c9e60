package memapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func newAPI(t *testing.T) (*Server, *kubernetes.Clientset) {
	t.Helper()
	s := New(Options{})
	c, err := s.Clientset("")
	require.NoError(t, err)
	return s, c
}

func pod(ns, name string, labels map[string]string, node string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}, Spec: corev1.PodSpec{NodeName: node}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "busybox"})
	}
	return p
}

func names(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Namespace+"/"+p.Name)
	}
	return out
}

func TestCreateGetList(t *testing.T) {
	ctx := context.Background()
	_, c := newAPI(t)
	pods := c.CoreV1().Pods("a")

	in := pod("a", "web", map[string]string{"app": "web"}, "node-1", "main")
	in.Status.Phase = corev1.PodRunning // the apiserver ignores the status of a new pod
	created, err := pods.Create(ctx, in, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, created.UID)
	require.NotEmpty(t, created.ResourceVersion)
	require.False(t, created.CreationTimestamp.IsZero())
	require.Equal(t, int64(1), created.Generation)
	require.Equal(t, corev1.PodPending, created.Status.Phase)

	got, err := pods.Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, created, got)

	// A scripted cluster keeps the uid and creation time it gives.
	when := metav1.NewTime(time.Date(2026, 11, 20, 1, 0, 0, 0, time.UTC))
	fixed := pod("a", "batch", map[string]string{"app": "batch"}, "node-2", "main")
	fixed.UID, fixed.CreationTimestamp = "11111111-2222-3333-4444-555555555555", when
	fixed, err = pods.Create(ctx, fixed, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Equal(t, types.UID("11111111-2222-3333-4444-555555555555"), fixed.UID)
	require.True(t, when.Equal(&fixed.CreationTimestamp))

	_, err = pods.Create(ctx, pod("a", "web", nil, "", "main"), metav1.CreateOptions{})
	require.True(t, apierrors.IsAlreadyExists(err), "%v", err)
	_, err = pods.Get(ctx, "nope", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "%v", err)

	gen, err := pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "worker-"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Regexp(t, `^worker-[a-z0-9]{5}$`, gen.Name)
	last, err := c.CoreV1().Pods("b").Create(ctx, pod("b", "api", map[string]string{"app": "web"}, "node-1", "main"), metav1.CreateOptions{})
	require.NoError(t, err)

	all, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"a/batch", "a/web", "a/" + gen.Name, "b/api"}, names(all.Items))
	require.Equal(t, last.ResourceVersion, all.ResourceVersion, "a list is at the current resourceVersion")
	inA, err := pods.List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, inA.Items, 3)

	for sel, want := range map[[2]string][]string{
		{"app=web", ""}: {"a/web", "b/api"},
		{"app in (web,batch)", "spec.nodeName=node-2"}:      {"a/batch"},
		{"", "spec.nodeName!=node-1"}:                       {"a/batch", "a/" + gen.Name},
		{"", "metadata.name=api,metadata.namespace=b"}:      {"b/api"},
		{"", "status.phase=Pending,spec.hostNetwork=false"}: {"a/batch", "a/web", "a/" + gen.Name, "b/api"},
		{"app=none", ""}: nil,
	} {
		l, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: sel[0], FieldSelector: sel[1]})
		require.NoError(t, err, sel)
		require.Equal(t, want, names(l.Items), sel)
	}
	_, err = pods.List(ctx, metav1.ListOptions{FieldSelector: "spec.image=x"})
	require.True(t, apierrors.IsBadRequest(err), "an unsupported field label: %v", err)
	require.ErrorContains(t, err, "field label not supported: spec.image")
	_, err = pods.List(ctx, metav1.ListOptions{LabelSelector: "app in (x"})
	require.True(t, apierrors.IsBadRequest(err), "%v", err)

	// A dry run returns the object and stores nothing.
	dry, err := pods.Create(ctx, pod("a", "dry", nil, "", "main"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.NoError(t, err)
	require.Equal(t, "dry", dry.Name)
	_, err = pods.Get(ctx, "dry", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "%v", err)
}

func TestUpdateStatusAndConflicts(t *testing.T) {
	ctx := context.Background()
	_, c := newAPI(t)
	pods := c.CoreV1().Pods("a")
	p, err := pods.Create(ctx, pod("a", "web", nil, "node-1", "main"), metav1.CreateOptions{})
	require.NoError(t, err)
	stale := p.DeepCopy()

	// The status subresource changes the status only.
	p.Status.Phase = corev1.PodRunning
	p.Labels = map[string]string{"ignored": "yes"}
	running, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Equal(t, corev1.PodRunning, running.Status.Phase)
	require.Empty(t, running.Labels)
	require.NotEqual(t, p.ResourceVersion, running.ResourceVersion)

	// An update keeps the status; the generation follows the spec.
	running.Labels = map[string]string{"app": "web"}
	running.Status.Phase = corev1.PodFailed
	labelled, err := pods.Update(ctx, running, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Equal(t, "web", labelled.Labels["app"])
	require.Equal(t, corev1.PodRunning, labelled.Status.Phase)
	require.Equal(t, int64(1), labelled.Generation)
	labelled.Spec.ActiveDeadlineSeconds = ptr.To[int64](60)
	respec, err := pods.Update(ctx, labelled, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(2), respec.Generation)
	require.Equal(t, p.UID, respec.UID)

	// A stale resourceVersion, or another uid, conflicts.
	stale.Labels = map[string]string{"app": "old"}
	_, err = pods.Update(ctx, stale, metav1.UpdateOptions{})
	require.True(t, apierrors.IsConflict(err), "%v", err)
	_, err = pods.UpdateStatus(ctx, stale, metav1.UpdateOptions{})
	require.True(t, apierrors.IsConflict(err), "%v", err)
	other := respec.DeepCopy()
	other.UID = "another"
	_, err = pods.Update(ctx, other, metav1.UpdateOptions{})
	require.True(t, apierrors.IsConflict(err), "%v", err)
	require.ErrorContains(t, err, "Precondition failed: UID in precondition: another")
	// Without a resourceVersion, an update is unconditional.
	respec.ResourceVersion = ""
	respec.Labels["unconditional"] = "yes"
	_, err = pods.Update(ctx, respec, metav1.UpdateOptions{})
	require.NoError(t, err)

	_, err = pods.Update(ctx, pod("a", "missing", nil, "", "main"), metav1.UpdateOptions{})
	require.True(t, apierrors.IsNotFound(err), "%v", err)
	_, err = c.CoreV1().Pods("b").Update(ctx, respec, metav1.UpdateOptions{})
	require.True(t, apierrors.IsBadRequest(err), "the namespace of the object is not the request's: %v", err)
}

func TestDeletePreconditions(t *testing.T) {
	ctx := context.Background()
	_, c := newAPI(t)
	pods := c.CoreV1().Pods("a")
	p, err := pods.Create(ctx, pod("a", "web", nil, "", "main"), metav1.CreateOptions{})
	require.NoError(t, err)

	err = pods.Delete(ctx, "web", metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions("another-uid")})
	require.True(t, apierrors.IsConflict(err), "%v", err)
	require.ErrorContains(t, err, "Precondition failed: UID in precondition: another-uid")
	err = pods.Delete(ctx, "web", *metav1.NewRVDeletionPrecondition("999"))
	require.True(t, apierrors.IsConflict(err), "%v", err)
	_, err = pods.Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err, "a failed precondition deletes nothing")

	require.NoError(t, pods.Delete(ctx, "web", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{
		UID: &p.UID, ResourceVersion: &p.ResourceVersion}}))
	_, err = pods.Get(ctx, "web", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "%v", err)
	err = pods.Delete(ctx, "web", metav1.DeleteOptions{})
	require.True(t, apierrors.IsNotFound(err), "%v", err)
}

func TestEviction(t *testing.T) {
	ctx := context.Background()
	_, c := newAPI(t)
	p, err := c.CoreV1().Pods("spark").Create(ctx, pod("spark", "exec-1", nil, "node-1", "executor"), metav1.CreateOptions{})
	require.NoError(t, err)

	err = c.PolicyV1().Evictions("spark").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: "spark", Name: "exec-1"},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions("another-uid")}})
	require.True(t, apierrors.IsConflict(err), "%v", err)

	require.NoError(t, c.PolicyV1().Evictions("spark").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: "spark", Name: "exec-1"},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: metav1.NewUIDPreconditions(string(p.UID))}}))
	_, err = c.CoreV1().Pods("spark").Get(ctx, "exec-1", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "an eviction deletes the pod: %v", err)

	err = c.PolicyV1().Evictions("spark").Evict(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Namespace: "spark", Name: "exec-1"}})
	require.True(t, apierrors.IsNotFound(err), "%v", err)
}

func TestPatchDeployment(t *testing.T) {
	ctx := context.Background()
	_, c := newAPI(t)
	deployments := c.AppsV1().Deployments("reporting")
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "reporting", Name: "report-api"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "report-api"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "report-api"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{
					{Name: "api", Image: "api:1", Resources: corev1.ResourceRequirements{
						Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourceCPU: resource.MustParse("1")},
						Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
					}},
					{Name: "proxy", Image: "envoy:1", Resources: corev1.ResourceRequirements{
						Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
					}},
				}},
			},
		},
	}
	d, err := deployments.Create(ctx, d, metav1.CreateOptions{})
	require.NoError(t, err)
	d.Status.Replicas = 2
	d, err = deployments.UpdateStatus(ctx, d, metav1.UpdateOptions{})
	require.NoError(t, err)

	// The memory-limit action's patch: one container by name, with the uid as a precondition.
	patch := fmt.Sprintf(`{"metadata":{"uid":%q},"spec":{"template":{"spec":{"containers":[{"name":"api","resources":{"limits":{"memory":"3Gi"},"requests":{"memory":"2Gi"}}}]}}}}`, d.UID)
	patched, err := deployments.Patch(ctx, "report-api", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "podmedic"})
	require.NoError(t, err)
	require.NotEqual(t, d.ResourceVersion, patched.ResourceVersion)

	got, err := deployments.Get(ctx, "report-api", metav1.GetOptions{})
	require.NoError(t, err)
	containers := got.Spec.Template.Spec.Containers
	require.Len(t, containers, 2, "a strategic merge patch merges containers by name")
	api := containers[0].Resources
	require.Equal(t, "3Gi", ptr.To(api.Limits[corev1.ResourceMemory]).String())
	require.Equal(t, "2Gi", ptr.To(api.Requests[corev1.ResourceMemory]).String())
	require.Equal(t, "1", ptr.To(api.Limits[corev1.ResourceCPU]).String(), "the rest of the limits stay")
	require.Equal(t, "128Mi", ptr.To(containers[1].Resources.Limits[corev1.ResourceMemory]).String())
	require.Equal(t, int64(2), got.Generation, "the spec changed")
	require.Equal(t, int32(2), got.Status.Replicas, "a patch of the object keeps its status")

	// A workload replaced since (another uid) is not patched: the uid is immutable.
	_, err = deployments.Patch(ctx, "report-api", types.StrategicMergePatchType,
		[]byte(`{"metadata":{"uid":"another-uid"},"spec":{"replicas":5}}`), metav1.PatchOptions{})
	require.True(t, apierrors.IsInvalid(err), "%v", err)
	require.ErrorContains(t, err, "metadata.uid")

	merged, err := deployments.Patch(ctx, "report-api", types.MergePatchType, []byte(`{"metadata":{"labels":{"team":"bi"}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	require.Equal(t, "bi", merged.Labels["team"])
	require.Equal(t, int64(2), merged.Generation, "labels are not the spec")
	jp, err := deployments.Patch(ctx, "report-api", types.JSONPatchType, []byte(`[{"op":"replace","path":"/spec/replicas","value":3}]`), metav1.PatchOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(3), *jp.Spec.Replicas)
	_, err = deployments.Patch(ctx, "report-api", types.MergePatchType,
		[]byte(fmt.Sprintf(`{"metadata":{"resourceVersion":%q},"spec":{"replicas":1}}`, d.ResourceVersion)), metav1.PatchOptions{})
	require.True(t, apierrors.IsConflict(err), "a patch with a stale resourceVersion: %v", err)

	_, err = deployments.Patch(ctx, "report-api", types.JSONPatchType, []byte(`[{"op":"test","path":"/spec/replicas","value":9}]`), metav1.PatchOptions{})
	require.True(t, apierrors.IsInvalid(err), "%v", err)
	_, err = deployments.Patch(ctx, "report-api", types.StrategicMergePatchType, []byte(`{not json`), metav1.PatchOptions{})
	require.True(t, apierrors.IsBadRequest(err), "%v", err)
	_, err = deployments.Patch(ctx, "missing", types.StrategicMergePatchType, []byte(`{}`), metav1.PatchOptions{})
	require.True(t, apierrors.IsNotFound(err), "%v", err)

	// The status subresource takes patches of the status only.
	st, err := deployments.Patch(ctx, "report-api", types.MergePatchType, []byte(`{"spec":{"replicas":7},"status":{"readyReplicas":1}}`),
		metav1.PatchOptions{}, "status")
	require.NoError(t, err)
	require.Equal(t, int32(1), st.Status.ReadyReplicas)
	require.Equal(t, int32(3), *st.Spec.Replicas)
}

func TestLogs(t *testing.T) {
	ctx := context.Background()
	s, c := newAPI(t)
	pods := c.CoreV1().Pods("airflow")
	_, err := pods.Create(ctx, pod("airflow", "task", nil, "node-1", "base", "sidecar"), metav1.CreateOptions{})
	require.NoError(t, err)
	s.SetLog("airflow", "task", "base", "one\ntwo\nthree\nfour\n")

	logs := func(opts corev1.PodLogOptions) (string, error) {
		b, err := pods.GetLogs("task", &opts).DoRaw(ctx)
		return string(b), err
	}
	got, err := logs(corev1.PodLogOptions{Container: "base"})
	require.NoError(t, err)
	require.Equal(t, "one\ntwo\nthree\nfour\n", got)
	got, err = logs(corev1.PodLogOptions{Container: "base", TailLines: ptr.To[int64](2)})
	require.NoError(t, err)
	require.Equal(t, "three\nfour\n", got)
	got, err = logs(corev1.PodLogOptions{Container: "base", TailLines: ptr.To[int64](2), LimitBytes: ptr.To[int64](7)})
	require.NoError(t, err)
	require.Equal(t, "three\nf", got)
	got, err = logs(corev1.PodLogOptions{Container: "sidecar"})
	require.NoError(t, err)
	require.Empty(t, got, "a container that logged nothing")

	_, err = logs(corev1.PodLogOptions{Container: "nope"})
	require.True(t, apierrors.IsBadRequest(err), "%v", err)
	_, err = logs(corev1.PodLogOptions{})
	require.True(t, apierrors.IsBadRequest(err), "two containers: which one? %v", err)
	_, err = c.CoreV1().Pods("airflow").GetLogs("missing", &corev1.PodLogOptions{}).DoRaw(ctx)
	require.True(t, apierrors.IsNotFound(err), "%v", err)

	// The logs go with the pod.
	require.NoError(t, pods.Delete(ctx, "task", metav1.DeleteOptions{}))
	_, err = pods.Create(ctx, pod("airflow", "task", nil, "node-1", "base", "sidecar"), metav1.CreateOptions{})
	require.NoError(t, err)
	got, err = logs(corev1.PodLogOptions{Container: "base"})
	require.NoError(t, err)
	require.Empty(t, got)
}

func TestVersion(t *testing.T) {
	_, c := newAPI(t)
	v, err := c.Discovery().ServerVersion()
	require.NoError(t, err)
	require.Equal(t, "1", v.Major)
	require.Equal(t, "36", v.Minor)
	require.NotEmpty(t, v.GitVersion)
}

func TestEventsAndLeases(t *testing.T) {
	ctx := context.Background()
	_, c := newAPI(t)
	for i, kind := range []string{"Pod", "PersistentVolumeClaim", "Pod"} {
		_, err := c.CoreV1().Events("spark").Create(ctx, &corev1.Event{
			ObjectMeta:     metav1.ObjectMeta{Name: fmt.Sprintf("e%d", i)},
			InvolvedObject: corev1.ObjectReference{Kind: kind, Name: "x", Namespace: "spark"},
			Reason:         []string{"FailedMount", "ProvisioningFailed", "Scheduled"}[i],
			Source:         corev1.EventSource{Component: "kubelet"},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	l, err := c.CoreV1().Events("").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod,reason!=Scheduled,source=kubelet"})
	require.NoError(t, err)
	require.Len(t, l.Items, 1)
	require.Equal(t, "e0", l.Items[0].Name)

	ev, err := c.EventsV1().Events("spark").Create(ctx, &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "podmedic.1"}, EventTime: metav1.NowMicro(), Reason: "Deleted",
		Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "spark", Name: "x"}, Note: "pod deleted", Type: corev1.EventTypeNormal,
		ReportingController: "podmedic", ReportingInstance: "podmedic-0", Action: "Delete",
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = c.EventsV1().Events("spark").Patch(ctx, ev.Name, types.StrategicMergePatchType,
		[]byte(`{"series":{"count":2,"lastObservedTime":"2026-11-20T01:00:00.000000Z"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	evs, err := c.EventsV1().Events("spark").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, evs.Items, 1)
	require.Equal(t, "pod deleted", evs.Items[0].Note)
	require.Equal(t, int32(2), evs.Items[0].Series.Count)

	leases := c.CoordinationV1().Leases("podmedic")
	lease, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "leader"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("a")}}, metav1.CreateOptions{})
	require.NoError(t, err)
	stale := lease.DeepCopy()
	lease.Spec.HolderIdentity = ptr.To("b")
	lease, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Equal(t, "b", *lease.Spec.HolderIdentity)
	stale.Spec.HolderIdentity = ptr.To("c")
	_, err = leases.Update(ctx, stale, metav1.UpdateOptions{})
	require.True(t, apierrors.IsConflict(err), "two replicas cannot both take the lease: %v", err)
}

// countingTransport counts the requests of a client, by verb (list, watch, other).
type countingTransport struct {
	rt             http.RoundTripper
	lists, watches atomic.Int32
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	switch {
	case r.Method == http.MethodGet && r.URL.Query().Get("watch") == "true":
		c.watches.Add(1)
	case r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/pods"):
		c.lists.Add(1)
	}
	return c.rt.RoundTrip(r)
}

// memapiWatches counts the watch handlers running.
func memapiWatches() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "memapi.(*Server).watch(")
}

// TestInformer: a pod informer (client-go's reflector, with the watch-list it uses by default
// and with list then watch) syncs its cache and sees adds, updates and deletes, without relists;
// stopping it ends its watch.
func TestInformer(t *testing.T) {
	for _, watchList := range []bool{true, false} {
		t.Run(fmt.Sprintf("watchList=%v", watchList), func(t *testing.T) {
			clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, watchList)
			ctx := context.Background()
			s := New(Options{})
			counting := &countingTransport{rt: s.RoundTripper()}
			c, err := kubernetes.NewForConfigAndClient(&rest.Config{Host: "http://memapi.invalid", QPS: -1,
				ContentConfig: rest.ContentConfig{ContentType: "application/json"}},
				&http.Client{Transport: counting})
			require.NoError(t, err)
			pods := c.CoreV1().Pods("a")
			_, err = pods.Create(ctx, pod("a", "one", nil, "", "main"), metav1.CreateOptions{})
			require.NoError(t, err)
			_, err = pods.Create(ctx, pod("a", "two", nil, "", "main"), metav1.CreateOptions{})
			require.NoError(t, err)
			_, err = c.CoreV1().Pods("b").Create(ctx, pod("b", "elsewhere", nil, "", "main"), metav1.CreateOptions{})
			require.NoError(t, err)

			inf := coreinformers.NewPodInformer(c, "a", 0, cache.Indexers{})
			events := make(chan string, 100)
			_, err = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
				AddFunc: func(obj any) { events <- "add " + obj.(*corev1.Pod).Name },
				UpdateFunc: func(_, obj any) {
					events <- "update " + obj.(*corev1.Pod).Name + " " + string(obj.(*corev1.Pod).Status.Phase)
				},
				DeleteFunc: func(obj any) {
					if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
						obj = d.Obj
					}
					events <- "delete " + obj.(*corev1.Pod).Name
				},
			})
			require.NoError(t, err)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() { inf.Run(stop); close(done) }()
			require.True(t, cache.WaitForCacheSync(ctx.Done(), inf.HasSynced))
			require.ElementsMatch(t, []string{"a/one", "a/two"}, inf.GetStore().ListKeys())
			next := func() string {
				select {
				case e := <-events:
					return e
				case <-time.After(10 * time.Second):
					t.Fatal("no informer event")
					return ""
				}
			}
			require.ElementsMatch(t, []string{"add one", "add two"}, []string{next(), next()})

			three, err := pods.Create(ctx, pod("a", "three", nil, "", "main"), metav1.CreateOptions{})
			require.NoError(t, err)
			require.Equal(t, "add three", next())
			three.Status.Phase = corev1.PodRunning
			_, err = pods.UpdateStatus(ctx, three, metav1.UpdateOptions{})
			require.NoError(t, err)
			require.Equal(t, "update three Running", next())
			require.NoError(t, pods.Delete(ctx, "one", metav1.DeleteOptions{}))
			require.Equal(t, "delete one", next())
			_, err = c.CoreV1().Pods("b").Create(ctx, pod("b", "other", nil, "", "main"), metav1.CreateOptions{})
			require.NoError(t, err)
			_, err = pods.Create(ctx, pod("a", "four", nil, "", "main"), metav1.CreateOptions{})
			require.NoError(t, err)
			require.Equal(t, "add four", next(), "nothing about the other namespace")
			require.ElementsMatch(t, []string{"a/two", "a/three", "a/four"}, inf.GetStore().ListKeys())
			require.Equal(t, s.currentRV(), inf.LastSyncResourceVersion())

			wantLists := int32(1)
			if watchList {
				wantLists = 0 // the watch streams the initial state
			}
			require.Equal(t, wantLists, counting.lists.Load(), "lists")
			require.Equal(t, int32(1), counting.watches.Load(), "watches")

			close(stop)
			<-done
			require.Eventually(t, func() bool { return memapiWatches() == 0 }, 5*time.Second, 10*time.Millisecond,
				"the watch ends with the informer")
		})
	}
}

func (s *Server) currentRV() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprint(s.rv)
}

func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case e, ok := <-w.ResultChan():
		require.True(t, ok, "the watch ended")
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
		return watch.Event{}
	}
}

// TestWatchSelector: a watch with a field selector sees a pod enter the selection as ADDED and
// leave it as DELETED, and nothing of other namespaces.
func TestWatchSelector(t *testing.T) {
	ctx := context.Background()
	_, c := newAPI(t)
	pods := c.CoreV1().Pods("a")
	l, err := pods.List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	w, err := pods.Watch(ctx, metav1.ListOptions{FieldSelector: "status.phase=Running", ResourceVersion: l.ResourceVersion})
	require.NoError(t, err)
	defer w.Stop()

	p, err := pods.Create(ctx, pod("a", "web", nil, "", "main"), metav1.CreateOptions{})
	require.NoError(t, err)
	other, err := c.CoreV1().Pods("b").Create(ctx, pod("b", "web", nil, "", "main"), metav1.CreateOptions{})
	require.NoError(t, err)
	other.Status.Phase = corev1.PodRunning
	_, err = c.CoreV1().Pods("b").UpdateStatus(ctx, other, metav1.UpdateOptions{})
	require.NoError(t, err)
	p.Status.Phase = corev1.PodRunning
	p, err = pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	e := nextEvent(t, w)
	require.Equal(t, watch.Added, e.Type, "the pod enters the selection")
	require.Equal(t, p.ResourceVersion, e.Object.(*corev1.Pod).ResourceVersion)

	p.Labels = map[string]string{"x": "y"}
	p, err = pods.Update(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	e = nextEvent(t, w)
	require.Equal(t, watch.Modified, e.Type)
	require.Equal(t, "y", e.Object.(*corev1.Pod).Labels["x"])

	p.Status.Phase = corev1.PodSucceeded
	done, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(t, err)
	e = nextEvent(t, w)
	require.Equal(t, watch.Deleted, e.Type, "the pod leaves the selection")
	require.Equal(t, done.ResourceVersion, e.Object.(*corev1.Pod).ResourceVersion)
	require.Equal(t, corev1.PodRunning, e.Object.(*corev1.Pod).Status.Phase, "the last state it was selected in")

	// A watch from the current state starts with it, and sees the deletion.
	w2, err := c.CoreV1().Pods("").Watch(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	defer w2.Stop()
	var initial []string
	for range 2 {
		e := nextEvent(t, w2)
		require.Equal(t, watch.Added, e.Type)
		initial = append(initial, e.Object.(*corev1.Pod).Namespace)
	}
	sort.Strings(initial)
	require.Equal(t, []string{"a", "b"}, initial)
	require.NoError(t, pods.Delete(ctx, "web", metav1.DeleteOptions{}))
	e = nextEvent(t, w2)
	require.Equal(t, watch.Deleted, e.Type)
	require.Equal(t, "a", e.Object.(*corev1.Pod).Namespace)
	require.NotEqual(t, done.ResourceVersion, e.Object.(*corev1.Pod).ResourceVersion, "a deletion has its own resourceVersion")
}

func TestWatchHistoryAndTimeouts(t *testing.T) {
	ctx := context.Background()
	s, c := newAPI(t)
	s.maxHistory = 4
	pods := c.CoreV1().Pods("a")
	first, err := pods.Create(ctx, pod("a", "p0", nil, "", "main"), metav1.CreateOptions{})
	require.NoError(t, err)
	for i := 1; i < 10; i++ {
		_, err := pods.Create(ctx, pod("a", fmt.Sprintf("p%d", i), nil, "", "main"), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err = pods.Watch(ctx, metav1.ListOptions{ResourceVersion: first.ResourceVersion})
	require.True(t, apierrors.IsResourceExpired(err), "history compacted: %v", err)
	_, err = pods.Watch(ctx, metav1.ListOptions{ResourceVersion: "1000000"})
	require.True(t, apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge), "%v", err)

	// A watch ends after timeoutSeconds.
	w, err := pods.Watch(ctx, metav1.ListOptions{ResourceVersion: s.currentRV(), TimeoutSeconds: ptr.To[int64](1)})
	require.NoError(t, err)
	select {
	case _, ok := <-w.ResultChan():
		require.False(t, ok)
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end after its timeout")
	}

	// A watch ends with its context.
	wctx, cancel := context.WithCancel(ctx)
	w, err = pods.Watch(wctx, metav1.ListOptions{ResourceVersion: s.currentRV()})
	require.NoError(t, err)
	cancel()
	require.Eventually(t, func() bool {
		select {
		case _, ok := <-w.ResultChan():
			return !ok
		default:
			return false
		}
	}, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return memapiWatches() == 0 }, 5*time.Second, 10*time.Millisecond)

	// Bookmarks, when allowed.
	s.bookmarkEvery = 20 * time.Millisecond
	w, err = pods.Watch(ctx, metav1.ListOptions{ResourceVersion: s.currentRV(), AllowWatchBookmarks: true})
	require.NoError(t, err)
	defer w.Stop()
	e := nextEvent(t, w)
	require.Equal(t, watch.Bookmark, e.Type)
	require.Equal(t, s.currentRV(), e.Object.(*corev1.Pod).ResourceVersion)
}

// TestBadRequests: what a client gets for what the server does not serve or cannot decode.
func TestBadRequests(t *testing.T) {
	s := New(Options{})
	client := &http.Client{Transport: s.RoundTripper()}
	for _, tc := range []struct {
		method, path, contentType, body string
		code                            int
		reason                          metav1.StatusReason
	}{
		{"POST", "/api/v1/namespaces/a/pods", "application/json", `{not json`, 400, metav1.StatusReasonBadRequest},
		{"POST", "/api/v1/namespaces/a/pods", "application/json", `{"kind":"Service","apiVersion":"v1","metadata":{"name":"x"}}`, 400, metav1.StatusReasonBadRequest},
		{"POST", "/api/v1/namespaces/a/pods", "application/json", `{"metadata":{"name":"x"},"spec":{"containers":"no"}}`, 400, metav1.StatusReasonBadRequest},
		{"POST", "/api/v1/namespaces/a/pods", "application/json", `{"metadata":{}}`, 422, metav1.StatusReasonInvalid},
		{"POST", "/api/v1/namespaces/a/pods", "application/json", `{"metadata":{"name":"x","resourceVersion":"5"}}`, 400, metav1.StatusReasonBadRequest},
		{"POST", "/api/v1/namespaces/a/pods", "application/vnd.kubernetes.protobuf", `x`, 415, metav1.StatusReasonUnsupportedMediaType},
		{"POST", "/api/v1/pods", "application/json", `{"metadata":{"name":"x"}}`, 405, metav1.StatusReasonMethodNotAllowed},
		{"DELETE", "/api/v1/namespaces/a/pods", "", ``, 405, metav1.StatusReasonMethodNotAllowed},
		{"OPTIONS", "/api/v1/namespaces/a/pods/x", "", ``, 405, metav1.StatusReasonMethodNotAllowed},
		{"PATCH", "/api/v1/namespaces/a/pods/x", "application/apply-patch+yaml", `{}`, 415, metav1.StatusReasonUnsupportedMediaType},
		{"POST", "/api/v1/namespaces/a/pods/x/eviction", "application/json", `[]`, 400, metav1.StatusReasonBadRequest},
		{"GET", "/api/v1/namespaces/a/pods?watch=true&resourceVersion=abc", "", ``, 400, metav1.StatusReasonBadRequest},
		{"GET", "/api/v1/namespaces/a/pods?timeoutSeconds=soon", "", ``, 400, metav1.StatusReasonBadRequest},
		{"GET", "/api/v1/namespaces/a/pods?watch=true&sendInitialEvents=true", "", ``, 422, metav1.StatusReasonInvalid},
		{"GET", "/api/v1/namespaces/a/pods/x/exec", "", ``, 404, metav1.StatusReasonNotFound},
		{"GET", "/api/v1/namespaces/a/events/x/status", "", ``, 404, metav1.StatusReasonNotFound},
		{"GET", "/api/v1/namespaces/a/secrets", "", ``, 404, metav1.StatusReasonNotFound},
		{"GET", "/apis/example.com/v1/namespaces/a/widgets", "", ``, 404, metav1.StatusReasonNotFound},
		{"GET", "/api/v1/pods/x", "", ``, 404, metav1.StatusReasonNotFound},
		{"GET", "/healthz", "", ``, 404, metav1.StatusReasonNotFound},
		{"POST", "/version", "", ``, 405, metav1.StatusReasonMethodNotAllowed},
	} {
		name := tc.method + " " + tc.path + " " + tc.body
		req, err := http.NewRequest(tc.method, "http://memapi.invalid"+tc.path, strings.NewReader(tc.body))
		require.NoError(t, err)
		if tc.contentType != "" {
			req.Header.Set("Content-Type", tc.contentType)
		}
		resp, err := client.Do(req)
		require.NoError(t, err, name)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err, name)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, tc.code, resp.StatusCode, "%s: %s", name, body)
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"), name)
		var st metav1.Status
		require.NoError(t, json.Unmarshal(body, &st), name)
		require.Equal(t, "Status", st.Kind, name)
		require.Equal(t, "v1", st.APIVersion, name)
		require.Equal(t, metav1.StatusFailure, st.Status, name)
		require.Equal(t, int32(tc.code), st.Code, name)
		require.Equal(t, tc.reason, st.Reason, name)
		require.NotEmpty(t, st.Message, name)
	}

	// A cancelled request fails as over the network.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://memapi.invalid/version", nil)
	require.NoError(t, err)
	_, err = client.Do(req)
	require.ErrorIs(t, err, context.Canceled)
}

// TestConcurrentClients: writers race an informer; its cache ends as the server's list.
func TestConcurrentClients(t *testing.T) {
	ctx := context.Background()
	_, c := newAPI(t)
	inf := coreinformers.NewPodInformer(c, "", 0, cache.Indexers{})
	stop := make(chan struct{})
	defer close(stop)
	go inf.Run(stop)
	require.True(t, cache.WaitForCacheSync(ctx.Done(), inf.HasSynced))

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			ns := fmt.Sprintf("ns%d", w%2)
			for i := range 25 {
				name := fmt.Sprintf("w%d-%d", w, i)
				p, err := c.CoreV1().Pods(ns).Create(ctx, pod(ns, name, nil, "", "main"), metav1.CreateOptions{})
				if !assertNoError(t, err) {
					return
				}
				p.Status.Phase = corev1.PodRunning
				_, err = c.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{})
				assertNoError(t, err)
				_, err = c.CoreV1().Pods(ns).Patch(ctx, name, types.MergePatchType, []byte(`{"metadata":{"labels":{"n":"1"}}}`), metav1.PatchOptions{})
				assertNoError(t, err)
				if i%3 == 0 {
					assertNoError(t, c.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}))
				}
				_, _ = c.CoreV1().Pods("").List(ctx, metav1.ListOptions{LabelSelector: "n=1"})
			}
		})
	}
	wg.Wait()
	want, err := c.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, want.Items, 4*(25-9))
	wantRV := map[string]string{}
	for _, p := range want.Items {
		wantRV[p.Namespace+"/"+p.Name] = p.ResourceVersion
	}
	require.Eventually(t, func() bool {
		got := map[string]string{}
		for _, obj := range inf.GetStore().List() {
			p := obj.(*corev1.Pod)
			got[p.Namespace+"/"+p.Name] = p.ResourceVersion
		}
		return fmt.Sprint(got) == fmt.Sprint(wantRV)
	}, 10*time.Second, 10*time.Millisecond)
}

func assertNoError(t *testing.T, err error) bool {
	t.Helper()
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}
