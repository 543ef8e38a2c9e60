package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/spark"
)

// Workload kinds whose pod template a memory limit proposal patches. Bare pods, plain Jobs
// (their template is immutable) and other owners (a SparkApplication, ...) are advisory.
var patchableKinds = map[string]bool{
	"Deployment": true, "StatefulSet": true, "DaemonSet": true, "CronJob": true, "ReplicaSet": true,
}

// Patchable reports whether a memory limit proposal about target patches it (else it is
// advisory: the proposal carries the change for a human to make).
func Patchable(t finding.Target) bool { return patchableKinds[t.Kind] }

// ResolveWorkload finds the object whose pod template decides the pod's resources, following
// controller references through the API: a Deployment through its ReplicaSet, a CronJob
// through its Job, a StatefulSet or DaemonSet directly. A bare pod is its own target, as is a
// Job without a CronJob or an owner of another kind; those targets are advisory.
func ResolveWorkload(ctx context.Context, c kubernetes.Interface, f *finding.Finding) (finding.Target, error) {
	ns := f.Namespace
	pod := finding.Target{Kind: "Pod", Namespace: ns, Name: f.Pod, UID: f.UID}
	switch f.Owner.Kind {
	case "":
		return pod, nil
	case "ReplicaSet":
		rs, err := c.AppsV1().ReplicaSets(ns).Get(ctx, f.Owner.Name, metav1.GetOptions{})
		if err != nil {
			return finding.Target{}, lookupError("ReplicaSet", ns, f.Owner.Name, err)
		}
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" {
			d, err := c.AppsV1().Deployments(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				return finding.Target{}, lookupError("Deployment", ns, ref.Name, err)
			}
			return finding.Target{Kind: "Deployment", Namespace: ns, Name: d.Name, UID: string(d.UID)}, nil
		}
		return finding.Target{Kind: "ReplicaSet", Namespace: ns, Name: rs.Name, UID: string(rs.UID)}, nil
	case "StatefulSet":
		s, err := c.AppsV1().StatefulSets(ns).Get(ctx, f.Owner.Name, metav1.GetOptions{})
		if err != nil {
			return finding.Target{}, lookupError("StatefulSet", ns, f.Owner.Name, err)
		}
		return finding.Target{Kind: "StatefulSet", Namespace: ns, Name: s.Name, UID: string(s.UID)}, nil
	case "DaemonSet":
		d, err := c.AppsV1().DaemonSets(ns).Get(ctx, f.Owner.Name, metav1.GetOptions{})
		if err != nil {
			return finding.Target{}, lookupError("DaemonSet", ns, f.Owner.Name, err)
		}
		return finding.Target{Kind: "DaemonSet", Namespace: ns, Name: d.Name, UID: string(d.UID)}, nil
	case "Job":
		j, err := c.BatchV1().Jobs(ns).Get(ctx, f.Owner.Name, metav1.GetOptions{})
		if err != nil {
			return finding.Target{}, lookupError("Job", ns, f.Owner.Name, err)
		}
		if ref := metav1.GetControllerOf(j); ref != nil && ref.Kind == "CronJob" {
			cj, err := c.BatchV1().CronJobs(ns).Get(ctx, ref.Name, metav1.GetOptions{})
			if err != nil {
				return finding.Target{}, lookupError("CronJob", ns, ref.Name, err)
			}
			return finding.Target{Kind: "CronJob", Namespace: ns, Name: cj.Name, UID: string(cj.UID)}, nil
		}
		return finding.Target{Kind: "Job", Namespace: ns, Name: j.Name, UID: string(j.UID)}, nil
	}
	return finding.Target{Kind: f.Owner.Kind, Namespace: ns, Name: f.Owner.Name}, nil
}

func lookupError(kind, ns, name string, err error) error {
	if apierrors.IsNotFound(err) {
		return &TargetGoneError{Target: kind + " " + ns + "/" + name}
	}
	return fmt.Errorf("get %s %s/%s: %w", kind, ns, name, err)
}

// getWorkload fetches a patchable workload from the API.
func getWorkload(ctx context.Context, c kubernetes.Interface, t finding.Target) (runtime.Object, error) {
	var (
		obj runtime.Object
		err error
	)
	opts := metav1.GetOptions{}
	switch t.Kind {
	case "Deployment":
		obj, err = c.AppsV1().Deployments(t.Namespace).Get(ctx, t.Name, opts)
	case "StatefulSet":
		obj, err = c.AppsV1().StatefulSets(t.Namespace).Get(ctx, t.Name, opts)
	case "DaemonSet":
		obj, err = c.AppsV1().DaemonSets(t.Namespace).Get(ctx, t.Name, opts)
	case "ReplicaSet":
		obj, err = c.AppsV1().ReplicaSets(t.Namespace).Get(ctx, t.Name, opts)
	case "CronJob":
		obj, err = c.BatchV1().CronJobs(t.Namespace).Get(ctx, t.Name, opts)
	default:
		return nil, fmt.Errorf("%s is not a workload podmedic patches", t)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &TargetGoneError{Target: t.String()}
		}
		return nil, fmt.Errorf("get %s: %w", t, err)
	}
	return obj, nil
}

// podTemplate returns the pod template of a workload and the JSON path to it.
func podTemplate(obj runtime.Object) (*corev1.PodTemplateSpec, []string) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template, []string{"spec", "template"}
	case *appsv1.StatefulSet:
		return &o.Spec.Template, []string{"spec", "template"}
	case *appsv1.DaemonSet:
		return &o.Spec.Template, []string{"spec", "template"}
	case *appsv1.ReplicaSet:
		return &o.Spec.Template, []string{"spec", "template"}
	case *batchv1.CronJob:
		return &o.Spec.JobTemplate.Spec.Template, []string{"spec", "jobTemplate", "spec", "template"}
	}
	return nil, nil
}

// templateContainer finds a container (or init container) in a pod template; list is
// "containers" or "initContainers".
func templateContainer(t *corev1.PodTemplateSpec, name string) (*corev1.Container, string) {
	for i := range t.Spec.Containers {
		if t.Spec.Containers[i].Name == name {
			return &t.Spec.Containers[i], "containers"
		}
	}
	for i := range t.Spec.InitContainers {
		if t.Spec.InitContainers[i].Name == name {
			return &t.Spec.InitContainers[i], "initContainers"
		}
	}
	return nil, ""
}

// memoryParams reads a proposal's container, limit and request.
func memoryParams(a finding.Action) (container string, limit, request resource.Quantity, err error) {
	container = a.Params["container"]
	if container == "" {
		return "", limit, request, fmt.Errorf("propose-memory-limit: no container in params")
	}
	if limit, err = resource.ParseQuantity(a.Params["limit"]); err != nil {
		return "", limit, request, fmt.Errorf("propose-memory-limit: limit %q: %w", a.Params["limit"], err)
	}
	if request, err = resource.ParseQuantity(a.Params["request"]); err != nil {
		return "", limit, request, fmt.Errorf("propose-memory-limit: request %q: %w", a.Params["request"], err)
	}
	return container, limit, request, nil
}

// verifyWorkload checks that a workload about to be patched is still the one proposed and
// still needs the change: same UID, the container still there, its limit below the proposed one.
func verifyWorkload(ctx context.Context, c kubernetes.Interface, r *Request) error {
	obj, err := getWorkload(ctx, c, r.Target)
	if err != nil {
		return err
	}
	m, _ := metaOf(obj)
	if r.Target.UID != "" && string(m.GetUID()) != r.Target.UID {
		return &TargetChangedError{Target: r.Target.String(), What: fmt.Sprintf("was replaced (uid %s -> %s)", r.Target.UID, m.GetUID())}
	}
	if m.GetDeletionTimestamp() != nil {
		return &TargetGoneError{Target: r.Target.String() + " (being deleted)"}
	}
	name, limit, _, err := memoryParams(r.Action)
	if err != nil {
		return err
	}
	tmpl, _ := podTemplate(obj)
	ct, _ := templateContainer(tmpl, name)
	if ct == nil {
		return &TargetChangedError{Target: r.Target.String(), What: "has no container " + name + " in its pod template anymore"}
	}
	if cur, ok := ct.Resources.Limits[corev1.ResourceMemory]; ok && cur.Cmp(limit) >= 0 {
		return &NoLongerHoldsError{Target: r.Target.String(),
			Why: fmt.Sprintf("the memory limit of container %s is already %s (proposed %s)", name, cur.String(), limit.String())}
	}
	r.Workload = obj
	return nil
}

// PatchMemoryLimit applies an approved memory limit proposal: a strategic-merge patch of the
// owning workload's pod template that sets the container's memory limit and request (the
// container list merges by name, so nothing else changes). The patch carries the workload's
// UID, so the API server refuses it for a workload replaced since the proposal. The workload
// rolls out new pods as it always does; running pods are not touched.
type PatchMemoryLimit struct {
	Client kubernetes.Interface
}

var (
	_ Executor  = PatchMemoryLimit{}
	_ Describer = PatchMemoryLimit{}
)

// Execute implements Executor.
func (p PatchMemoryLimit) Execute(ctx context.Context, r *Request) (string, error) {
	if r.Workload == nil {
		return "", fmt.Errorf("propose-memory-limit: %s was not verified", r.Target)
	}
	name, limit, request, err := memoryParams(r.Action)
	if err != nil {
		return "", err
	}
	tmpl, path := podTemplate(r.Workload)
	if tmpl == nil {
		return "", fmt.Errorf("%s is not a workload podmedic patches", r.Target)
	}
	_, list := templateContainer(tmpl, name)
	if list == "" {
		return "", &TargetChangedError{Target: r.Target.String(), What: "has no container " + name + " in its pod template anymore"}
	}
	patch, err := templatePatch(r.Target.UID, path, list, name, limit, request)
	if err != nil {
		return "", err
	}
	ns, n := r.Target.Namespace, r.Target.Name
	opts := metav1.PatchOptions{FieldManager: "podmedic"}
	switch r.Target.Kind {
	case "Deployment":
		_, err = p.Client.AppsV1().Deployments(ns).Patch(ctx, n, types.StrategicMergePatchType, patch, opts)
	case "StatefulSet":
		_, err = p.Client.AppsV1().StatefulSets(ns).Patch(ctx, n, types.StrategicMergePatchType, patch, opts)
	case "DaemonSet":
		_, err = p.Client.AppsV1().DaemonSets(ns).Patch(ctx, n, types.StrategicMergePatchType, patch, opts)
	case "ReplicaSet":
		_, err = p.Client.AppsV1().ReplicaSets(ns).Patch(ctx, n, types.StrategicMergePatchType, patch, opts)
	case "CronJob":
		_, err = p.Client.BatchV1().CronJobs(ns).Patch(ctx, n, types.StrategicMergePatchType, patch, opts)
	default:
		return "", fmt.Errorf("%s is not a workload podmedic patches", r.Target)
	}
	switch {
	case apierrors.IsNotFound(err):
		return "", &TargetGoneError{Target: r.Target.String()}
	case apierrors.IsConflict(err), apierrors.IsInvalid(err) && strings.Contains(err.Error(), "metadata.uid"):
		// A replaced workload: the patch's uid no longer matches (the API reports the
		// immutable field).
		return "", &TargetChangedError{Target: r.Target.String(), What: "changed since it was verified (" + err.Error() + ")"}
	case err != nil:
		return "", fmt.Errorf("patch %s: %w", r.Target, err)
	}
	return fmt.Sprintf("%s patched: container %s memory limit %s, request %s (new pods get them)",
		r.Target, name, limit.String(), request.String()), nil
}

// Advises implements Adviser: a target that is not a workload's pod template (a bare pod, a
// plain Job) is not patched.
func (PatchMemoryLimit) Advises(r *Request) bool { return !Patchable(r.Target) }

// Describe implements Describer.
func (p PatchMemoryLimit) Describe(r *Request) string {
	return fmt.Sprintf("patch %s: container %s memory limit %s, request %s",
		r.Target, r.Action.Params["container"], r.Action.Params["limit"], r.Action.Params["request"])
}

// templatePatch is the strategic-merge patch that sets one container's memory limit and
// request in the pod template at path, with the workload's UID as a precondition.
func templatePatch(uid string, path []string, list, container string, limit, request resource.Quantity) ([]byte, error) {
	var tmpl any = map[string]any{"spec": map[string]any{list: []any{map[string]any{
		"name": container,
		"resources": map[string]any{
			"limits":   map[string]any{"memory": limit.String()},
			"requests": map[string]any{"memory": request.String()},
		},
	}}}}
	for i := len(path) - 1; i >= 0; i-- {
		tmpl = map[string]any{path[i]: tmpl}
	}
	root := tmpl.(map[string]any)
	if uid != "" {
		root["metadata"] = map[string]any{"uid": uid}
	}
	return json.Marshal(root)
}

// MemoryAdvice is the change a human makes for an advisory memory limit proposal (a bare
// pod, a Job, an owner podmedic does not patch): for an Airflow task, the executor_config
// pod_override of the task; otherwise the resources of the pod template.
func MemoryAdvice(f *finding.Finding, a finding.Action, t finding.Target) string {
	c, l, r := a.Params["container"], a.Params["limit"], a.Params["request"]
	if a.Params["target"] == spark.KindApplication {
		// The operator sizes the pods from these settings (limit = memory + memoryOverhead),
		// not from pod resources; on a spec change it resubmits the application (its state
		// becomes INVALIDATING, then it runs again: spark-operator's event filter).
		role := a.Params["role"]
		return fmt.Sprintf(`Set in SparkApplication %s/%s (the pod's limit becomes %s):

spec:
  %s:
    memory: %s
    memoryOverhead: %s

The Spark operator resubmits an application whose spec changes. For an application that Airflow's SparkKubernetesOperator creates at each run, change its application file (or template_spec) instead.`,
			f.Namespace, f.Owner.Name, l, role, a.Params["memory"], a.Params["memoryOverhead"])
	}
	if f.Airflow != nil {
		return fmt.Sprintf(`Raise the memory of task %s.%s in the DAG (KubernetesExecutor), then clear the task:

from kubernetes.client import models as k8s

executor_config={
    "pod_override": k8s.V1Pod(
        spec=k8s.V1PodSpec(
            containers=[
                k8s.V1Container(
                    name=%q,
                    resources=k8s.V1ResourceRequirements(
                        requests={"memory": %q},
                        limits={"memory": %q},
                    ),
                )
            ]
        )
    )
}`, f.Airflow.DagID, f.Airflow.TaskID, c, r, l)
	}
	var where string
	switch t.Kind {
	case "Pod":
		where = "the pod's spec (its creator's pod template; a bare pod is not recreated by Kubernetes)"
	case "Job":
		where = "the Job's spec.template (immutable: change the manifest that creates the Job)"
	default:
		where = fmt.Sprintf("the pod template of %s", t)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Set in %s:\n\n", where)
	fmt.Fprintf(&b, "containers:\n- name: %s\n  resources:\n    limits:\n      memory: %s\n    requests:\n      memory: %s", c, l, r)
	return b.String()
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	if m, ok := obj.(metav1.Object); ok {
		return m, nil
	}
	return nil, fmt.Errorf("%T has no object metadata", obj)
}
