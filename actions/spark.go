package actions

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/overrides"
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
//
// When an Airflow task created the application (SparkKubernetesOperator's task context
// labels) and Overrides is set, the approval also stores a memory override of the task's
// Spark role: Airflow creates a new application at each run, and the admission webhook
// gives those the same settings (POST /mutate/sparkapplications).
type PatchSparkMemory struct {
	Dynamic dynamic.Interface
	// Overrides stores the task's override (its Store, Cluster, TTL and clock); nil: none.
	Overrides *MemoryOverride
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
	if apierrors.IsForbidden(err) {
		return "", fmt.Errorf("patch %s: podmedic is not allowed to patch SparkApplications (the chart grants it with actions.patchSparkApplications): %w", r.Target, err)
	}
	if err != nil {
		return "", fmt.Errorf("patch %s: %w", r.Target, err)
	}
	msg := fmt.Sprintf("%s: spec.%s memory %s -> %s, memoryOverhead %s -> %s (pod limit %s); the Spark operator runs it again",
		r.Target, role, spark.FormatMemory(cur.Memory), spark.FormatMemory(memory), spark.FormatMemory(cur.Overhead), spark.FormatMemory(overhead),
		resource.NewQuantity(memory+overhead, resource.BinarySI).String())
	return msg + p.schedule(ctx, app, role, memory, overhead) + p.override(ctx, r, app, role, memory, overhead), nil
}

// schedule patches the template of the ScheduledSparkApplication that created app, if one
// did, so that its next runs get the same settings, and says so ("" when none did).
func (p PatchSparkMemory) schedule(ctx context.Context, app *spark.Application, role string, memory, overhead int64) string {
	ref := metav1.GetControllerOf(app)
	if ref == nil || ref.Kind != spark.KindScheduledApplication {
		return ""
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"uid": string(ref.UID)},
		"spec": map[string]any{"template": map[string]any{role: map[string]any{
			"memory": spark.FormatMemory(memory), "memoryOverhead": spark.FormatMemory(overhead)}}},
	})
	if err != nil {
		return ""
	}
	_, err = p.Dynamic.Resource(spark.ScheduledApplicationResource).Namespace(app.Namespace).
		Patch(ctx, ref.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "podmedic"})
	if err != nil {
		return fmt.Sprintf("; its ScheduledSparkApplication %s was not patched (%v): its next runs keep their settings", ref.Name, err)
	}
	return fmt.Sprintf("; ScheduledSparkApplication %s/%s: spec.template.%s likewise, for its next runs", app.Namespace, ref.Name, role)
}

// override stores the override of the Airflow task that created app, for its next
// applications, and says so ("" when there is none to store).
func (p PatchSparkMemory) override(ctx context.Context, r *Request, app *spark.Application, role string, memory, overhead int64) string {
	l := app.AirflowLabels()
	if p.Overrides == nil || l == nil {
		return ""
	}
	m := p.Overrides
	now := m.now()
	tk := overrides.Task{Cluster: m.Cluster, Namespace: app.Namespace, DagID: l["dag_id"], TaskID: l["task_id"], Role: role}
	o := &overrides.Override{ID: tk.ID(), Task: tk, Limit: resource.NewQuantity(memory+overhead, resource.BinarySI).String(),
		Memory: spark.FormatMemory(memory), MemoryOverhead: spark.FormatMemory(overhead), ProposalID: r.ID, ApprovedBy: r.ApprovedBy,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(m.ttl())}
	if r.Finding != nil {
		o.Rule, o.Pod = r.Finding.Rule, r.Finding.Pod
	}
	stored, auditNote, err := m.put(ctx, o)
	if err != nil {
		return "; storing the memory override of Airflow task " + tk.DagID + "." + tk.TaskID + " failed (" + err.Error() + "): its next applications keep their settings"
	}
	return fmt.Sprintf("; memory override %s: the next applications of Airflow task %s.%s run the %s with memory %s, memoryOverhead %s until %s%s",
		stored.ID, tk.DagID, tk.TaskID, role, stored.Memory, stored.MemoryOverhead, stored.ExpiresAt.UTC().Format(time.DateOnly), auditNote)
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
