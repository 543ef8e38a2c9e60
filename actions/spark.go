package actions

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/spark"
)

// SparkPatchable reports whether a memory proposal is in a SparkApplication's settings (the
// rules planned it so: params target=SparkApplication).
func SparkPatchable(r *Request) bool {
	return r.Target.Kind == spark.KindApplication && r.Action.Params["target"] == spark.KindApplication
}

// PatchSparkMemory applies an approved memory proposal for a Spark driver or executor: a merge
// patch of the SparkApplication's spec.<role>.memory and memoryOverhead, carrying the
// resourceVersion it verified against (the API server refuses the patch of an application
// changed meanwhile) and its UID. The Spark operator, seeing the spec change, invalidates the
// application and runs it again (spark-operator's event filter sets INVALIDATING on a spec
// change), so no separate resubmission is needed.
type PatchSparkMemory struct {
	Dynamic dynamic.Interface
}

var (
	_ Executor  = PatchSparkMemory{}
	_ Describer = PatchSparkMemory{}
)

// sparkParams reads role, memory and memoryOverhead from the action's params.
func sparkParams(a finding.Action) (role string, memory, overhead int64, err error) {
	role = a.Params["role"]
	if role != "driver" && role != "executor" {
		return "", 0, 0, fmt.Errorf("propose-memory-limit: Spark role %q is neither driver nor executor", role)
	}
	if memory, err = spark.ParseMemory(a.Params["memory"]); err != nil {
		return "", 0, 0, fmt.Errorf("propose-memory-limit: %w", err)
	}
	if overhead, err = spark.ParseMemory(a.Params["memoryOverhead"]); err != nil {
		return "", 0, 0, fmt.Errorf("propose-memory-limit: memoryOverhead: %w", err)
	}
	return role, memory, overhead, nil
}

// Execute implements Executor.
func (p PatchSparkMemory) Execute(ctx context.Context, r *Request) (string, error) {
	role, memory, overhead, err := sparkParams(r.Action)
	if err != nil {
		return "", err
	}
	res := p.Dynamic.Resource(spark.ApplicationResource).Namespace(r.Target.Namespace)
	u, err := res.Get(ctx, r.Target.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", &TargetGoneError{Target: r.Target.String()}
	}
	if err != nil {
		return "", fmt.Errorf("get %s: %w", r.Target, err)
	}
	raw, err := json.Marshal(u.Object)
	if err != nil {
		return "", err
	}
	app, err := spark.Decode(raw)
	if err != nil {
		return "", err
	}
	if r.Target.UID != "" && string(app.UID) != r.Target.UID {
		return "", &TargetChangedError{Target: r.Target.String(), What: fmt.Sprintf("was replaced (uid %s -> %s)", r.Target.UID, app.UID)}
	}
	if app.DeletionTimestamp != nil {
		return "", &TargetGoneError{Target: r.Target.String() + " (being deleted)"}
	}
	cur, err := app.MemoryOf(role)
	if err != nil {
		return "", err
	}
	if cur.Memory+cur.Overhead >= memory+overhead {
		return "", &NoLongerHoldsError{Target: r.Target.String(),
			Why: fmt.Sprintf("its %s already has memory %s + memoryOverhead %s (proposed %s + %s)", role,
				spark.FormatMemory(cur.Memory), spark.FormatMemory(cur.Overhead), spark.FormatMemory(memory), spark.FormatMemory(overhead))}
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": string(app.UID), "resourceVersion": app.ResourceVersion},
		"spec":     map[string]any{role: map[string]any{"memory": spark.FormatMemory(memory), "memoryOverhead": spark.FormatMemory(overhead)}},
	})
	if err != nil {
		return "", err
	}
	_, err = res.Patch(ctx, r.Target.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "podmedic"})
	if apierrors.IsConflict(err) {
		return "", &TargetChangedError{Target: r.Target.String(), What: "changed since it was read (resourceVersion " + app.ResourceVersion + ")"}
	}
	if err != nil {
		return "", fmt.Errorf("patch %s: %w", r.Target, err)
	}
	return fmt.Sprintf("%s: spec.%s memory %s -> %s, memoryOverhead %s -> %s (pod limit %s); the Spark operator runs it again",
		r.Target, role, spark.FormatMemory(cur.Memory), spark.FormatMemory(memory), spark.FormatMemory(cur.Overhead), spark.FormatMemory(overhead),
		resource.NewQuantity(memory+overhead, resource.BinarySI).String()), nil
}

// Describe implements Describer.
func (p PatchSparkMemory) Describe(r *Request) string {
	role, memory, overhead, err := sparkParams(r.Action)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("patch %s: spec.%s memory %s, memoryOverhead %s (the Spark operator then runs it again)",
		r.Target, role, spark.FormatMemory(memory), spark.FormatMemory(overhead))
}
