package schedule

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/rules"
)

// PodLister lists the pods a sweep looks at: those of a namespace ("" for all) that match a
// label selector and, when phase is set, are in that phase. fn is called for each; an error
// from fn stops the listing and is returned.
type PodLister interface {
	ListPods(ctx context.Context, namespace string, selector labels.Selector, phase string, fn func(*corev1.Pod) error) error
}

// Sweeper runs sweeps. Every action goes through the actions stage's one guard: auto mode
// calls Guard.Do for each pod (scope, global budgets, cooldown, dry-run, re-verification of
// the pod against the API and with the rules just before acting), approve mode hands each
// finding to Service.Handle, which proposes it (and the guard checks it again after the
// approval).
type Sweeper struct {
	// Rules returns the rules engine in force: the one the guard re-checks findings with.
	Rules    func() *rules.Engine
	Registry *rules.Registry
	// View is the cluster view the detectors consult (the watchers' caches: events, PVCs).
	View rules.View
	Pods PodLister
	// Client plans targets (the workload of a memory limit) and tells why a proposal was
	// not made.
	Client  kubernetes.Interface
	Guard   *actions.Guard
	Service *actions.Service
	// Store holds the proposals (the Service's); auto-mode actions are recorded in it too, as
	// the Service records its own.
	Store actions.ProposalStore
	// Audit and AuditSubject record auto-mode actions on the audit stream
	// (podmedic.audit.<cluster>.proposal), as the Service does.
	Audit        actions.AuditPublisher
	AuditSubject string
	Now          func() time.Time
	Logger       *zap.Logger
}

// candidate is a pod a sweep may act on.
type candidate struct {
	f     finding.Finding
	pod   *corev1.Pod // what the owner policy reads: name, UID, annotations, owners
	since time.Time
}

// Sweep runs one sweep of job for tick: it finds the candidates, oldest failure first, and
// acts on (or proposes) at most the job's budget of them. It never returns nil; an error that
// stopped the run is in Report.Error.
func (s *Sweeper) Sweep(ctx context.Context, cfg *config.Config, job *config.Schedule, tick time.Time) *Report {
	sw := job.Sweep
	rep := &Report{Job: job.Name, Type: JobSweepType, Tick: tick, Kind: sw.Kind, OlderThan: sw.OlderThan.Duration,
		Action: sw.Action.Type, Mode: sw.Action.Mode, Budget: sw.Budget, DryRun: s.Guard != nil && s.Guard.DryRun(),
		Refused: map[string]int{}}
	log := s.logger().With(zap.String("job", job.Name))
	cands, uncovered, err := s.candidates(ctx, cfg, job, rep)
	if err != nil {
		rep.Error = err.Error()
		return rep
	}
	if uncovered > 0 {
		log.Info("pods the sweep's selector finds with no finding of the rules in force; left alone (the guard would refuse them)",
			zap.Int("pods", uncovered), zap.String("kind", string(sw.Kind)))
	}
	rep.Candidates = len(cands)
	if sw.Action.Mode == finding.ModeNotify || sw.Action.Type == finding.ActionNotify {
		for _, c := range cands {
			rep.addTarget(c.f.Namespace + "/" + c.f.Pod)
		}
		return rep
	}

	// The proposals made already, in one read: a pod with one is waiting for a decision, or
	// was handled, and is neither acted on again nor left "remaining".
	all, err := s.Store.List(ctx)
	if err != nil {
		rep.Error = "list proposals: " + err.Error()
		return rep
	}
	known := make(map[string]finding.Proposal, len(all))
	for _, p := range all {
		known[p.ID] = p
	}
	exhausted := map[string]bool{} // namespaces whose budget is spent
	for i, c := range cands {
		if ctx.Err() != nil {
			rep.Remaining += len(cands) - i
			rep.Error = "stopped: " + context.Cause(ctx).Error()
			break
		}
		if p, ok := known[actions.ProposalID(&c.f)]; ok {
			if p.State == finding.StatePending && s.now().Before(p.ExpiresAt) {
				rep.Pending++
			} else {
				rep.Handled++
			}
			continue
		}
		if rep.Acted+rep.Proposed+rep.Failed >= sw.Budget || exhausted[c.f.Namespace] {
			rep.Remaining++
			continue
		}
		var be *actions.BudgetError
		switch err := s.act(ctx, job, &c, rep); {
		case errors.As(err, &be) && be.Scope == actions.ScopeNamespace:
			exhausted[c.f.Namespace] = true
		case errors.As(err, &be):
			// The cluster's budget is spent: the rest waits for a later run.
			rep.Remaining += len(cands) - i - 1
			log.Info("a global budget is spent; the sweep stops", zap.Error(err), zap.Int("remaining", rep.Remaining))
			return rep
		case err != nil && !actions.IsRefusal(err):
			// The store or the API failed: stop rather than fail every candidate.
			rep.Remaining += len(cands) - i - 1
			rep.Error = err.Error()
			return rep
		}
	}
	return rep
}

// act handles one candidate and counts what happened in rep. It returns the guard's refusal,
// or an error that should stop the sweep.
func (s *Sweeper) act(ctx context.Context, job *config.Schedule, c *candidate, rep *Report) error {
	f := &c.f
	id := actions.ProposalID(f)
	target := f.Namespace + "/" + f.Pod
	if c.pod.DeletionTimestamp != nil {
		if acted, err := s.Guard.ActedOn(ctx, f.UID); err != nil {
			return err
		} else if acted {
			rep.Handled++
			return nil
		}
	}
	req := &actions.Request{ID: id, Finding: f, Action: *f.Action,
		Target: finding.Target{Kind: "Pod", Namespace: f.Namespace, Name: f.Pod, UID: f.UID}}

	if f.Action.Mode == finding.ModeApprove {
		req.Pod = c.pod
		if err := s.Guard.Admit(ctx, req, false); err != nil {
			return s.refused(rep, err)
		}
		if err := s.Service.Handle(ctx, f); err != nil {
			if errors.Is(err, actions.ErrAfterAction) {
				rep.Handled++
				return nil
			}
			return err
		}
		p, err := s.Store.Get(ctx, id)
		switch {
		case err == nil && p.State == finding.StatePending:
			rep.Proposed++
			rep.addTarget(target)
		case err == nil:
			rep.Handled++
		case errors.Is(err, actions.ErrKeyNotFound):
			// The Service refused to propose it (and reported the refusal): the pod went away
			// or was replaced between the listing and the proposal.
			return s.refused(rep, s.whyNotProposed(ctx, req))
		default:
			return err
		}
		return nil
	}

	switch f.Action.Type {
	case finding.ActionProposeMemoryLimit:
		t, err := actions.ResolveWorkload(ctx, s.Client, f)
		if err != nil {
			if actions.IsRefusal(err) {
				return s.refused(rep, err)
			}
			rep.Failed++
			s.logger().Warn("resolving the workload of a pod failed", zap.String("job", job.Name), zap.String("pod", target), zap.Error(err))
			return nil
		}
		req.Target = t
	case finding.ActionAirflowClearTask:
		req.Target = actions.AirflowTarget(f, req.Action)
	}
	out, err := s.Guard.Do(ctx, req)
	if actions.IsRefusal(err) {
		return s.refused(rep, err)
	}
	state := finding.StateExecuted
	if err != nil {
		state = finding.StateFailed
		rep.Failed++
	} else {
		rep.Acted++
		rep.addTarget(target)
	}
	s.record(ctx, &finding.Proposal{ID: id, Finding: *f, Action: req.Action, State: state, CreatedAt: out.At,
		ExpiresAt: out.At, Target: req.Target, DecidedBy: actions.AutoDecider, DecidedAt: out.At, Outcome: &out})
	return nil
}

// refused counts a refusal and returns it.
func (s *Sweeper) refused(rep *Report, err error) error {
	reason, _ := actions.ReasonOf(err)
	rep.Refused[string(reason)]++
	return err
}

// whyNotProposed is the refusal the Service met planning a proposal: the pod is gone, or it
// was replaced.
func (s *Sweeper) whyNotProposed(ctx context.Context, r *actions.Request) error {
	pod, err := s.Client.CoreV1().Pods(r.Target.Namespace).Get(ctx, r.Target.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || err == nil && pod.DeletionTimestamp != nil {
		return &actions.TargetGoneError{Target: r.Target.String()}
	}
	what := "changed before it was proposed"
	if err == nil && string(pod.UID) != r.Target.UID {
		what = fmt.Sprintf("was replaced (uid %s -> %s)", r.Target.UID, pod.UID)
	}
	return &actions.TargetChangedError{Target: r.Target.String(), What: what}
}

// record stores an auto-mode action and publishes it on the audit stream, as the Service
// records its own: the proposal id keeps the pod from being acted on again, and the digest
// counts it.
func (s *Sweeper) record(ctx context.Context, p *finding.Proposal) {
	if err := s.Store.Create(ctx, p); err != nil && !errors.Is(err, actions.ErrKeyExists) {
		s.logger().Error("recording a sweep's action failed", zap.String("id", p.ID), zap.Error(err))
	}
	if s.Audit == nil {
		return
	}
	if err := s.Audit.PublishJSON(ctx, s.AuditSubject, p.ID+"/"+string(p.State), p); err != nil {
		s.logger().Error("audit record of a sweep's action not published", zap.String("id", p.ID), zap.Error(err))
	}
}

// candidates lists the pods in the sweep's scope whose finding of the sweep's kind holds now
// and began at least older_than ago, oldest first. It also returns how many pods the sweep's
// own evaluation finds but the rules in force do not (they would fail the guard's re-check).
func (s *Sweeper) candidates(ctx context.Context, cfg *config.Config, job *config.Schedule, rep *Report) ([]candidate, int, error) {
	sw := job.Sweep
	eng, err := s.jobEngine(cfg, job)
	if err != nil {
		return nil, 0, err
	}
	var pipeline *rules.Engine
	if s.Rules != nil {
		pipeline = s.Rules()
	}
	// Each phase is listed with a field selector, so that the apiserver sends only those pods
	// (an InitStuck sweep lists the Pending pods, not the cluster).
	phases := sw.Phases
	if len(phases) == 0 {
		phases = []string{""}
	}
	now := s.now()
	var (
		out       []candidate
		uncovered int
		seen      = map[string]bool{}
	)
	visit := func(pod *corev1.Pod) error {
		if seen[string(pod.UID)] {
			return nil
		}
		seen[string(pod.UID)] = true
		if pod.DeletionTimestamp != nil && sw.Kind != finding.StuckTerminating {
			return nil // on its way out already
		}
		if len(sw.Phases) > 0 && !slices.Contains(sw.Phases, string(pod.Status.Phase)) {
			return nil
		}
		var f *finding.Finding
		for _, g := range eng.EvaluatePod(pod, s.View, now) {
			if g.Kind == sw.Kind {
				f = &g
				break
			}
		}
		if f == nil || f.Action == nil {
			return nil
		}
		if pipeline != nil && !holds(pipeline.EvaluatePod(pod, s.View, now), f) {
			uncovered++
			return nil
		}
		since := s.Registry.FailureSince(f, pod)
		if now.Sub(since) < sw.OlderThan.Duration {
			rep.Younger++
			return nil
		}
		out = append(out, candidate{f: *f, pod: ownerView(pod), since: since})
		return nil
	}
	for _, ns := range scopes(cfg, sw) {
		for _, phase := range phases {
			if err := s.Pods.ListPods(ctx, ns, sw.Match.LabelSelector, phase, visit); err != nil {
				return nil, 0, fmt.Errorf("list pods: %w", err)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].since.Equal(out[j].since) {
			return out[i].since.Before(out[j].since)
		}
		return out[i].f.Namespace+"/"+out[i].f.Pod < out[j].f.Namespace+"/"+out[j].f.Pod
	})
	return out, uncovered, nil
}

// holds reports whether the rules in force find f's failure too (same kind and container):
// what the guard's re-check asks before acting.
func holds(fs []finding.Finding, f *finding.Finding) bool {
	for _, g := range fs {
		if g.Kind == f.Kind && g.Container == f.Container {
			return true
		}
	}
	return false
}

// jobEngine is an engine of one rule: the sweep's kind with the thresholds of the first
// enabled rule that detects it (the rules decide what a failure is), the sweep's match, its
// action, and its name, so that the findings are planned (action parameters, route) as a
// rule's are and carry the job's name.
func (s *Sweeper) jobEngine(cfg *config.Config, job *config.Schedule) (*rules.Engine, error) {
	sw := job.Sweep
	var src *config.Rule
	for i := range cfg.Rules {
		if r := &cfg.Rules[i]; !r.Disabled && r.Detect.Kind == sw.Kind {
			src = r
			break
		}
	}
	if src == nil {
		return nil, fmt.Errorf("no enabled rule detects %s", sw.Kind)
	}
	a := sw.Action
	r := config.Rule{Name: job.Name, Description: job.Description, Severity: src.Severity, Detect: src.Detect,
		Match: sw.Match, Action: &config.RuleAction{Type: a.Type, Mode: a.Mode, Params: a.Params}, Notify: job.Notify}
	return rules.NewEngine(&config.Config{Cluster: cfg.Cluster, Namespaces: cfg.Namespaces, Rules: []config.Rule{r}}, s.Registry, actions.MemoryPlanner{})
}

// scopes are the namespaces to list: the sweep's include, else the global include, else all.
func scopes(cfg *config.Config, sw *config.Sweep) []string {
	switch {
	case len(sw.Match.Namespaces.Include) > 0:
		return sw.Match.Namespaces.Include
	case len(cfg.Namespaces.Include) > 0:
		return cfg.Namespaces.Include
	}
	return []string{metav1.NamespaceAll}
}

// ownerView keeps what the guard's owner policy reads of a pod.
func ownerView(pod *corev1.Pod) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		ResourceVersion: pod.ResourceVersion, Annotations: pod.Annotations, OwnerReferences: pod.OwnerReferences,
		DeletionTimestamp: pod.DeletionTimestamp}}
}

func (r *Report) addTarget(t string) {
	if len(r.Targets) < maxTargets {
		r.Targets = append(r.Targets, t)
	}
}

func (s *Sweeper) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sweeper) logger() *zap.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return zap.NewNop()
}
