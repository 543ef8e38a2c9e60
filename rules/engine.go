package rules

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/podmedic/podmedic/airflow"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/spark"
)

// Engine runs the detectors the rules enable. It is immutable after NewEngine and safe for
// concurrent use; a reload builds a new Engine.
type Engine struct {
	cfg      *config.Config
	rules    []compiledRule
	planner  Planner
	redactor *Redactor
}

// Planner sizes the actions whose parameters depend on the target: the memory limit and
// request a propose-memory-limit action proposes for a container (as action params:
// container, limit, request). Package actions implements it (actions.MemoryPlanner); the
// engine asks it through this interface, so detection does not depend on the actions stage.
type Planner interface {
	PlanMemory(c *corev1.Container, p config.ActionParams) (map[string]string, error)
}

type compiledRule struct {
	rule   *config.Rule
	plugin Plugin
	det    Detector
}

// NewEngine compiles the enabled rules of a loaded config against the registry. planner sizes
// memory proposals; it may be nil when no enabled rule proposes memory.
func NewEngine(cfg *config.Config, reg *Registry, planner Planner) (*Engine, error) {
	redactor, err := NewRedactor(cfg.Evidence.Redact)
	if err != nil {
		return nil, fmt.Errorf("evidence.redact: %w", err)
	}
	e := &Engine{cfg: cfg, planner: planner, redactor: redactor}
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		if r.Disabled {
			continue
		}
		if planner == nil && r.Action != nil && r.Action.Type == finding.ActionProposeMemoryLimit {
			return nil, fmt.Errorf("rule %q: %s needs a memory planner", r.Name, finding.ActionProposeMemoryLimit)
		}
		p, ok := reg.Lookup(r.Detect.Kind)
		if !ok {
			return nil, fmt.Errorf("rule %q: no detector registered for kind %s", r.Name, r.Detect.Kind)
		}
		args := r.Detect.Args
		if args == nil {
			args = p.DefaultArgs()
		}
		e.rules = append(e.rules, compiledRule{rule: r, plugin: p, det: p.New(args)})
	}
	return e, nil
}

// Redactor returns what cleans evidence of secrets under this configuration.
func (e *Engine) Redactor() *Redactor { return e.redactor }

// Config returns the configuration the engine was built from.
func (e *Engine) Config() *config.Config { return e.cfg }

// EvaluatePod returns the findings for one pod: for each finding kind, the first enabled rule
// whose match selects the pod runs its detector. When several failure kinds fire for the same
// pod, only the most specific is kept (one failure, one finding). Findings carry the rule, its
// severity and route, and the planned action.
func (e *Engine) EvaluatePod(pod *corev1.Pod, view View, now time.Time) []finding.Finding {
	if pod == nil || !e.cfg.Namespaces.Allows(pod.Namespace) {
		return nil
	}
	in := Input{Pod: pod, View: view, Now: now, events: &podEventsMemo{}}
	return e.evaluate(config.ObjectPod, &pod.ObjectMeta, in)
}

// EvaluatePVC returns the findings for one PersistentVolumeClaim.
func (e *Engine) EvaluatePVC(pvc *corev1.PersistentVolumeClaim, view View, now time.Time) []finding.Finding {
	if pvc == nil || !e.cfg.Namespaces.Allows(pvc.Namespace) {
		return nil
	}
	in := Input{PVC: pvc, View: view, Now: now}
	return e.evaluate(config.ObjectPVC, &pvc.ObjectMeta, in)
}

// EvaluateSparkApp returns the findings for one SparkApplication. One run of an application is
// one finding, of its most specific kind: when its driver pod (still known) has a finding of
// its own — an OOM kill, say — that finding is the run's, and the application's failed state
// is not reported besides.
func (e *Engine) EvaluateSparkApp(app *spark.Application, view View, now time.Time) []finding.Finding {
	if app == nil || !e.cfg.Namespaces.Allows(app.Namespace) {
		return nil
	}
	in := Input{App: app, View: view, Now: now}
	out := e.evaluate(config.ObjectSparkApp, sparkAppMeta(app.ObjectMeta, &app.Spec.Driver), in)
	if len(out) == 0 || view == nil || app.Status.DriverInfo.PodName == "" {
		return out
	}
	driver := view.Pod(app.Namespace, app.Status.DriverInfo.PodName)
	if driver == nil {
		return out
	}
	for _, f := range e.EvaluatePod(driver, view, now) {
		if e.specificity(f.Kind) > 0 {
			return slices.DeleteFunc(out, func(f finding.Finding) bool { return f.Kind == finding.SparkAppFailed })
		}
	}
	return out
}

// EvaluateScheduledSparkApp returns the findings for one ScheduledSparkApplication: one
// refused by the operator (FailedValidation) creates no runs, which no failed run would tell.
// It is matched and reported as an application (SparkAppFailed rules).
func (e *Engine) EvaluateScheduledSparkApp(s *spark.ScheduledApplication, view View, now time.Time) []finding.Finding {
	if s == nil || !e.cfg.Namespaces.Allows(s.Namespace) {
		return nil
	}
	return e.evaluate(config.ObjectSparkApp, sparkAppMeta(s.ObjectMeta, &s.Spec.Template.Driver), Input{Schedule: s, View: view, Now: now})
}

func (e *Engine) evaluate(object string, meta *metav1.ObjectMeta, in Input) []finding.Finding {
	var (
		out     []finding.Finding
		claimed = map[finding.Kind]bool{}
		best    int
	)
	for _, cr := range e.rules {
		if cr.plugin.Object != object || claimed[cr.plugin.Kind] || !Matches(&cr.rule.Match, meta) || !e.boundWorkload(cr.rule.Match.Workload, meta.Namespace) {
			continue
		}
		claimed[cr.plugin.Kind] = true
		for _, f := range cr.det.Detect(in) {
			e.bindIdentity(&f)
			f.Evidence = e.redactor.RedactLines(f.Evidence)
			e.complete(&f, cr, in)
			out = append(out, f)
			best = max(best, cr.plugin.Specificity)
		}
	}
	if best == 0 {
		return out
	}
	kept := out[:0]
	for _, f := range out {
		if s := e.specificity(f.Kind); s == 0 || s == best {
			kept = append(kept, f)
		}
	}
	return kept
}

// actionOf is the action a rule's action block makes, its params still to plan.
func actionOf(ra *config.RuleAction) *finding.Action {
	mode := ra.Mode
	if mode == "" {
		mode = finding.ModeApprove
	}
	return &finding.Action{Type: ra.Type, Mode: mode, Params: map[string]string{}}
}

// ruleNamed returns the enabled rule called name, or nil.
func (e *Engine) ruleNamed(name string) *config.Rule {
	for _, cr := range e.rules {
		if cr.rule.Name == name {
			return cr.rule
		}
	}
	return nil
}

func (e *Engine) specificity(k finding.Kind) int {
	for _, cr := range e.rules {
		if cr.plugin.Kind == k {
			return cr.plugin.Specificity
		}
	}
	return 0
}

// boundWorkload reports whether a rule restricted to Airflow or Spark pods may select a pod of
// namespace ns: rules.yaml's airflow.namespaces and spark.namespaces, when set, bind the
// workload's identity to them.
func (e *Engine) boundWorkload(w config.Workload, ns string) bool {
	switch w {
	case config.WorkloadAirflow:
		return inScope(e.cfg.Airflow.Namespaces, ns)
	case config.WorkloadSpark:
		return inScope(e.cfg.Spark.Namespaces, ns)
	}
	return true
}

// bindIdentity drops the Airflow or Spark identity a pod claims outside the namespaces
// rules.yaml binds it to, and says so: labels are anyone's to write, and that identity
// decides which DAG podmedic clears with its credentials and which bare pods it may delete.
func (e *Engine) bindIdentity(f *finding.Finding) {
	if a := f.Airflow; a != nil && !inScope(e.cfg.Airflow.Namespaces, f.Namespace) {
		f.Evidence = append(f.Evidence, fmt.Sprintf("the pod claims Airflow task %s.%s, but namespace %s is not in airflow.namespaces: it is not taken for an Airflow worker",
			a.DagID, a.TaskID, f.Namespace))
		f.Airflow = nil
	}
	if sp := f.Spark; sp != nil && !inScope(e.cfg.Spark.Namespaces, f.Namespace) {
		f.Evidence = append(f.Evidence, fmt.Sprintf("the pod claims to be a Spark %s, but namespace %s is not in spark.namespaces: it is not taken for a Spark pod",
			sp.Role, f.Namespace))
		f.Spark = nil
	}
}

// inScope reports whether ns is one of namespaces, or namespaces is empty.
func inScope(namespaces []string, ns string) bool {
	return len(namespaces) == 0 || slices.Contains(namespaces, ns)
}

// Matches reports whether a rule's match block selects an object.
func Matches(m *config.Match, meta *metav1.ObjectMeta) bool {
	if !m.Namespaces.Allows(meta.Namespace) {
		return false
	}
	if m.LabelSelector != nil && !m.LabelSelector.Matches(labels.Set(meta.Labels)) {
		return false
	}
	switch m.Workload {
	case config.WorkloadAirflow:
		return IsAirflowWorker(meta)
	case config.WorkloadSpark:
		return IsSpark(meta)
	}
	return true
}

// complete fills what the rule contributes to a finding: name, severity, route and action.
func (e *Engine) complete(f *finding.Finding, cr compiledRule, in Input) {
	r := cr.rule
	f.Rule = r.Name
	f.Severity = r.Severity
	if f.Severity == "" {
		f.Severity = finding.SeverityWarning
	}
	f.Route = r.Notify.Route
	if r.Notify.Channel != "" {
		f.Route = r.Notify.Channel // a fixed channel: notifiers take a '#name' or C… id literally
	}
	if f.Evidence == nil {
		f.Evidence = []string{}
	}
	if r.Action == nil || r.Action.Type == finding.ActionNotify {
		return
	}
	a := actionOf(r.Action)
	switch a.Type {
	case finding.ActionDeletePod, finding.ActionEvictPod:
		if gp := r.Action.Params.GracePeriod; gp != nil {
			a.Params["grace_period"] = strconv.FormatInt(*gp, 10)
		}
		if r.Action.Params.Force {
			a.Params["force"] = "true"
		}
	case finding.ActionProposeMemoryLimit:
		if f.Kind == finding.TaskFailed {
			// A failed task's memory is proposed from its log, once the handler has read it:
			// a Spark driver whose log shows java.lang.OutOfMemoryError (planHeap).
			return
		}
		c := containerSpec(in.Pod, f.Container)
		if c == nil {
			f.Evidence = append(f.Evidence, "no memory limit proposed: container spec not found")
			return
		}
		params, err := e.planner.PlanMemory(c, r.Action.Params)
		if err != nil {
			f.Evidence = append(f.Evidence, "no memory limit proposed: "+err.Error())
			return
		}
		sparkMemory(f, in, c, params)
		a.Params = params
	case finding.ActionAirflowClearTask:
		if f.Airflow == nil {
			f.Evidence = append(f.Evidence, "no Airflow task to clear: the pod carries no dag_id/task_id")
			return
		}
		onlyFailed := r.Action.Params.OnlyFailed == nil || *r.Action.Params.OnlyFailed
		params, err := airflow.ClearParams(f.Airflow, e.cfg.Airflow.APIVersion, onlyFailed)
		if err != nil {
			f.Evidence = append(f.Evidence, err.Error())
			return
		}
		a.Params = params
	}
	f.Action = a
}
