package rules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/audit"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/retry"
	"github.com/podmedic/podmedic/spark"
)

// DedupTTL is how long a finding's key is remembered: the same failure seen again within it
// (a resync, a restart of podmedic, another replica) produces no second finding.
const DedupTTL = 7 * 24 * time.Hour

// Claims is what the rule handler needs of the bus beyond consuming: claiming a finding key
// exactly once across replicas on behalf of the observation being handled (bus.ClaimFor: a
// redelivery of that observation wins the claim again until it is settled), settling the
// claim once the finding is delivered, releasing it when delivery failed, and recording the
// finding on the audit stream.
type Claims interface {
	ClaimFor(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	Settle(ctx context.Context, key, owner string, ttl time.Duration) error
	Release(ctx context.Context, key string) error
	PublishJSON(ctx context.Context, subject, msgID string, v any) error
}

// Stage takes a new finding on from the rules: the actions stage, which acts or proposes and
// notifies. It returns finding.ErrAfterAction for a finding that needs nothing (about a pod
// podmedic deleted itself); any other error makes the handler retry the observation.
type Stage interface {
	Handle(ctx context.Context, f *finding.Finding) error
}

// StageFunc adapts a function to a Stage.
type StageFunc func(ctx context.Context, f *finding.Finding) error

// Handle calls fn.
func (fn StageFunc) Handle(ctx context.Context, f *finding.Finding) error { return fn(ctx, f) }

// Follower follows pods beyond their findings: the actions stage tells the thread of an
// approved memory raise when a pod of the task's next try runs with it.
type Follower interface {
	FollowPod(ctx context.Context, pod *corev1.Pod) error
}

// HandlerOptions configure the rule handler.
type HandlerOptions struct {
	// Live is the engine in force, its view of the cluster and the clock.
	Live *Live
	// Claims claims, settles and records findings (the bus).
	Claims Claims
	// Stage takes each new finding.
	Stage Stage
	// Follower sees every pod observed (after its findings); nil: none. An error retries the
	// observation, as a failed delivery does.
	Follower Follower
	// Logs adds log tails to TaskFailed findings; nil: none.
	Logs   *LogTailer
	Logger *zap.Logger
	// Registerer registers podmedic_findings_total and podmedic_findings_repeated_total.
	Registerer prometheus.Registerer
}

// Handler is the rule handler: it turns one observation into findings and delivers each new
// finding once (claim -> record -> deliver -> settle).
type Handler struct {
	live     *Live
	cluster  string
	logs     *LogTailer
	store    Claims
	stage    Stage
	follower Follower
	log      *zap.Logger
	findings *prometheus.CounterVec
	repeats  prometheus.Counter
}

// NewHandler returns the rule handler.
func NewHandler(o HandlerOptions) *Handler {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{
		live: o.Live, cluster: o.Live.Engine().Config().Cluster, logs: o.Logs, store: o.Claims, stage: o.Stage, follower: o.Follower, log: log,
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_findings_total",
			Help: "New findings (first sighting of a failure), by kind and rule.",
		}, []string{"kind", "rule"}),
		repeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podmedic_findings_repeated_total",
			Help: "Findings seen again (resync, restart, another replica) and not reported twice.",
		}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(h.findings, h.repeats)
	}
	return h
}

// Handle implements bus.Handler.
func (p *Handler) Handle(ctx context.Context, o *bus.Observation) error {
	e, view, now := p.live.Engine(), p.live.View, p.live.Now()
	var found []finding.Finding
	var followed *corev1.Pod
	switch o.Kind {
	case bus.KindPod:
		if o.Type == bus.Deleted {
			return nil
		}
		pod, err := DecodePod(o.Object) // a fast path for trimmed pods, encoding/json otherwise
		if err != nil {
			return fmt.Errorf("%w: decode pod %s/%s: %v", bus.ErrPermanent, o.Namespace, o.Name, err)
		}
		found = e.EvaluatePod(pod, view, now)
		followed = pod
	case bus.KindPVC:
		if o.Type == bus.Deleted {
			return nil
		}
		var pvc corev1.PersistentVolumeClaim
		if err := json.Unmarshal(o.Object, &pvc); err != nil {
			return fmt.Errorf("%w: decode pvc %s/%s: %v", bus.ErrPermanent, o.Namespace, o.Name, err)
		}
		found = e.EvaluatePVC(&pvc, view, now)
	case bus.KindSparkApp:
		if o.Type == bus.Deleted {
			return nil
		}
		app, err := spark.Decode(o.Object)
		if err != nil {
			return fmt.Errorf("%w: %s/%s: %v", bus.ErrPermanent, o.Namespace, o.Name, err)
		}
		found = e.EvaluateSparkApp(app, view, now)
	case bus.KindScheduledSparkApp:
		if o.Type == bus.Deleted {
			return nil
		}
		s, err := spark.DecodeScheduled(o.Object)
		if err != nil {
			return fmt.Errorf("%w: %s/%s: %v", bus.ErrPermanent, o.Namespace, o.Name, err)
		}
		found = e.EvaluateScheduledSparkApp(s, view, now)
	case bus.KindEvent:
		// An event re-evaluates the object it is about, as the view knows it now.
		var ev corev1.Event
		if err := json.Unmarshal(o.Object, &ev); err != nil {
			return fmt.Errorf("%w: decode event %s/%s: %v", bus.ErrPermanent, o.Namespace, o.Name, err)
		}
		io := ev.InvolvedObject
		switch io.Kind {
		case bus.KindPod:
			if pod := view.Pod(io.Namespace, io.Name); pod != nil && (io.UID == "" || io.UID == pod.UID) {
				found = e.EvaluatePod(pod, view, now)
			}
		case bus.KindPVC:
			if pvc := view.PVC(io.Namespace, io.Name); pvc != nil && (io.UID == "" || io.UID == pvc.UID) {
				found = e.EvaluatePVC(pvc, view, now)
			}
		}
	}
	for i := range found {
		if err := p.deliver(ctx, e, view, &found[i], o.MsgID()); err != nil {
			return err
		}
	}
	if followed != nil && p.follower != nil {
		return p.follower.FollowPod(ctx, followed)
	}
	return nil
}

// deliver reports a finding the first time it is seen anywhere: it claims the finding's key
// on behalf of the observation (owner) that shows it (one winner across replicas and
// restarts), records it on the audit stream and hands it to the actions stage, which acts or
// proposes and notifies, then settles the claim. When recording or the stage fails the claim
// is released and the observation is retried (the stage is idempotent per finding). When the
// handler dies between claim and settle (a killed replica, a NATS node lost with the answer
// to the claim), the observation comes back and its owner wins the claim again: the finding
// is delivered, not lost.
func (p *Handler) deliver(ctx context.Context, e *Engine, view View, f *finding.Finding, owner string) error {
	key := f.Key()
	won, err := p.store.ClaimFor(ctx, "finding."+key, owner, DedupTTL)
	if err != nil {
		return err
	}
	if !won {
		p.repeats.Inc()
		return nil
	}
	p.logs.enrich(ctx, f, e, view)
	subject := audit.FindingSubject(p.cluster, f.Kind)
	err = p.store.PublishJSON(ctx, subject, key, f)
	if err == nil {
		err = p.stage.Handle(ctx, f)
		if errors.Is(err, finding.ErrAfterAction) {
			p.settle(ctx, f, owner) // about a pod podmedic deleted itself: no new finding
			return nil
		}
	}
	if err != nil {
		if rerr := p.store.Release(context.WithoutCancel(ctx), "finding."+key); rerr != nil {
			p.log.Error("releasing the claim of an undelivered finding failed; it may not be reported",
				zap.String("finding", f.Name()), zap.Error(rerr))
		}
		return fmt.Errorf("deliver %s %s: %w", f.Kind, f.Name(), err)
	}
	p.settle(ctx, f, owner)
	p.findings.WithLabelValues(string(f.Kind), f.Rule).Inc()
	p.log.Info("finding", zap.String("kind", string(f.Kind)), zap.String("rule", f.Rule),
		zap.String("namespace", f.Namespace), zap.String("pod", f.Pod), zap.String("container", f.Container))
	return nil
}

// settleFor bounds the retries of settling a delivered finding's claim: a NATS cluster elects
// a new stream leader within seconds.
const settleFor = 30 * time.Second

// settleAttempt bounds one attempt to settle (nats.go's JetStream API default).
const settleAttempt = 5 * time.Second

// settle closes the claim of a delivered finding, retrying for up to settleFor (the
// observation is held in progress meanwhile). A claim left open would let a redelivery of the
// same observation — after an ack lost with a NATS node, say — report the finding again. So
// settling deliberately outlives the handler's ctx (cancelled when the consumer is restarted
// after a NATS outage, or at the drain deadline): its retries end when settleFor is over.
func (p *Handler) settle(ctx context.Context, f *finding.Finding, owner string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleFor)
	defer cancel()
	var err error
	_ = retry.Until(ctx, retry.Exponential(250*time.Millisecond, 4*time.Second), func(ctx context.Context) (bool, error) {
		// Each attempt has its own deadline: one attempt made while NATS is away must not
		// take the whole of settleFor (a KV call waits until its ctx's deadline).
		actx, cancel := context.WithTimeout(ctx, settleAttempt)
		defer cancel()
		if err = p.store.Settle(actx, "finding."+f.Key(), owner, DedupTTL); err != nil {
			p.log.Info("settling the claim of a delivered finding failed; retrying", zap.String("finding", f.Name()), zap.Error(err))
		}
		return err == nil, nil
	})
	if err != nil {
		p.log.Warn("settling the claim of a delivered finding failed; a redelivery may report it again",
			zap.String("finding", f.Name()), zap.Error(err))
	}
}
