package actions

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podmedic/podmedic/finding"
)

func ctrl(kind, name, uid string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{Kind: kind, Name: name, UID: types.UID(uid), Controller: ptr(true)}}
}

func TestResolveWorkload(t *testing.T) {
	objs := []runtime.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "api", UID: "d1"}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "api-7f", UID: "rs1", OwnerReferences: ctrl("Deployment", "api", "d1")}},
		&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lonely", UID: "rs2"}},
		&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pg", UID: "s1"}},
		&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "agent", UID: "ds1"}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "nightly", UID: "cj1"}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "nightly-2911", UID: "j1", OwnerReferences: ctrl("CronJob", "nightly", "cj1")}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "backfill", UID: "j2"}},
	}
	c := fakeCluster(false, objs...)
	tests := []struct {
		owner     finding.Owner
		want      finding.Target
		patchable bool
		wantErr   error
	}{
		{owner: finding.Owner{}, want: finding.Target{Kind: "Pod", Namespace: "ns", Name: "p", UID: "pod-uid"}},
		{owner: finding.Owner{Kind: "ReplicaSet", Name: "api-7f"}, want: finding.Target{Kind: "Deployment", Namespace: "ns", Name: "api", UID: "d1"}, patchable: true},
		{owner: finding.Owner{Kind: "ReplicaSet", Name: "lonely"}, want: finding.Target{Kind: "ReplicaSet", Namespace: "ns", Name: "lonely", UID: "rs2"}, patchable: true},
		{owner: finding.Owner{Kind: "StatefulSet", Name: "pg"}, want: finding.Target{Kind: "StatefulSet", Namespace: "ns", Name: "pg", UID: "s1"}, patchable: true},
		{owner: finding.Owner{Kind: "DaemonSet", Name: "agent"}, want: finding.Target{Kind: "DaemonSet", Namespace: "ns", Name: "agent", UID: "ds1"}, patchable: true},
		{owner: finding.Owner{Kind: "Job", Name: "nightly-2911"}, want: finding.Target{Kind: "CronJob", Namespace: "ns", Name: "nightly", UID: "cj1"}, patchable: true},
		{owner: finding.Owner{Kind: "Job", Name: "backfill"}, want: finding.Target{Kind: "Job", Namespace: "ns", Name: "backfill", UID: "j2"}},
		{owner: finding.Owner{Kind: "SparkApplication", Name: "agg"}, want: finding.Target{Kind: "SparkApplication", Namespace: "ns", Name: "agg"}},
		{owner: finding.Owner{Kind: "ReplicaSet", Name: "gone"}, wantErr: ErrTargetGone},
	}
	for _, tt := range tests {
		t.Run(tt.owner.Kind+"/"+tt.owner.Name, func(t *testing.T) {
			got, err := ResolveWorkload(context.Background(), c, &finding.Finding{Namespace: "ns", Pod: "p", UID: "pod-uid", Owner: tt.owner})
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.patchable, Patchable(got))
		})
	}
}

func TestTemplatePatch(t *testing.T) {
	b, err := templatePatch("d1", []string{"spec", "template"}, "containers", "base", resource.MustParse("3Gi"), resource.MustParse("2Gi"))
	require.NoError(t, err)
	require.JSONEq(t, `{"metadata":{"uid":"d1"},"spec":{"template":{"spec":{"containers":[
		{"name":"base","resources":{"limits":{"memory":"3Gi"},"requests":{"memory":"2Gi"}}}]}}}}`, string(b))
	b, err = templatePatch("cj1", []string{"spec", "jobTemplate", "spec", "template"}, "initContainers", "fetch",
		resource.MustParse("2176Mi"), resource.MustParse("1536Mi"))
	require.NoError(t, err)
	require.JSONEq(t, `{"metadata":{"uid":"cj1"},"spec":{"jobTemplate":{"spec":{"template":{"spec":{"initContainers":[
		{"name":"fetch","resources":{"limits":{"memory":"2176Mi"},"requests":{"memory":"1536Mi"}}}]}}}}}}`, string(b))
}

// TestPatchMemoryLimitCronJob: a CronJob's job template is patched, an init container in its
// own list.
func TestPatchMemoryLimitCronJob(t *testing.T) {
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "nightly", UID: "cj1"},
		Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "fetch", Resources: corev1.ResourceRequirements{
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}}},
				Containers: []corev1.Container{{Name: "main"}}}}}}}}
	c := fakeCluster(false, cj)
	r := &Request{ID: "x", Target: finding.Target{Kind: "CronJob", Namespace: "ns", Name: "nightly", UID: "cj1"},
		Action: finding.Action{Type: finding.ActionProposeMemoryLimit, Params: map[string]string{"container": "fetch", "limit": "1536Mi", "request": "1Gi"}}}
	require.NoError(t, verifyWorkload(context.Background(), c, r))
	msg, err := PatchMemoryLimit{Client: c}.Execute(context.Background(), r)
	require.NoError(t, err)
	require.Equal(t, "CronJob ns/nightly patched: container fetch memory limit 1536Mi, request 1Gi (new pods get them)", msg)
	got, err := c.BatchV1().CronJobs("ns").Get(context.Background(), "nightly", metav1.GetOptions{})
	require.NoError(t, err)
	spec := got.Spec.JobTemplate.Spec.Template.Spec
	require.Len(t, spec.InitContainers, 1)
	require.Equal(t, "1536Mi", ptr(spec.InitContainers[0].Resources.Limits[corev1.ResourceMemory]).String())
	require.Equal(t, "1Gi", ptr(spec.InitContainers[0].Resources.Requests[corev1.ResourceMemory]).String())
	require.Empty(t, spec.Containers[0].Resources.Limits)

	// Replaced since the proposal (another UID): refused before patching.
	r.Target.UID = "old"
	require.ErrorIs(t, verifyWorkload(context.Background(), c, r), ErrTargetChanged)
}

func TestMemoryAdviceTemplate(t *testing.T) {
	a := finding.Action{Params: map[string]string{"container": "main", "limit": "3Gi", "request": "2Gi"}}
	got := MemoryAdvice(&finding.Finding{}, a, finding.Target{Kind: "Job", Namespace: "ns", Name: "backfill"})
	require.Equal(t, `Set in the Job's spec.template (immutable: change the manifest that creates the Job):

containers:
- name: main
  resources:
    limits:
      memory: 3Gi
    requests:
      memory: 2Gi`, got)
}

// TestSparkMemoryAdvice: the advice for a Spark driver is the SparkApplication's settings in
// Spark's units, not pod resources (the operator sizes the pods from them).
func TestSparkMemoryAdvice(t *testing.T) {
	f := &finding.Finding{Kind: finding.OOMKilled, Namespace: "spark-jobs", Pod: "sales-driver", Container: "spark-kubernetes-driver",
		Owner: finding.Owner{Kind: "SparkApplication", Name: "sales-daily-aggregate-20261120"}}
	a := finding.Action{Type: finding.ActionProposeMemoryLimit, Params: map[string]string{"container": "spark-kubernetes-driver",
		"limit": "6784Mi", "request": "6784Mi", "target": "SparkApplication", "role": "driver", "memory": "4g", "memoryOverhead": "2688m"}}
	got := MemoryAdvice(f, a, finding.Target{Kind: "SparkApplication", Namespace: "spark-jobs", Name: "sales-daily-aggregate-20261120"})
	assert.Contains(t, got, "Set in SparkApplication spark-jobs/sales-daily-aggregate-20261120 (the pod's limit becomes 6784Mi):\n\nspec:\n  driver:\n    memory: 4g\n    memoryOverhead: 2688m\n")
	assert.NotContains(t, got, "resources:")
}
