package actions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"

	"github.com/podmedic/podmedic/audit"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/retry"
	"github.com/podmedic/podmedic/overrides"
	"github.com/podmedic/podmedic/spark"
)

// Notifier delivers notices of the actions stage (new findings with their proposal or
// outcome, decisions, refusals) to humans; nil means accepted (delivered or queued), an error
// that the caller should retry. The notifier package's notifiers implement it.
type Notifier interface {
	Notify(ctx context.Context, n *finding.Notice) error
}

// AuditPublisher records audit entries on a stream, deduplicated by msgID (the bus's
// PublishJSON).
type AuditPublisher interface {
	PublishJSON(ctx context.Context, subject, msgID string, v any) error
}

// Defaults of ServiceOptions.
const (
	DefaultProposalTTL     = 30 * time.Minute
	DefaultInterval        = 15 * time.Second
	DefaultRetention       = 7 * 24 * time.Hour
	DefaultRecent          = 24 * time.Hour
	DefaultExecTimeout     = time.Minute
	DefaultRefusalWindow   = time.Hour
	DefaultRefusalQuiet    = 5 * time.Second
	DefaultRefusalMaxDelay = time.Minute
)

// AutoDecider is DecidedBy of actions taken in auto mode; SystemDecider of expiries and of
// proposals podmedic resolves itself.
const (
	AutoDecider   = "podmedic (auto mode)"
	SystemDecider = "podmedic"
)

// ServiceOptions configure NewService.
type ServiceOptions struct {
	// Guard every action passes.
	Guard *Guard
	// Client resolves targets when planning (the pod's resourceVersion, the owning workload).
	Client kubernetes.Interface
	// Store keeps proposals (KVProposalStore over the bus's proposals bucket).
	Store ProposalStore
	// Claimer dedups proposals per target and refusal notices per window.
	Claimer Claimer
	// Notifier receives findings, decisions and refusals.
	Notifier Notifier
	// Overrides reads memory overrides (FollowPod) and revokes them (RevokeOverride); nil when
	// there are none.
	Overrides OverrideBook
	// Audit and AuditSubject record every proposal transition, with Nats-Msg-Id
	// "<proposal id>/<state>" (podmedic.audit.<cluster>.proposal).
	Audit        AuditPublisher
	AuditSubject string
	// RefusalSubject (podmedic.audit.<cluster>.refusal) records each refusal notice as a
	// audit.RefusalRecord, with Nats-Msg-Id "refusal/<rule>/<reason>/<first refusal>"; empty: not
	// recorded.
	RefusalSubject string
	// Events records PodmedicProposed, PodmedicApproved, ... on the targets.
	Events events.EventRecorder
	// TTL of a proposal without a decision; default 30m.
	TTL time.Duration
	// Interval of the maintenance loop (expiry, stale approvals, retention, gauges); default 15s.
	Interval time.Duration
	// Retention of decided proposals and of markers of pods acted on; default 7 days.
	Retention time.Duration
	// Recent is how far back Proposals lists decided proposals; default 24h.
	Recent time.Duration
	// ExecTimeout bounds one execution after an approval; default 1m. An approval older
	// than twice this without an outcome is marked failed (podmedic stopped meanwhile).
	ExecTimeout time.Duration
	// RefusalWindow, RefusalQuiet and RefusalMaxDelay: refusals are reported once per rule
	// and reason per window, after quiet without a new one or maxDelay after the first.
	RefusalWindow, RefusalQuiet, RefusalMaxDelay time.Duration
	Now                                          func() time.Time
	Metrics                                      *Metrics
	Logger                                       *zap.Logger
}

// Service is the actions stage: for each new finding it takes the rule's action in auto mode,
// or proposes it for approval, and notifies; it applies human decisions (notifier.Decider),
// lists proposals (notifier.ProposalLister), and expires the undecided ones. It is safe for
// concurrent use and across replicas sharing the store.
type Service struct {
	o        ServiceOptions
	guard    *Guard
	store    ProposalStore
	now      func() time.Time
	log      *zap.Logger
	refusals *refusals
	ttl      atomic.Int64 // of new proposals
}

// NewService returns the actions stage.
func NewService(o ServiceOptions) (*Service, error) {
	if o.Guard == nil || o.Client == nil || o.Store == nil || o.Claimer == nil || o.Notifier == nil {
		return nil, errors.New("actions: Guard, Client, Store, Claimer and Notifier are required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.TTL, DefaultProposalTTL)
	def(&o.Interval, DefaultInterval)
	def(&o.Retention, DefaultRetention)
	def(&o.Recent, DefaultRecent)
	def(&o.ExecTimeout, DefaultExecTimeout)
	def(&o.RefusalWindow, DefaultRefusalWindow)
	def(&o.RefusalQuiet, DefaultRefusalQuiet)
	def(&o.RefusalMaxDelay, DefaultRefusalMaxDelay)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &Service{o: o, guard: o.Guard, store: o.Store, now: o.Now, log: o.Logger,
		refusals: newRefusals(o.RefusalWindow, o.RefusalQuiet, o.RefusalMaxDelay)}
	s.SetProposalTTL(o.TTL)
	return s, nil
}

// SetProposalTTL changes the TTL of new proposals (a reload of rules.yaml); pending ones keep
// theirs.
func (s *Service) SetProposalTTL(d time.Duration) {
	if d <= 0 {
		d = DefaultProposalTTL
	}
	s.ttl.Store(int64(d))
}

func (s *Service) proposalTTL() time.Duration { return time.Duration(s.ttl.Load()) }

// Guard returns the service's guard.
func (s *Service) Guard() *Guard { return s.guard }

// ErrAfterAction is returned by Handle for a finding about a pod podmedic itself deleted or
// evicted: finding.ErrAfterAction.
var ErrAfterAction = finding.ErrAfterAction

// Handle takes a new finding through the stage: notify-only findings are notified; a finding
// about a pod podmedic itself deleted is dropped (ErrAfterAction); auto mode acts through the guard and
// notifies the finding with the outcome; approve mode stores a pending proposal and notifies
// the finding with it. A refused action is counted into one refusal notice per rule and
// reason, and the finding is notified without it. Handle is idempotent per finding: a retry
// after an error finds the proposal it made and notifies it again. An error means the finding
// was not delivered and should be retried.
func (s *Service) Handle(ctx context.Context, f *finding.Finding) error {
	a := f.Action
	if a == nil || a.Type == finding.ActionNotify || a.Mode == finding.ModeNotify {
		return s.notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Finding: f})
	}
	id := ProposalID(f)
	if p, err := s.store.Get(ctx, id); err == nil {
		// Handled before (a retried delivery): deliver what was decided then.
		s.audit(ctx, p)
		return s.notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Finding: f, Proposal: p, Outcome: p.Outcome})
	} else if !errors.Is(err, ErrKeyNotFound) {
		return err
	}
	if f.Pod != "" {
		acted, err := s.guard.actedOn(ctx, f.UID)
		if err != nil {
			return err
		}
		if acted != nil && acted.ID == id && a.Mode == finding.ModeAuto {
			// This very finding's action was taken by a replica that stopped before it
			// recorded and reported it: report it now, as taken.
			return s.taken(ctx, f, id, acted)
		}
		if acted != nil {
			s.o.Metrics.suppress()
			s.log.Info("finding about a pod podmedic deleted or evicted; not reported again",
				zap.String("kind", string(f.Kind)), zap.String("pod", f.Namespace+"/"+f.Pod))
			return ErrAfterAction
		}
	}
	req := &Request{ID: id, Finding: f, Action: *a}
	if err := s.plan(ctx, req, a.Mode == finding.ModeApprove); err != nil {
		if IsRefusal(err) {
			return s.refused(ctx, req, err)
		}
		return err
	}
	if a.Mode == finding.ModeAuto {
		return s.auto(ctx, req)
	}
	return s.propose(ctx, req)
}

// plan sets the request's target. A proposal pins the pod's UID and resourceVersion as read
// from the API now; a memory limit proposal targets the workload that owns the pod.
func (s *Service) plan(ctx context.Context, r *Request, pin bool) error {
	f := r.Finding
	switch r.Action.Type {
	case finding.ActionProposeMemoryLimit:
		t, err := ResolveWorkload(ctx, s.o.Client, f)
		if err != nil {
			return err
		}
		r.Target = t
	case finding.ActionAirflowClearTask:
		r.Target = AirflowTarget(f, r.Action)
	default:
		r.Target = finding.Target{Kind: "Pod", Namespace: f.Namespace, Name: f.Pod, UID: f.UID}
		if !pin {
			return nil // the guard reads the pod just before acting
		}
		pod, err := s.o.Client.CoreV1().Pods(f.Namespace).Get(ctx, f.Pod, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return &TargetGoneError{Target: r.Target.String()}
		}
		if err != nil {
			return fmt.Errorf("get pod %s/%s: %w", f.Namespace, f.Pod, err)
		}
		if string(pod.UID) != f.UID {
			return &TargetChangedError{Target: r.Target.String(), What: fmt.Sprintf("was replaced (uid %s -> %s)", f.UID, pod.UID)}
		}
		r.Target.ResourceVersion = pod.ResourceVersion
		r.Pod = pod
	}
	return nil
}

// advisory reports whether the request only advises (a memory limit podmedic cannot patch).
func (s *Service) advisory(r *Request) bool { return s.guard.Advisory(r) }

// auto takes the action now and records it.
func (s *Service) auto(ctx context.Context, r *Request) error {
	now := s.now()
	p := &finding.Proposal{ID: r.ID, Finding: *r.Finding, Action: r.Action, CreatedAt: now, ExpiresAt: now,
		Target: r.Target, DecidedBy: AutoDecider, DecidedAt: now}
	if s.advisory(r) {
		if err := s.guard.Admit(ctx, r, true); err != nil {
			return s.refused(ctx, r, err)
		}
		p.Advice = MemoryAdvice(r.Finding, r.Action, r.Target)
		p.State, p.Outcome = finding.StateExecuted, recorded(r, now)
		emit(s.o.Events, r.Target, r.Finding, corev1.EventTypeNormal, EventExecuted, r.Action.Type,
			p.Outcome.Message+" (auto mode"+why(r.Finding)+")")
	} else {
		out, err := s.guard.Do(ctx, r)
		if IsRefusal(err) {
			return s.refused(ctx, r, &guardDone{err})
		}
		if errors.Is(err, ErrNotAttempted) {
			return err // nothing done: the finding's delivery is retried
		}
		p.State, p.Outcome = finding.StateExecuted, &out
		if err != nil {
			p.State = finding.StateFailed
		}
	}
	if err := s.store.Create(ctx, p); err != nil && !errors.Is(err, ErrKeyExists) {
		// The action is taken; a missing record only loses the audit entry.
		s.o.Metrics.error("store")
		s.log.Error("recording an action taken failed", zap.String("id", p.ID), zap.Error(err))
	}
	s.o.Metrics.transition(p.State)
	s.audit(ctx, p)
	return s.notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Finding: r.Finding, Proposal: p, Outcome: p.Outcome})
}

// taken records and notifies an auto-mode action that the guard's marker shows was taken for
// this finding by a replica that stopped before it recorded the outcome.
func (s *Service) taken(ctx context.Context, f *finding.Finding, id string, m *actedMarker) error {
	target := finding.Target{Kind: "Pod", Namespace: f.Namespace, Name: f.Pod, UID: f.UID}
	p := &finding.Proposal{ID: id, Finding: *f, Action: *f.Action, CreatedAt: m.At, ExpiresAt: m.At, Target: target,
		DecidedBy: AutoDecider, DecidedAt: m.At, State: finding.StateExecuted,
		Outcome: &finding.Outcome{Result: finding.ResultExecuted, At: m.At, Message: fmt.Sprintf(
			"%s of %s done at %s (the replica that acted stopped before it reported it)", m.Action, target, m.At.UTC().Format("15:04:05Z"))}}
	if err := s.store.Create(ctx, p); err != nil && !errors.Is(err, ErrKeyExists) {
		return err
	}
	s.o.Metrics.transition(p.State)
	s.audit(ctx, p)
	return s.notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Finding: f, Proposal: p, Outcome: p.Outcome})
}

// propose stores a pending proposal and notifies the finding with it.
func (s *Service) propose(ctx context.Context, r *Request) error {
	if err := s.guard.Admit(ctx, r, false); err != nil {
		return s.refused(ctx, r, err)
	}
	// One proposal per owner at a time (and per cooldown): several pods of one Deployment
	// killed for memory make one proposal to patch it.
	if r.Action.Type == finding.ActionProposeMemoryLimit {
		hold := max(s.proposalTTL(), s.guard.Policy().cooldown(r.Finding.Rule), time.Second)
		won, err := s.o.Claimer.Claim(ctx, "proposed."+string(r.Action.Type)+"."+targetKey(r.Target), hold)
		if err != nil {
			return err
		}
		if !won {
			return s.refused(ctx, r, &CooldownError{Target: r.Target.String() + " (a proposal for it was made already)", Cooldown: hold})
		}
	}
	now := s.now()
	p := &finding.Proposal{ID: r.ID, Finding: *r.Finding, Action: r.Action, State: finding.StatePending,
		CreatedAt: now, ExpiresAt: now.Add(s.proposalTTL()), Target: r.Target}
	if s.advisory(r) {
		p.Advice = MemoryAdvice(r.Finding, r.Action, r.Target)
	}
	if err := s.store.Create(ctx, p); err != nil {
		if !errors.Is(err, ErrKeyExists) {
			return err
		}
		if p, err = s.store.Get(ctx, r.ID); err != nil {
			return err
		}
	} else {
		s.o.Metrics.transition(finding.StatePending)
		note := fmt.Sprintf("Proposed %s of %s as %s, waiting for approval until %s", r.Action.Type, r.Target, p.ID,
			p.ExpiresAt.UTC().Format("15:04:05Z"))
		emit(s.o.Events, r.Target, r.Finding, corev1.EventTypeNormal, EventProposed, r.Action.Type, note+" ("+because(r.Finding)+")")
	}
	s.audit(ctx, p)
	return s.notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Finding: r.Finding, Proposal: p})
}

// refused counts a refusal into its rule's and reason's notice and notifies the finding
// without an action outcome. The guard has counted and recorded the refusal already when it
// made it.
func (s *Service) refused(ctx context.Context, r *Request, err error) error {
	if !s.guardRecorded(err) {
		reason, _ := ReasonOf(err)
		s.o.Metrics.refused(r.Action.Type, reason)
		emit(s.o.Events, r.Target, r.Finding, corev1.EventTypeWarning, EventRefused, r.Action.Type,
			"Refused: "+err.Error()+" ("+string(r.Action.Mode)+" mode"+why(r.Finding)+")")
	}
	s.refusals.add(r.Finding, r.Action.Type, err, s.now())
	s.log.Info("action refused", zap.String("id", r.ID), zap.String("rule", r.Finding.Rule),
		zap.String("target", r.Target.String()), zap.Error(err))
	return s.notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Finding: r.Finding})
}

// guardRecorded reports whether the refusal came out of Guard.Do, which records it itself.
func (s *Service) guardRecorded(err error) bool {
	var g *guardDone
	return errors.As(err, &g)
}

// guardDone marks refusals returned by Guard.Do, which counted them and wrote their Event.
type guardDone struct{ error }

func (g *guardDone) Unwrap() error { return g.error }

func recorded(r *Request, now time.Time) *finding.Outcome {
	if p := r.Action.Params; p["target"] == spark.KindApplication {
		return &finding.Outcome{Result: finding.ResultRecorded, At: now, Message: fmt.Sprintf(
			"decision recorded; podmedic does not patch %s (--patch-spark-applications is off): make the change in the proposal's advice (spec.%s: memory %s, memoryOverhead %s)",
			r.Target, p["role"], p["memory"], p["memoryOverhead"])}
	}
	return &finding.Outcome{Result: finding.ResultRecorded, At: now, Message: fmt.Sprintf(
		"decision recorded; podmedic does not patch %s: make the change in the proposal's advice (container %s: memory limit %s, request %s)",
		r.Target, r.Action.Params["container"], r.Action.Params["limit"], r.Action.Params["request"])}
}

// Decide implements notifier.Decider: it approves or denies a pending proposal, exactly once
// across replicas (compare-and-set), and on approval executes the action through the guard
// before it returns. A decision on an unknown, expired or decided proposal is refused with a
// *DecisionError.
func (s *Service) Decide(ctx context.Context, id, user string, approve bool) (*finding.Proposal, error) {
	if user == "" {
		return nil, errors.New("a decision needs the name of who decides")
	}
	p, err := s.store.Get(ctx, id)
	if errors.Is(err, ErrKeyNotFound) {
		return nil, &DecisionError{Err: ErrUnknownProposal, Msg: fmt.Sprintf("there is no proposal %q", id)}
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if p.State != finding.StatePending {
		return p, decisionError(p)
	}
	if !now.Before(p.ExpiresAt) {
		if exp, err := s.expire(ctx, p, now); err == nil {
			p = exp
		}
		return p, &DecisionError{Err: ErrProposalExpired, Proposal: p, Msg: fmt.Sprintf(
			"proposal %s expired at %s without a decision; it was not executed", p.ID, p.ExpiresAt.UTC().Format("2006-01-02 15:04:05Z"))}
	}
	next := *p
	next.State, next.DecidedBy, next.DecidedAt = finding.StateDenied, user, now
	reason, verb := EventDenied, "Denied"
	if approve {
		next.State, reason, verb = finding.StateApproved, EventApproved, "Approved"
	}
	if err := s.store.Update(ctx, &next); err != nil {
		if !errors.Is(err, ErrRevisionMismatch) {
			return nil, err
		}
		// Someone else decided first: say who.
		cur, gerr := s.store.Get(ctx, id)
		if gerr != nil {
			return nil, gerr
		}
		return cur, decisionError(cur)
	}
	s.transitioned(ctx, &next, reason, fmt.Sprintf("%s by %s", verb, user))
	if !approve {
		return &next, nil
	}
	// The execution outlives a cancelled caller (a closed HTTP request), bounded.
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.ExecTimeout)
	defer cancel()
	return s.execute(ectx, &next), nil
}

// execute runs an approved proposal through the guard and records the outcome.
func (s *Service) execute(ctx context.Context, p *finding.Proposal) *finding.Proposal {
	r := &Request{ID: p.ID, Finding: &p.Finding, Action: p.Action, Target: p.Target, ApprovedBy: p.DecidedBy}
	var out finding.Outcome
	state, event := finding.StateExecuted, ""
	if s.advisory(r) {
		out, event = *recorded(r, s.now()), EventExecuted
	} else {
		// A human approved and waits for the outcome: while nothing could be attempted (the
		// store or the API not answering), try again until ExecTimeout.
		var err error
		_ = retry.Until(ctx, retry.Exponential(250*time.Millisecond, 4*time.Second), func(ctx context.Context) (bool, error) {
			out, err = s.guard.Do(ctx, r)
			if errors.Is(err, ErrNotAttempted) {
				s.log.Info("approved action not attempted yet; retrying", zap.String("id", p.ID), zap.Error(err))
				return false, nil
			}
			return true, nil
		})
		if err != nil {
			state = finding.StateFailed
		}
	}
	for range casAttempts {
		next := *p
		next.State, next.Outcome = state, &out
		err := s.store.Update(ctx, &next)
		if err == nil {
			s.transitioned(ctx, &next, event, out.Message)
			return &next
		}
		if !errors.Is(err, ErrRevisionMismatch) {
			s.o.Metrics.error("store")
			s.log.Error("recording the outcome of an approved action failed", zap.String("id", p.ID), zap.Error(err))
			return &next
		}
		cur, gerr := s.store.Get(ctx, p.ID)
		if gerr != nil || cur.State != finding.StateApproved {
			// Resolved meanwhile (marked failed by a maintenance loop that took us for dead).
			s.log.Warn("an approved proposal was resolved while it executed", zap.String("id", p.ID))
			if cur != nil {
				return cur
			}
			return &next
		}
		p = cur
	}
	return p
}

// transitioned records a transition: audit entry, Event (unless empty reason), notice.
func (s *Service) transitioned(ctx context.Context, p *finding.Proposal, reason, note string) {
	s.o.Metrics.transition(p.State)
	s.audit(ctx, p)
	if reason != "" {
		eventtype := corev1.EventTypeNormal
		if p.State == finding.StateFailed {
			eventtype = corev1.EventTypeWarning
		}
		emit(s.o.Events, p.Target, &p.Finding, eventtype, reason, p.Action.Type,
			fmt.Sprintf("Proposal %s: %s (%s)", p.ID, note, because(&p.Finding)))
	}
	if err := s.notify(ctx, &finding.Notice{Type: finding.NoticeDecision, Finding: &p.Finding, Proposal: p, Outcome: p.Outcome}); err != nil {
		s.o.Metrics.error("notify")
		s.log.Warn("decision notice not delivered", zap.String("id", p.ID), zap.String("state", string(p.State)), zap.Error(err))
	}
	s.log.Info("proposal", zap.String("id", p.ID), zap.String("state", string(p.State)), zap.String("by", p.DecidedBy),
		zap.String("target", p.Target.String()), zap.String("note", note))
}

// expire marks an overdue pending proposal expired (compare-and-set: one replica does).
func (s *Service) expire(ctx context.Context, p *finding.Proposal, now time.Time) (*finding.Proposal, error) {
	next := *p
	next.State, next.DecidedBy, next.DecidedAt = finding.StateExpired, SystemDecider, now
	next.Outcome = &finding.Outcome{Result: finding.ResultRefused, At: now, Message: fmt.Sprintf(
		"expired after %s without a decision; %s of %s was not executed", p.ExpiresAt.Sub(p.CreatedAt).Round(time.Second), p.Action.Type, p.Target)}
	if err := s.store.Update(ctx, &next); err != nil {
		return nil, err
	}
	s.transitioned(ctx, &next, EventExpired, next.Outcome.Message)
	return &next, nil
}

// Proposals implements notifier.ProposalLister: the pending proposals and those decided in
// the last Recent, newest first.
func (s *Service) Proposals(ctx context.Context) ([]finding.Proposal, error) {
	all, err := s.store.List(ctx)
	if err != nil {
		return nil, err
	}
	cutoff := s.now().Add(-s.o.Recent)
	out := all[:0]
	for _, p := range all {
		if p.State == finding.StatePending || p.DecidedAt.After(cutoff) || p.CreatedAt.After(cutoff) {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Run runs the maintenance loop until ctx ends: it expires overdue proposals, fails approvals
// whose execution was interrupted, forgets old proposals, refreshes podmedic_proposals, and
// sends the refusal notices that are due. It returns nil when ctx ends.
func (s *Service) Run(ctx context.Context) error {
	maint := time.NewTicker(s.o.Interval)
	defer maint.Stop()
	flush := time.NewTicker(max(min(s.o.RefusalQuiet/4, time.Second), 10*time.Millisecond))
	defer flush.Stop()
	s.Maintain(ctx)
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			s.refusals.flush(fctx, s.now(), true, s.o.Claimer, s.notifyRefusal, s.log)
			cancel()
			return nil
		case <-maint.C:
			s.Maintain(ctx)
		case <-flush.C:
			s.refusals.flush(ctx, s.now(), false, s.o.Claimer, s.notifyRefusal, s.log)
		}
	}
}

// FlushRefusals sends every pending refusal notice whose window allows it now (tests, and
// shutdown).
func (s *Service) FlushRefusals(ctx context.Context) {
	s.refusals.flush(ctx, s.now(), true, s.o.Claimer, s.notifyRefusal, s.log)
}

// notifyRefusal notifies a refusal notice, then records it on the audit stream (a record that
// cannot be published is counted and logged: the notice went out).
func (s *Service) notifyRefusal(ctx context.Context, n *finding.Notice, rec *audit.RefusalRecord) error {
	if err := s.notify(ctx, n); err != nil {
		return err
	}
	if s.o.Audit == nil || s.o.RefusalSubject == "" {
		return nil
	}
	id := "refusal/" + tokenKey(rec.Rule) + "/" + tokenKey(string(rec.Reason)) + "/" + strconv.FormatInt(rec.First.UnixNano(), 10)
	if err := s.o.Audit.PublishJSON(ctx, s.o.RefusalSubject, id, rec); err != nil {
		s.o.Metrics.error("audit")
		s.log.Error("audit record of a refusal notice not published", zap.String("rule", rec.Rule),
			zap.String("reason", string(rec.Reason)), zap.Int("count", rec.Count), zap.Error(err))
	}
	return nil
}

// Maintain runs one round of the maintenance loop.
func (s *Service) Maintain(ctx context.Context) {
	all, err := s.store.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.o.Metrics.error("store")
			s.log.Warn("listing proposals failed", zap.Error(err))
		}
		return
	}
	now := s.now()
	counts := map[finding.ProposalState]int{}
	for i := range all {
		p := &all[i]
		switch {
		case p.State == finding.StatePending && !now.Before(p.ExpiresAt):
			if next, err := s.expire(ctx, p, now); err == nil {
				p = next
			} else if !errors.Is(err, ErrRevisionMismatch) {
				s.log.Warn("expiring a proposal failed", zap.String("id", p.ID), zap.Error(err))
			}
		case p.State == finding.StateApproved && now.Sub(p.DecidedAt) > 2*s.o.ExecTimeout:
			next := *p
			next.State = finding.StateFailed
			next.Outcome = &finding.Outcome{Result: finding.ResultFailed, At: now, Message: fmt.Sprintf(
				"approved by %s but no outcome was recorded (podmedic stopped while executing); check %s", p.DecidedBy, p.Target)}
			if err := s.store.Update(ctx, &next); err == nil {
				s.transitioned(ctx, &next, EventFailed, next.Outcome.Message)
				p = &next
			}
		case p.State.Final() && now.Sub(latest(p)) > s.o.Retention:
			if err := s.store.Delete(ctx, p.ID, p.Revision); err == nil {
				continue
			}
		}
		counts[p.State]++
	}
	s.o.Metrics.setProposals(counts)
	if err := s.guard.PruneMarkers(ctx, now.Add(-s.o.Retention)); err != nil && ctx.Err() == nil {
		s.log.Warn("pruning markers failed", zap.Error(err))
	}
}

func latest(p *finding.Proposal) time.Time {
	t := p.CreatedAt
	if p.DecidedAt.After(t) {
		t = p.DecidedAt
	}
	if p.Outcome != nil && p.Outcome.At.After(t) {
		t = p.Outcome.At
	}
	return t
}

// audit publishes the proposal in its current state; the message id makes a repeat (a retry,
// another replica) a no-op.
func (s *Service) audit(ctx context.Context, p *finding.Proposal) {
	if s.o.Audit == nil {
		return
	}
	if err := s.o.Audit.PublishJSON(ctx, s.o.AuditSubject, p.ID+"/"+string(p.State), p); err != nil {
		s.o.Metrics.error("audit")
		s.log.Error("audit record not published", zap.String("id", p.ID), zap.String("state", string(p.State)), zap.Error(err))
	}
}

func (s *Service) notify(ctx context.Context, n *finding.Notice) error {
	return s.o.Notifier.Notify(ctx, n)
}

// OverrideBook reads and ends memory overrides (overrides.Store).
type OverrideBook interface {
	Get(ctx context.Context, id string) (*overrides.Override, error)
	Revoke(ctx context.Context, id, by string) (*overrides.Override, error)
}

// RevokeOverride implements notifier.Revoker: it ends a memory override now, so pods created
// from then on get the memory their task asks for. Revoking one already revoked says so.
func (s *Service) RevokeOverride(ctx context.Context, id, user string) (string, error) {
	if user == "" {
		return "", errors.New("a revocation needs the name of who revokes")
	}
	if s.o.Overrides == nil {
		return "", errors.New("memory overrides are off in this podmedic (no --webhook-addr)")
	}
	o, err := s.o.Overrides.Revoke(ctx, id, user)
	if errors.Is(err, overrides.ErrAudit) && o != nil {
		s.log.Warn("override revoked; its audit record was not written", zap.String("override", id), zap.Error(err))
		err = nil
	}
	if err != nil {
		return "", err
	}
	if o.RevokedBy != user {
		return fmt.Sprintf("override %s was revoked already, by %s at %s", o.ID, o.RevokedBy, o.RevokedAt.UTC().Format(time.RFC3339)), nil
	}
	s.log.Info("memory override revoked", zap.String("override", o.ID), zap.String("by", user))
	return fmt.Sprintf("override %s of %s.%s (%s) revoked: pods created from now on get the memory their task asks for",
		o.ID, o.Task.DagID, o.Task.TaskID, o.Task.Of()), nil
}
