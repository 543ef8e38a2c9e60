package memapi

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
)

var sparkApps = schema.GroupVersionResource{Group: "sparkoperator.k8s.io", Version: "v1beta2", Resource: "sparkapplications"}

// TestSparkApplications: the Spark operator's custom resources are served as an apiserver with
// their CRDs installed serves them: discovery lists them, the dynamic client creates them with
// an empty status, the status subresource changes only the status, a merge patch of the spec
// bumps the generation and checks the resourceVersion it carries, a strategic merge patch is
// refused, and a dynamic informer sees them.
func TestSparkApplications(t *testing.T) {
	s, c := newAPI(t)
	ctx := context.Background()
	var list metav1.APIResourceList
	require.NoError(t, c.Discovery().RESTClient().Get().AbsPath("/apis/sparkoperator.k8s.io/v1beta2").Do(ctx).Into(&list))
	var served []string
	for _, r := range list.APIResources {
		served = append(served, r.Name)
	}
	require.Equal(t, []string{"scheduledsparkapplications", "scheduledsparkapplications/status", "sparkapplications", "sparkapplications/status"}, served)
	err := c.Discovery().RESTClient().Get().AbsPath("/apis/sparkoperator.k8s.io/v1").Do(ctx).Error()
	require.True(t, apierrors.IsNotFound(err), "%v", err)

	dyn, err := s.Dynamic("")
	require.NoError(t, err)
	res := dyn.Resource(sparkApps).Namespace("spark")
	app := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
		"metadata": map[string]any{"name": "sales"},
		"spec":     map[string]any{"type": "Scala", "driver": map[string]any{"memory": "4g"}},
		"status":   map[string]any{"applicationState": map[string]any{"state": "COMPLETED"}},
	}}
	created, err := res.Create(ctx, app, metav1.CreateOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, created.GetUID())
	require.Equal(t, int64(1), created.GetGeneration())
	require.Equal(t, "SparkApplication", created.GetKind())
	_, found, _ := unstructured.NestedMap(created.Object, "status")
	require.False(t, found, "create clears the status")

	require.NoError(t, unstructured.SetNestedField(created.Object, "FAILED", "status", "applicationState", "state"))
	require.NoError(t, unstructured.SetNestedField(created.Object, "8g", "spec", "driver", "memory"))
	st, err := res.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	require.NoError(t, err)
	state, _, _ := unstructured.NestedString(st.Object, "status", "applicationState", "state")
	mem, _, _ := unstructured.NestedString(st.Object, "spec", "driver", "memory")
	require.Equal(t, "FAILED", state)
	require.Equal(t, "4g", mem, "the status subresource changes only the status")

	patch := []byte(`{"metadata":{"resourceVersion":"` + created.GetResourceVersion() + `"},"spec":{"driver":{"memoryOverhead":"1g"}}}`)
	_, err = res.Patch(ctx, "sales", types.MergePatchType, patch, metav1.PatchOptions{})
	require.True(t, apierrors.IsConflict(err), "a stale resourceVersion: %v", err)
	patch = []byte(`{"metadata":{"resourceVersion":"` + st.GetResourceVersion() + `"},"spec":{"driver":{"memoryOverhead":"1g"}}}`)
	patched, err := res.Patch(ctx, "sales", types.MergePatchType, patch, metav1.PatchOptions{})
	require.NoError(t, err)
	over, _, _ := unstructured.NestedString(patched.Object, "spec", "driver", "memoryOverhead")
	state, _, _ = unstructured.NestedString(patched.Object, "status", "applicationState", "state")
	require.Equal(t, "1g", over)
	require.Equal(t, "FAILED", state, "a spec patch keeps the status")
	require.Equal(t, int64(2), patched.GetGeneration())
	_, err = res.Patch(ctx, "sales", types.StrategicMergePatchType, []byte(`{"spec":{}}`), metav1.PatchOptions{})
	require.True(t, apierrors.IsUnsupportedMediaType(err), "%v", err)

	f := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	inf := f.ForResource(sparkApps).Informer()
	stop := make(chan struct{})
	defer close(stop)
	f.Start(stop)
	require.True(t, cache.WaitForCacheSync(stop, inf.HasSynced))
	require.Len(t, inf.GetStore().List(), 1)
	_, err = res.Create(ctx, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "sparkoperator.k8s.io/v1beta2",
		"kind": "SparkApplication", "metadata": map[string]any{"name": "sales-2"}}}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(inf.GetStore().List()) == 2 }, 5*time.Second, 10*time.Millisecond)
}
