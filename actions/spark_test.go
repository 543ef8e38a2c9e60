package actions

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/overrides"
	"github.com/podmedic/podmedic/spark"
)

func sparkApp(overhead string) *unstructured.Unstructured {
	driver := map[string]any{"memory": "4g"}
	if overhead != "" {
		driver["memoryOverhead"] = overhead
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
		"metadata": map[string]any{"name": "sales", "namespace": "spark-jobs", "uid": "uid-1", "resourceVersion": "7"},
		"spec":     map[string]any{"type": "Scala", "driver": driver, "executor": map[string]any{"memory": "8g"}},
	}}
}

func sparkRequest(overhead string) *Request {
	return &Request{ID: "p-1", Target: finding.Target{Kind: "SparkApplication", Namespace: "spark-jobs", Name: "sales", UID: "uid-1"},
		Action: finding.Action{Type: finding.ActionProposeMemoryLimit, Params: map[string]string{"container": "spark-kubernetes-driver",
			"limit": "6784Mi", "target": "SparkApplication", "role": "driver", "memory": "4g", "memoryOverhead": overhead}}}
}

// TestPatchSparkMemory: the patch sets the role's memory settings; an application already at
// least as large, replaced, or gone is not patched, with the reason.
func TestPatchSparkMemory(t *testing.T) {
	ctx := context.Background()
	newClient := func(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
		return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
			map[schema.GroupVersionResource]string{spark.ApplicationResource: "SparkApplicationList"}, objs...)
	}
	c := newClient(sparkApp(""))
	p := PatchSparkMemory{Dynamic: c}
	msg, err := p.Execute(ctx, sparkRequest("2688m"))
	require.NoError(t, err)
	assert.Equal(t, "SparkApplication spark-jobs/sales: spec.driver memory 4g -> 4g, memoryOverhead 409m -> 2688m (pod limit 6784Mi); the Spark operator runs it again", msg)
	got, err := c.Resource(spark.ApplicationResource).Namespace("spark-jobs").Get(ctx, "sales", metav1.GetOptions{})
	require.NoError(t, err)
	v, _, _ := unstructured.NestedString(got.Object, "spec", "driver", "memoryOverhead")
	assert.Equal(t, "2688m", v)

	_, err = PatchSparkMemory{Dynamic: newClient(sparkApp("3g"))}.Execute(ctx, sparkRequest("2688m"))
	var held *NoLongerHoldsError
	require.ErrorAs(t, err, &held)
	assert.Contains(t, err.Error(), "its driver already has memory 4g + memoryOverhead 3g (proposed 4g + 2688m)")

	replaced := sparkApp("")
	replaced.SetUID("uid-2")
	_, err = PatchSparkMemory{Dynamic: newClient(replaced)}.Execute(ctx, sparkRequest("2688m"))
	var changed *TargetChangedError
	require.ErrorAs(t, err, &changed)

	_, err = PatchSparkMemory{Dynamic: newClient()}.Execute(ctx, sparkRequest("2688m"))
	var gone *TargetGoneError
	require.ErrorAs(t, err, &gone)

	forbidden := newClient(sparkApp(""))
	forbidden.PrependReactor("patch", "sparkapplications", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(spark.ApplicationResource.GroupResource(), "sales", errors.New("RBAC: not allowed"))
	})
	_, err = PatchSparkMemory{Dynamic: forbidden}.Execute(ctx, sparkRequest("2688m"))
	assert.ErrorContains(t, err, "podmedic is not allowed to patch SparkApplications (the chart grants it with actions.patchSparkApplications)")

	_, err = p.Execute(ctx, &Request{Target: sparkRequest("1g").Target, Action: finding.Action{Params: map[string]string{"role": "worker"}}})
	assert.ErrorContains(t, err, `Spark role "worker" is neither driver nor executor`)
}

// TestPatchSparkMemoryStoresTheTasksOverride: for an application an Airflow task created, the
// approval also stores the task's override of the Spark role, for its next applications.
func TestPatchSparkMemoryStoresTheTasksOverride(t *testing.T) {
	ctx := context.Background()
	app := sparkApp("")
	require.NoError(t, unstructured.SetNestedStringMap(app.Object, map[string]string{"dag_id": "sales_daily", "task_id": "aggregate",
		"spark_kubernetes_operator": "True", "try_number": "1"}, "spec", "driver", "labels"))
	store := overrideStore(t)
	p := PatchSparkMemory{Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{spark.ApplicationResource: "SparkApplicationList"}, app), Overrides: &MemoryOverride{Store: store, Cluster: "prod-eu"}}
	r := sparkRequest("2688m")
	r.ApprovedBy = "U0ALICE"
	msg, err := p.Execute(ctx, r)
	require.NoError(t, err)
	id := overrides.Task{Cluster: "prod-eu", Namespace: "spark-jobs", DagID: "sales_daily", TaskID: "aggregate", Role: "driver"}.ID()
	assert.Contains(t, msg, "; memory override "+id+": the next applications of Airflow task sales_daily.aggregate run the driver with memory 4g, memoryOverhead 2688m until ")
	o, err := store.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, []string{"4g", "2688m", "6784Mi", "U0ALICE", "p-1"}, []string{o.Memory, o.MemoryOverhead, o.Limit, o.ApprovedBy, o.ProposalID})
}

// TestPatchSparkMemoryOfAScheduledRun: an application a ScheduledSparkApplication created is
// patched, and so is the schedule's template, for its next runs.
func TestPatchSparkMemoryOfAScheduledRun(t *testing.T) {
	ctx := context.Background()
	app := sparkApp("")
	app.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: "sparkoperator.k8s.io/v1beta2", Kind: "ScheduledSparkApplication",
		Name: "sales-nightly", UID: "uid-s", Controller: ptr(true)}})
	sched := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "ScheduledSparkApplication",
		"metadata": map[string]any{"name": "sales-nightly", "namespace": "spark-jobs", "uid": "uid-s"},
		"spec":     map[string]any{"schedule": "@daily", "template": map[string]any{"type": "Scala", "driver": map[string]any{"memory": "4g"}}},
	}}
	c := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		spark.ApplicationResource: "SparkApplicationList", spark.ScheduledApplicationResource: "ScheduledSparkApplicationList"}, app, sched)
	msg, err := PatchSparkMemory{Dynamic: c}.Execute(ctx, sparkRequest("2688m"))
	require.NoError(t, err)
	assert.Contains(t, msg, "; ScheduledSparkApplication spark-jobs/sales-nightly: spec.template.driver likewise, for its next runs")
	got, err := c.Resource(spark.ScheduledApplicationResource).Namespace("spark-jobs").Get(ctx, "sales-nightly", metav1.GetOptions{})
	require.NoError(t, err)
	v, _, _ := unstructured.NestedString(got.Object, "spec", "template", "driver", "memoryOverhead")
	assert.Equal(t, "2688m", v)
}
