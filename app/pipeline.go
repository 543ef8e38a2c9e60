package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/audit"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/retry"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/rules"
)

// DedupTTL is how long a finding's key is remembered: the same failure seen again within it
// (a resync, a restart of podmedic, another replica) produces no second finding.
const DedupTTL = 7 * 24 * time.Hour

// Store is what the pipeline needs of the bus beyond consuming: claiming a finding key exactly
// once across replicas on behalf of the observation being handled (bus.ClaimFor: a redelivery
// of that observation wins the claim again until it is settled), settling the claim once the
// finding is delivered, releasing it when delivery failed, and recording the finding.
type Store interface {
	ClaimFor(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	Settle(ctx context.Context, key, owner string, ttl time.Duration) error
	Release(ctx context.Context, key string) error
	PublishJSON(ctx context.Context, subject, msgID string, v any) error
}

// pipeline is the rule handler: it turns one observation into findings and delivers each new
// finding once.
type pipeline struct {
	logs     *logTailer // adds log tails to TaskFailed findings; nil: none
	engine   atomic.Pointer[rules.Engine]
	view     rules.View
	store    Store
	notify   notifier.Notifier
	stage    Stage // takes each new finding to the actions stage, which notifies
	cluster  string
	now      func() time.Time
	log      *zap.Logger
	findings *prometheus.CounterVec
	repeats  prometheus.Counter
}

func newPipeline(e *rules.Engine, view rules.View, store Store, n notifier.Notifier, log *zap.Logger, reg prometheus.Registerer) *pipeline {
	p := &pipeline{
		view: view, store: store, notify: n, stage: notifyStage{n}, cluster: e.Config().Cluster, now: time.Now, log: log,
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_findings_total",
			Help: "New findings (first sighting of a failure), by kind and rule.",
		}, []string{"kind", "rule"}),
		repeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "podmedic_findings_repeated_total",
			Help: "Findings seen again (resync, restart, another replica) and not reported twice.",
		}),
	}
	reg.MustRegister(p.findings, p.repeats)
	p.engine.Store(e)
	return p
}

// handle implements bus.Handler.
func (p *pipeline) handle(ctx context.Context, o *bus.Observation) error {
	e, now := p.engine.Load(), p.now()
	var found []finding.Finding
	switch o.Kind {
	case bus.KindPod:
		if o.Type == bus.Deleted {
			return nil
		}
		pod, err := rules.DecodePod(o.Object) // a fast path for trimmed pods, encoding/json otherwise
		if err != nil {
			return fmt.Errorf("%w: decode pod %s/%s: %v", bus.ErrPermanent, o.Namespace, o.Name, err)
		}
		found = e.EvaluatePod(pod, p.view, now)
	case bus.KindPVC:
		if o.Type == bus.Deleted {
			return nil
		}
		var pvc corev1.PersistentVolumeClaim
		if err := json.Unmarshal(o.Object, &pvc); err != nil {
			return fmt.Errorf("%w: decode pvc %s/%s: %v", bus.ErrPermanent, o.Namespace, o.Name, err)
		}
		found = e.EvaluatePVC(&pvc, p.view, now)
	case bus.KindEvent:
		// An event re-evaluates the object it is about, as the view knows it now.
		var ev corev1.Event
		if err := json.Unmarshal(o.Object, &ev); err != nil {
			return fmt.Errorf("%w: decode event %s/%s: %v", bus.ErrPermanent, o.Namespace, o.Name, err)
		}
		io := ev.InvolvedObject
		switch io.Kind {
		case bus.KindPod:
			if pod := p.view.Pod(io.Namespace, io.Name); pod != nil && (io.UID == "" || io.UID == pod.UID) {
				found = e.EvaluatePod(pod, p.view, now)
			}
		case bus.KindPVC:
			if pvc := p.view.PVC(io.Namespace, io.Name); pvc != nil && (io.UID == "" || io.UID == pvc.UID) {
				found = e.EvaluatePVC(pvc, p.view, now)
			}
		}
	}
	for i := range found {
		if err := p.deliver(ctx, &found[i], o.MsgID()); err != nil {
			return err
		}
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
func (p *pipeline) deliver(ctx context.Context, f *finding.Finding, owner string) error {
	key := f.Key()
	won, err := p.store.ClaimFor(ctx, "finding."+key, owner, DedupTTL)
	if err != nil {
		return err
	}
	if !won {
		p.repeats.Inc()
		return nil
	}
	p.logs.enrich(ctx, f)
	subject := audit.FindingSubject(p.cluster, f.Kind)
	err = p.store.PublishJSON(ctx, subject, key, f)
	if err == nil {
		err = p.stage.Handle(ctx, f)
		if errors.Is(err, actions.ErrAfterAction) {
			p.settle(ctx, f, owner) // about a pod podmedic deleted itself: no new finding
			return nil
		}
	}
	if err != nil {
		if rerr := p.store.Release(context.WithoutCancel(ctx), "finding."+key); rerr != nil {
			p.log.Error("releasing the claim of an undelivered finding failed; it may not be reported",
				zap.String("finding", f.Target()), zap.Error(rerr))
		}
		return fmt.Errorf("deliver %s %s: %w", f.Kind, f.Target(), err)
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

// settle closes the claim of a delivered finding, retrying for up to settleFor (the
// observation is held in progress meanwhile) or until ctx ends. A claim left open would let a
// redelivery of the same observation — after an ack lost with a NATS node, say — report the
// finding again.
func (p *pipeline) settle(ctx context.Context, f *finding.Finding, owner string) {
	ctx, cancel := context.WithTimeout(ctx, settleFor)
	defer cancel()
	var err error
	_ = retry.Until(ctx, retry.Exponential(250*time.Millisecond, 4*time.Second), func(ctx context.Context) (bool, error) {
		if err = p.store.Settle(ctx, "finding."+f.Key(), owner, DedupTTL); err != nil {
			p.log.Info("settling the claim of a delivered finding failed; retrying", zap.String("finding", f.Target()), zap.Error(err))
		}
		return err == nil, nil
	})
	if err != nil {
		p.log.Warn("settling the claim of a delivered finding failed; a redelivery may report it again",
			zap.String("finding", f.Target()), zap.Error(err))
	}
}
