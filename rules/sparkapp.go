package rules

import (
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/spark"
)

// The Spark containers of the driver and executor pods (spark-submit names them so).
const (
	driverContainer   = "spark-kubernetes-driver"
	executorContainer = "spark-kubernetes-executor"
)

// sparkContainer is the Spark container of a role's pods; "" for another role.
func sparkContainer(role string) string {
	switch role {
	case "driver":
		return driverContainer
	case "executor":
		return executorContainer
	}
	return ""
}

// appUnknown says that the SparkApplication a pod belongs to is not in the view.
const appUnknown = "SparkApplication %s is not known (its CRD not installed or not watched)"

// ownerApp is the SparkApplication that owns f's pod, as the view knows it, or nil.
func ownerApp(v View, f *finding.Finding) *spark.Application {
	if v == nil || f.Owner.Kind != spark.KindApplication {
		return nil
	}
	return v.SparkApp(f.Namespace, f.Owner.Name)
}

// SparkAppFailedPlugin detects SparkApplications whose run FAILED or SUBMISSION_FAILED: one
// finding per run of the application (its submission id), with the operator's error message,
// the attempts, the driver pod's termination and the executors' states, and the Airflow task
// that created it.
func SparkAppFailedPlugin() Plugin {
	return Plugin{
		Kind: finding.SparkAppFailed,
		Summary: func(f *finding.Finding, r finding.SummaryRefs) string {
			state := "failed"
			switch {
			case f.Spark != nil && f.Spark.Schedule:
				return "ScheduledSparkApplication " + r.Object + " failed validation: it creates no runs."
			case f.Spark != nil && f.Spark.State == string(spark.StateSubmissionFailed):
				state = "could not be submitted"
			}
			return "SparkApplication " + r.Object + " " + state + "."
		},
		Object: config.ObjectSparkApp,
		New:    func(config.Args) Detector { return SparkAppFailedDetector{} },
	}
}

// SparkAppFailedDetector is the SparkAppFailed detector.
type SparkAppFailedDetector struct{}

var _ Detector = SparkAppFailedDetector{}

// Detect implements Detector.
func (SparkAppFailedDetector) Detect(in Input) []finding.Finding {
	if in.Schedule != nil {
		return invalidSchedule(in.Schedule)
	}
	app := in.App
	if app == nil || !app.Failed() || app.DeletionTimestamp != nil {
		return nil
	}
	st := app.Status
	attempts := int(st.ExecutionAttempts)
	what := "execution"
	if st.AppState.State == spark.StateSubmissionFailed {
		attempts, what = int(st.SubmissionAttempts), "submission"
	}
	f := finding.Finding{Kind: finding.SparkAppFailed, Namespace: app.Namespace, UID: string(app.UID), Occurrence: app.Run(),
		Spark: &finding.SparkApp{Application: app.Name, AppID: st.SparkApplicationID, State: string(st.AppState.State), Attempts: attempts}}
	line := fmt.Sprintf("SparkApplication %s is %s after %d %s attempt(s)", app.Name, st.AppState.State, attempts, what)
	if msg := st.AppState.ErrorMessage; msg != "" {
		line += ": " + clipText(msg)
	}
	f.Evidence = append(f.Evidence, line)
	if name := st.DriverInfo.PodName; name != "" {
		f.Evidence = append(f.Evidence, driverEvidence(in.View, app.Namespace, name))
	}
	if ex := app.Executors(); ex != "" {
		f.Evidence = append(f.Evidence, "executors: "+ex)
	}
	if ref := metav1.GetControllerOf(app); ref != nil && ref.Kind == spark.KindScheduledApplication {
		f.Evidence = append(f.Evidence, scheduleEvidence(in.View, app.Namespace, ref.Name))
	}
	if t := SparkAppAirflowTask(app); t != nil {
		f.Airflow = t
		f.Evidence = append(f.Evidence, fmt.Sprintf("created by Airflow task %s.%s (try %d, SparkKubernetesOperator)", t.DagID, t.TaskID, t.TryNumber))
	}
	if !st.TerminationTime.IsZero() {
		f.Evidence = append(f.Evidence, "terminated at "+st.TerminationTime.UTC().Format(time.RFC3339))
	}
	return []finding.Finding{f}
}

// invalidSchedule is the finding of a ScheduledSparkApplication the operator refused
// (FailedValidation: its cron schedule does not parse): it creates no runs, so no failed run
// would ever tell. One finding per version of its spec.
func invalidSchedule(s *spark.ScheduledApplication) []finding.Finding {
	if !s.Invalid() || s.DeletionTimestamp != nil {
		return nil
	}
	f := finding.Finding{Kind: finding.SparkAppFailed, Namespace: s.Namespace, UID: string(s.UID), Occurrence: s.Version(),
		Spark: &finding.SparkApp{Application: s.Name, State: string(s.Status.ScheduleState), Schedule: true}}
	line := fmt.Sprintf("ScheduledSparkApplication %s (schedule %q) failed the Spark operator's validation", s.Name, s.Spec.Schedule)
	if s.Status.Reason != "" {
		line += ": " + clipText(s.Status.Reason)
	}
	f.Evidence = append(f.Evidence, line+"; it creates no runs until its spec is mended")
	if !s.Status.LastRun.IsZero() {
		f.Evidence = append(f.Evidence, fmt.Sprintf("last run %s at %s", s.Status.LastRunName, s.Status.LastRun.UTC().Format(time.RFC3339)))
	}
	return []finding.Finding{f}
}

// scheduleEvidence says which ScheduledSparkApplication a run belongs to and how its runs went,
// as the view knows it.
func scheduleEvidence(v View, ns, name string) string {
	var s *spark.ScheduledApplication
	if v != nil {
		s = v.ScheduledSparkApp(ns, name)
	}
	if s == nil {
		return "a run of ScheduledSparkApplication " + name
	}
	line := fmt.Sprintf("a run of ScheduledSparkApplication %s (schedule %q", name, s.Spec.Schedule)
	if s.Suspended() {
		line += ", suspended"
	} else if !s.Status.NextRun.IsZero() {
		line += ", next run at " + s.Status.NextRun.UTC().Format(time.RFC3339)
	}
	line += ")"
	if failed := s.Status.PastFailedRunNames; len(failed) > 0 {
		line += fmt.Sprintf("; failed runs it keeps: %s", strings.Join(failed, ", "))
	}
	if ok := s.Status.PastSuccessfulRunNames; len(ok) > 0 {
		line += fmt.Sprintf("; successful runs it keeps: %s", strings.Join(ok, ", "))
	}
	return line
}

// driverEvidence says how the driver pod ended, as the view knows it.
func driverEvidence(v View, ns, name string) string {
	var pod *corev1.Pod
	if v != nil {
		pod = v.Pod(ns, name)
	}
	if pod == nil {
		return "driver pod " + name + " (gone)"
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != driverContainer {
			continue
		}
		t := cs.State.Terminated
		if t == nil {
			t = cs.LastTerminationState.Terminated
		}
		if t != nil {
			return fmt.Sprintf("driver pod %s: container %s terminated %s (exit code %d)", name, cs.Name, t.Reason, t.ExitCode)
		}
	}
	return fmt.Sprintf("driver pod %s is %s", name, pod.Status.Phase)
}

// SparkAppAirflowTask is the Airflow task that created an application, from the task context
// labels SparkKubernetesOperator puts on its driver (or the application itself), or nil. Its
// run id is left out: the label is the label-safe form, not the run's id.
func SparkAppAirflowTask(app *spark.Application) *finding.AirflowTask {
	l := app.AirflowLabels()
	if l == nil {
		return nil
	}
	return airflowTask(func(k string) string { return l[k] })
}

// sparkAppMeta is the metadata rules match an application by: its labels, its driver's
// (where the task context labels are), and the operator's app-name label its pods carry, so
// that `workload: spark` selects it.
func sparkAppMeta(m metav1.ObjectMeta, driver *spark.PodSpec) *metav1.ObjectMeta {
	m.Labels = maps.Clone(m.Labels)
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	maps.Copy(m.Labels, driver.Labels)
	m.Labels[LabelSparkOperator] = m.Name
	return &m
}

// sparkMemory turns the memory proposal for the Spark container of a driver or executor pod
// owned by a SparkApplication into Spark's settings, when the view knows the application: the
// pod's limit is memory + memoryOverhead (package spark), and a kernel OOM kill is the
// process outgrowing it as a whole, so the raise goes to memoryOverhead (off-heap), in Spark's
// units. It adds the params target=SparkApplication, role, memory and memoryOverhead to the
// container's, and says why in the evidence.
func sparkMemory(f *finding.Finding, in Input, c *corev1.Container, params map[string]string) {
	if f.Owner.Kind != spark.KindApplication || in.View == nil || in.Pod == nil || f.Kind != finding.OOMKilled {
		return
	}
	role := in.Pod.Labels[LabelSparkRole]
	if want := sparkContainer(role); want == "" || c.Name != want {
		return // a sidecar: its own resources, not Spark's
	}
	app := ownerApp(in.View, f)
	if app == nil {
		f.Evidence = append(f.Evidence, fmt.Sprintf(appUnknown+": the proposal is the pod's memory, not Spark's settings", f.Owner.Name))
		return
	}
	rm, err := app.MemoryOf(role)
	if err != nil {
		f.Evidence = append(f.Evidence, "Spark's memory settings unreadable: "+err.Error())
		return
	}
	cur, ok := c.Resources.Limits[corev1.ResourceMemory]
	next, err := resource.ParseQuantity(params["limit"])
	if !ok || err != nil || next.Value() <= cur.Value() {
		return
	}
	overhead := rm.Overhead + next.Value() - cur.Value()
	how := "set"
	if rm.DefaultOverhead {
		how = fmt.Sprintf("Spark's default: max(384m, %.0f%% of memory)", 100*spark.OverheadFactor(app.Spec.Type))
	}
	params["target"], params["role"] = spark.KindApplication, role
	params["memory"], params["memoryOverhead"] = spark.FormatMemory(rm.Memory), spark.FormatMemory(overhead)
	f.Evidence = append(f.Evidence, fmt.Sprintf(
		"Spark memory of the %s: pod limit %s = memory %s + memoryOverhead %s (%s); killed by the kernel, so the off-heap memory is raised: spec.%s.memoryOverhead %s -> %s (pod limit %s)",
		role, cur.String(), spark.FormatMemory(rm.Memory), spark.FormatMemory(rm.Overhead), how, role,
		spark.FormatMemory(rm.Overhead), params["memoryOverhead"], next.String()))
}

// heapRule returns f's rule when it proposes memory for a failed task, else nil: the proposal
// waits for the task's log, which says whose heap ran out (planHeap).
func (e *Engine) heapRule(f *finding.Finding) *config.Rule {
	if f.Kind != finding.TaskFailed {
		return nil
	}
	if r := e.ruleNamed(f.Rule); r != nil && r.Action != nil && r.Action.Type == finding.ActionProposeMemoryLimit {
		return r
	}
	return nil
}

// planHeap plans the memory proposal of a failed Spark driver under r (its heapRule), once
// its log has said whose JVM ran out of heap (role "driver" or "executor"; "" when the log
// shows no java.lang.OutOfMemoryError): that role's spec.<role>.memory of the driver's
// SparkApplication, raised by what the rule's policy raises a pod's limit of memory +
// memoryOverhead (bump_ratio, min_bump, max_limit). The overhead is kept as it is, written out
// when it was Spark's default, which would otherwise grow with the heap past the planned limit.
// A failure that is not the heap's gets no memory proposal: more memory would not mend it.
func (e *Engine) planHeap(f *finding.Finding, r *config.Rule, role string, view View) {
	no := func(why string) { f.Evidence = append(f.Evidence, "no memory proposed: "+why) }
	switch {
	case role == "":
		no("the log shows no java.lang.OutOfMemoryError; more memory would not mend this failure")
		return
	case f.Owner.Kind != spark.KindApplication:
		no("the driver is not a SparkApplication's (spark-submit's own settings are not podmedic's to change)")
		return
	}
	app := ownerApp(view, f)
	if app == nil {
		no(fmt.Sprintf(appUnknown, f.Owner.Name))
		return
	}
	rm, err := app.MemoryOf(role)
	if err != nil {
		no("Spark's memory settings unreadable: " + err.Error())
		return
	}
	// The role's pod as Spark sizes it: the rule's policy raises its limit.
	pod := resource.NewQuantity(rm.Limit(), resource.BinarySI)
	c := &corev1.Container{Name: sparkContainer(role), Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceMemory: *pod}, Requests: corev1.ResourceList{corev1.ResourceMemory: *pod}}}
	params, err := e.planner.PlanMemory(c, r.Action.Params)
	if err != nil {
		no(err.Error())
		return
	}
	next, err := resource.ParseQuantity(params["limit"])
	if err != nil || next.Value() <= rm.Limit() {
		no("the planned limit " + params["limit"] + " is no larger than the pod's " + pod.String())
		return
	}
	memory := rm.Memory + next.Value() - rm.Limit()
	params["target"], params["role"] = spark.KindApplication, role
	params["memory"], params["memoryOverhead"] = spark.FormatMemory(memory), spark.FormatMemory(rm.Overhead)
	delete(params, "request") // Spark sets the role's pods' request to their limit itself
	f.Action = actionOf(r.Action)
	f.Action.Params = params
	kept := "kept"
	if rm.DefaultOverhead {
		kept = "kept, written out: Spark's default would grow with the heap"
	}
	f.Evidence = append(f.Evidence, fmt.Sprintf(
		"Spark memory of the %s: pod limit %s = memory %s + memoryOverhead %s; the heap ran out, so it is raised: spec.%s.memory %s -> %s, memoryOverhead %s (%s), pod limit %s",
		role, pod.String(), spark.FormatMemory(rm.Memory), spark.FormatMemory(rm.Overhead), role,
		spark.FormatMemory(rm.Memory), params["memory"], params["memoryOverhead"], kept, next.String()))
}
