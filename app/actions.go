package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/audit"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
)

// ActionsOptions tune the actions stage; zero values take the defaults of actions.Service.
type ActionsOptions struct {
	// Namespace is podmedic's own namespace, where it never acts; default $POD_NAMESPACE.
	Namespace string
	// Getenv reads the Airflow credentials (AIRFLOW_USERNAME/AIRFLOW_PASSWORD or
	// AIRFLOW_TOKEN, or their *_FILE variants); default os.Getenv.
	Getenv func(string) string
	// Interval of the maintenance loop (expiry of proposals); default 15s.
	Interval time.Duration
	// RefusalQuiet and RefusalWindow: refusals are reported once per rule and reason per
	// window, after quiet without a new one. Defaults 5s and 1h.
	RefusalQuiet, RefusalWindow time.Duration
}

// Stage hands a new finding to what follows the rules: the actions stage, which acts or
// proposes and notifies.
type Stage interface {
	Handle(ctx context.Context, f *finding.Finding) error
}

// notifyStage only notifies: the stage of a pipeline without actions (tests).
type notifyStage struct{ n notifier.Notifier }

func (s notifyStage) Handle(ctx context.Context, f *finding.Finding) error {
	return s.n.Notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Finding: f})
}

// actionsStage is the running actions stage and what it needs stopped at the end.
type actionsStage struct {
	svc         *actions.Service
	store       actions.ProposalStore // the service's
	broadcaster events.EventBroadcaster
}

// newActions builds the actions stage over the bus (proposals and budgets in the proposals
// bucket, cooldowns and refusal notices through the dedup claims, the audit stream), with the
// pipeline's engine re-checking findings on live pods. Events are recorded with the events.k8s.io
// API from ctx on.
func newActions(ctx context.Context, o ActionsOptions, cfg *config.Config, client kubernetes.Interface, b *bus.Bus,
	p *pipeline, n notifier.Notifier, log *zap.Logger, reg prometheus.Registerer) (*actionsStage, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	execs := actions.Executors{
		finding.ActionDeletePod:          actions.DeletePod{Client: client},
		finding.ActionEvictPod:           actions.EvictPod{Client: client},
		finding.ActionProposeMemoryLimit: actions.PatchMemoryLimit{Client: client},
		finding.ActionNotify:             actions.Nop,
	}
	if cfg.Airflow.URL != "" {
		creds, err := actions.AirflowCredentialsFromEnv(getenv)
		if err != nil {
			return nil, fmt.Errorf("airflow credentials: %w", err)
		}
		ac, err := actions.NewAirflowClient(cfg.Airflow.URL, cfg.Airflow.APIVersion, cfg.Airflow.Timeout.Duration, creds)
		if err != nil {
			return nil, err
		}
		execs[finding.ActionAirflowClearTask] = actions.AirflowClearTask{Client: ac}
		log.Info("airflow-clear-task enabled", zap.String("url", cfg.Airflow.URL), zap.String("api_version", cfg.Airflow.APIVersion),
			zap.Stringer("auth", creds))
	}

	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	if err := broadcaster.StartRecordingToSinkWithContext(ctx); err != nil {
		return nil, fmt.Errorf("event recorder: %w", err)
	}
	var recorder events.EventRecorder = broadcaster.NewRecorder(scheme.Scheme, "podmedic")
	if cfg.DryRun {
		recorder = nil // a dry run writes nothing to the cluster, Events included
	}

	kv := JetStreamKV{KV: b.Proposals()}
	metrics := actions.NewMetrics(reg)
	guard, err := actions.NewGuard(actions.GuardOptions{
		Client: client, Executor: execs, DryRun: cfg.DryRun, Policy: Policy(cfg), KV: kv, Claimer: b,
		Rechecker: engineRechecker{p: p}, Namespace: o.Namespace, Events: recorder, Now: p.now,
		Metrics: metrics, Logger: log.Named("guard"),
	})
	if err != nil {
		broadcaster.Shutdown()
		return nil, err
	}
	store := actions.KVProposalStore{KV: kv}
	svc, err := actions.NewService(actions.ServiceOptions{
		Guard: guard, Client: client, Store: store, Claimer: b, Notifier: n,
		Audit: b, AuditSubject: audit.Subject(cfg.Cluster, audit.Proposal),
		RefusalSubject: audit.Subject(cfg.Cluster, audit.Refusal), Events: recorder,
		TTL: cfg.Proposals.TTL.Duration, Interval: o.Interval, RefusalQuiet: o.RefusalQuiet, RefusalWindow: o.RefusalWindow,
		Now: p.now, Metrics: metrics, Logger: log,
	})
	if err != nil {
		broadcaster.Shutdown()
		return nil, err
	}
	return &actionsStage{svc: svc, store: store, broadcaster: broadcaster}, nil
}

// applyActions puts a reloaded rules.yaml's budgets, cooldowns and proposal TTL in force.
// (dry_run and airflow take effect at the next start.)
func (a *actionsStage) applyActions(cfg *config.Config) {
	a.svc.Guard().SetPolicy(Policy(cfg))
	a.svc.SetProposalTTL(cfg.Proposals.TTL.Duration)
}

// Policy maps rules.yaml's budgets and cooldowns onto the guard's policy.
func Policy(cfg *config.Config) actions.Policy {
	limit := func(b *config.Budget) *actions.Limit {
		if b == nil {
			return nil
		}
		return &actions.Limit{Max: b.Max, Window: b.Window.Duration}
	}
	p := actions.Policy{Total: limit(cfg.Budgets.Total), PerNamespace: limit(cfg.Budgets.PerNamespace),
		Cooldown: cfg.Cooldown.Duration, Rules: map[string]actions.RulePolicy{}}
	for _, r := range cfg.Rules {
		if r.Action == nil {
			continue
		}
		rp := actions.RulePolicy{Budget: limit(r.Action.Budget)}
		if r.Action.Cooldown != nil {
			d := r.Action.Cooldown.Duration
			rp.Cooldown = &d
		}
		p.Rules[r.Name] = rp
	}
	return p
}

// engineRechecker re-evaluates a finding with the pipeline's rules engine on a pod just read
// from the API: it holds when the engine still finds a failure of the same kind (and
// container).
type engineRechecker struct{ p *pipeline }

func (r engineRechecker) Recheck(_ context.Context, f *finding.Finding, pod *corev1.Pod) (bool, string) {
	e := r.p.engine.Load()
	for _, g := range e.EvaluatePod(pod, r.p.view, r.p.now()) {
		if g.Kind == f.Kind && g.Container == f.Container {
			return true, ""
		}
	}
	phase := string(pod.Status.Phase)
	if pod.DeletionTimestamp != nil {
		phase += ", terminating"
	}
	return false, fmt.Sprintf("re-evaluated as it is now (%s), the pod is no longer %s", phase, f.Kind)
}

// JetStreamKV adapts a JetStream KV bucket to actions.KV.
type JetStreamKV struct{ KV jetstream.KeyValue }

var (
	_ actions.KV          = JetStreamKV{}
	_ actions.EntryLister = JetStreamKV{}
)

// Get implements actions.KV.
func (k JetStreamKV) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := k.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, fmt.Errorf("%s: %w", key, actions.ErrKeyNotFound)
	}
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}

// Create implements actions.KV.
func (k JetStreamKV) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := k.KV.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%s: %w", key, actions.ErrKeyExists)
	}
	return rev, err
}

// Update implements actions.KV.
func (k JetStreamKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	rev, err := k.KV.Update(ctx, key, value, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("%s: %w", key, actions.ErrRevisionMismatch)
	}
	return rev, err
}

// Delete implements actions.KV: a purge, so the key's history goes too.
func (k JetStreamKV) Delete(ctx context.Context, key string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	err := k.KV.Purge(ctx, key, opts...)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || rev > 0 && errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%s: %w", key, actions.ErrRevisionMismatch)
	}
	return err
}

// Keys implements actions.KV.
func (k JetStreamKV) Keys(ctx context.Context, prefix string) ([]string, error) {
	lister, err := k.KV.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for key := range lister.Keys() {
		if !seen[key] { // a busy bucket may list a key twice
			seen[key] = true
			out = append(out, key)
		}
	}
	return out, ctx.Err()
}

// Entries implements actions.EntryLister: one watch of the prefix delivers the latest value
// of every key.
func (k JetStreamKV) Entries(ctx context.Context, prefix string) ([]actions.Entry, error) {
	w, err := k.KV.WatchFiltered(ctx, []string{prefix + ">"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	latest := map[string]actions.Entry{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watch of " + prefix + " stopped")
			}
			if e == nil { // every current value delivered
				out := make([]actions.Entry, 0, len(latest))
				for _, v := range latest {
					out = append(out, v)
				}
				return out, nil
			}
			if e.Operation() == jetstream.KeyValuePut {
				latest[e.Key()] = actions.Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision()}
			} else {
				delete(latest, e.Key())
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// The actions stage is what Slack and the inbox decide through and list.
var (
	_ notifier.Decider        = (*actions.Service)(nil)
	_ notifier.ProposalLister = (*actions.Service)(nil)
	_ actions.Notifier        = notifier.Notifier(nil)
)

// Decide approves or denies a proposal, as Slack and the local inbox do (notifier.Decider).
func (h *Handle) Decide(ctx context.Context, id, user string, approve bool) (*finding.Proposal, error) {
	return h.actions.svc.Decide(ctx, id, user, approve)
}

// Proposals lists the pending and recent proposals, newest first (notifier.ProposalLister).
func (h *Handle) Proposals(ctx context.Context) ([]finding.Proposal, error) {
	return h.actions.svc.Proposals(ctx)
}

// Actions returns the actions stage (notifier.Decider and notifier.ProposalLister).
func (h *Handle) Actions() *actions.Service { return h.actions.svc }
