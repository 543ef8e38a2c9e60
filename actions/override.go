package actions

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/podmedic/podmedic/airflow"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/overrides"
)

// OverrideStore stores memory overrides (overrides.Store implements it).
type OverrideStore interface {
	Put(ctx context.Context, o *overrides.Override) (*overrides.Override, error)
}

// Overridable reports whether a memory proposal is for an Airflow task's worker pod (a bare
// pod no template patch can reach): approved, it becomes a memory override that the admission
// webhook applies to the pods of the task's next tries.
func Overridable(f *finding.Finding, t finding.Target) bool {
	return t.Kind == "Pod" && f != nil && f.Airflow != nil && f.Airflow.DagID != "" && f.Airflow.TaskID != ""
}

// MemoryOverride stores the memory override of an approved memory proposal for an Airflow
// task: (cluster, namespace, dag_id, task_id, container) -> the proposal's limit and request,
// for TTL.
type MemoryOverride struct {
	Store   OverrideStore
	Cluster string
	TTL     time.Duration // default overrides.DefaultTTL
	Now     func() time.Time
	// Airflow, when set, makes the task run again: its state is read from Airflow's API and
	// a failed task is cleared (the next try then runs with the override).
	Airflow *airflow.Client
	// MaxLimit returns the max_limit in force of the rule named (false: unknown), kept in
	// the override: the webhook never sets more.
	MaxLimit func(rule string) (resource.Quantity, bool)
}

func (m MemoryOverride) ttl() time.Duration {
	if m.TTL > 0 {
		return m.TTL
	}
	return overrides.DefaultTTL
}

func (m MemoryOverride) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// put stores o; an audit record that could not be written does not undo the change: it is
// said in the returned note (" (…)"), and the error is nil.
func (m MemoryOverride) put(ctx context.Context, o *overrides.Override) (*overrides.Override, string, error) {
	stored, err := m.Store.Put(ctx, o)
	if errors.Is(err, overrides.ErrAudit) && stored != nil {
		return stored, " (" + err.Error() + ")", nil // stored: the action is taken
	}
	return stored, "", err
}

// override is the override r makes.
func (m MemoryOverride) override(r *Request) (*overrides.Override, error) {
	f := r.Finding
	if !Overridable(f, r.Target) {
		return nil, fmt.Errorf("%s is not an Airflow task's worker pod: no memory override", r.Target)
	}
	name, limit, request, err := memoryParams(r.Action)
	if err != nil {
		return nil, err
	}
	now := m.now()
	tk := overrides.Task{Cluster: m.Cluster, Namespace: f.Namespace, DagID: f.Airflow.DagID, TaskID: f.Airflow.TaskID, Container: name}
	o := &overrides.Override{ID: tk.ID(), Task: tk, Limit: limit.String(), Rule: f.Rule, Pod: f.Pod, ProposalID: r.ID, ApprovedBy: r.ApprovedBy,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(m.ttl())}
	if m.MaxLimit != nil {
		if q, ok := m.MaxLimit(f.Rule); ok {
			o.MaxLimit = q.String()
		}
	}
	if !request.IsZero() {
		o.Request = request.String()
	}
	return o, nil
}

// Execute implements Executor.
func (m MemoryOverride) Execute(ctx context.Context, r *Request) (string, error) {
	o, err := m.override(r)
	if err != nil {
		return "", err
	}
	stored, auditNote, err := m.put(ctx, o)
	if err != nil {
		return "", err
	}
	s := fmt.Sprintf("memory override %s: the next tries of Airflow task %s.%s run container %s with limit %s",
		stored.ID, stored.Task.DagID, stored.Task.TaskID, stored.Task.Container, stored.Limit)
	if stored.Request != "" {
		s += ", request " + stored.Request
	}
	s += " until " + stored.ExpiresAt.UTC().Format(time.DateOnly)
	if stored.Limit != o.Limit {
		s += fmt.Sprintf(" (kept: an earlier override asks for more than %s)", o.Limit)
	}
	s += auditNote
	if m.Airflow != nil {
		s += "; " + m.rerun(ctx, r)
	}
	return s, nil
}

// rerun makes the task run again with the override, by its state in Airflow: a failed task is
// cleared; one that will retry (or runs) gets the override at its next try; a task that
// succeeded meanwhile needs nothing. It says what it found and did; a failure to read or
// clear is said too (the override stays).
func (m MemoryOverride) rerun(ctx context.Context, r *Request) string {
	t := r.Finding.Airflow
	params, err := airflow.ClearParams(t, m.Airflow.Version(), true)
	if err != nil {
		return "the task's run is unknown (" + err.Error() + "): clear the task if Airflow does not retry it"
	}
	clear := finding.Action{Type: finding.ActionAirflowClearTask, Mode: r.Action.Mode, Params: params}
	c := readClearParams(clear)
	if _, err := c.resolveRun(ctx, m.Airflow); err != nil {
		return "the task's run is unknown (" + err.Error() + "): clear the task if Airflow does not retry it"
	}
	params["dag_run_id"] = c.run // looked up once, not again by the clear
	ti, err := m.Airflow.GetTaskInstance(ctx, t.DagID, c.run, t.TaskID, t.MapIndex)
	if err != nil {
		return "the task's state is unknown (" + err.Error() + "): clear the task if Airflow does not retry it"
	}
	switch st := ti.StateName(); st {
	case "failed", "upstream_failed":
		msg, err := AirflowClearTask{Client: m.Airflow}.Execute(ctx, &Request{ID: r.ID, Finding: r.Finding, ApprovedBy: r.ApprovedBy, Action: clear})
		if err != nil {
			return "the task failed and clearing it failed (" + err.Error() + "): clear it by hand"
		}
		return "the task had failed: " + msg
	case "success":
		return "the task succeeded meanwhile: the override applies to its later runs"
	default:
		return "the task is " + st + ": its next try gets the override"
	}
}

// Describe implements Describer.
func (m MemoryOverride) Describe(r *Request) string {
	o, err := m.override(r)
	if err != nil {
		return err.Error()
	}
	s := fmt.Sprintf("store a memory override: the next tries of Airflow task %s.%s run container %s with limit %s",
		o.Task.DagID, o.Task.TaskID, o.Task.Container, o.Limit)
	if o.Request != "" {
		s += ", request " + o.Request
	}
	return s + fmt.Sprintf(" for %s (applied to new pods by the admission webhook)", shortDuration(m.ttl()))
}

func shortDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// MemoryLimit executes propose-memory-limit: a patch of the owning workload's pod template;
// for an Airflow task's worker pod, a memory override (when Override is set); for a Spark
// driver or executor, a patch of its SparkApplication (when Spark is set).
type MemoryLimit struct {
	Patch    PatchMemoryLimit
	Override *MemoryOverride
	Spark    *PatchSparkMemory
}

var (
	_ Executor  = MemoryLimit{}
	_ Describer = MemoryLimit{}
)

// Execute implements Executor.
func (m MemoryLimit) Execute(ctx context.Context, r *Request) (string, error) {
	switch {
	case m.Spark != nil && SparkPatchable(r):
		return m.Spark.Execute(ctx, r)
	case !Patchable(r.Target) && m.Override != nil && Overridable(r.Finding, r.Target):
		return m.Override.Execute(ctx, r)
	}
	return m.Patch.Execute(ctx, r)
}

// Advises implements Adviser: a memory proposal for a target that none of the executors
// changes.
func (m MemoryLimit) Advises(r *Request) bool {
	return m.Patch.Advises(r) && !(m.Override != nil && Overridable(r.Finding, r.Target)) && !(m.Spark != nil && SparkPatchable(r))
}

// Describe implements Describer.
func (m MemoryLimit) Describe(r *Request) string {
	switch {
	case m.Spark != nil && SparkPatchable(r):
		return m.Spark.Describe(r)
	case !Patchable(r.Target) && m.Override != nil && Overridable(r.Finding, r.Target):
		return m.Override.Describe(r)
	}
	return m.Patch.Describe(r)
}

// Ref implements Referrer: the id of the override an overridable request stores.
func (m MemoryLimit) Ref(r *Request) string {
	if Patchable(r.Target) || m.Override == nil || !Overridable(r.Finding, r.Target) {
		return ""
	}
	o, err := m.Override.override(r)
	if err != nil {
		return ""
	}
	return o.ID
}
