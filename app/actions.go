package app

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/airflow"
	"github.com/podmedic/podmedic/audit"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/overrides"
	"github.com/podmedic/podmedic/rules"
)

// ActionsOptions tune the actions stage; zero values take the defaults of actions.Service.
type ActionsOptions struct {
	// Namespace is podmedic's own namespace, where it never acts; default actions.OwnNamespace:
	// $POD_NAMESPACE, else the service account's namespace file.
	Namespace string
	// Getenv reads the Airflow credentials (AIRFLOW_USERNAME/AIRFLOW_PASSWORD or
	// AIRFLOW_TOKEN, or their *_FILE variants); default os.Getenv.
	Getenv func(string) string
	// Interval of the maintenance loop (expiry of proposals); default 15s.
	Interval time.Duration
	// RefusalQuiet and RefusalWindow: refusals are reported once per rule and reason per
	// window, after quiet without a new one. Defaults 5s and 1h.
	RefusalQuiet, RefusalWindow time.Duration
	// Overrides, when set, stores memory overrides: approved memory proposals of Airflow
	// tasks become overrides the admission webhook applies (set when the webhook serves).
	Overrides *overrides.Store
	// Dynamic, when set, patches SparkApplications: approved memory proposals for Spark
	// drivers and executors change the application's memory settings (else they are advice).
	Dynamic dynamic.Interface
}

// actionsStage is the running actions stage and what it needs stopped at the end.
type actionsStage struct {
	svc         *actions.Service
	store       actions.ProposalStore // the service's
	overrides   *overrides.Store      // nil without the webhook
	broadcaster events.EventBroadcaster
}

// newActions builds the actions stage over the bus (proposals and budgets in the proposals
// bucket, cooldowns and refusal notices through the dedup claims, the audit stream), with the
// pipeline's engine re-checking findings on live pods. Events are recorded with the events.k8s.io
// API from ctx on.
func newActions(ctx context.Context, o ActionsOptions, cfg *config.Config, client kubernetes.Interface, b *bus.Bus,
	live *rules.Live, n notifier.Notifier, log *zap.Logger, reg prometheus.Registerer) (*actionsStage, error) {
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
	var ac *airflow.Client
	if cfg.Airflow.URL != "" {
		creds, err := airflow.CredentialsFromEnv(getenv)
		if err != nil {
			return nil, fmt.Errorf("airflow credentials: %w", err)
		}
		ac, err = airflow.New(cfg.Airflow.URL, cfg.Airflow.APIVersion, cfg.Airflow.Timeout.Duration, creds)
		if err != nil {
			return nil, err
		}
		execs[finding.ActionAirflowClearTask] = actions.AirflowClearTask{Client: ac}
		if airflow.PlainHTTPOutsideCluster(cfg.Airflow.URL) {
			log.Warn("airflow.url is plain http:// to a host outside the cluster: the Airflow credentials cross the network unencrypted; use https://",
				zap.String("url", cfg.Airflow.URL))
		}
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

	memory := actions.MemoryLimit{Patch: actions.PatchMemoryLimit{Client: client}}
	if o.Overrides != nil {
		memory.Override = &actions.MemoryOverride{Store: o.Overrides, Cluster: cfg.Cluster, TTL: cfg.Overrides.TTL.Duration, Now: live.Now, Airflow: ac, MaxLimit: ruleMaxLimit(live)}
	}
	if o.Dynamic != nil {
		memory.Spark = &actions.PatchSparkMemory{Dynamic: o.Dynamic, Overrides: memory.Override}
	}
	execs[finding.ActionProposeMemoryLimit] = memory
	kv := actions.JetStreamKV{KV: b.Proposals()}
	metrics := actions.NewMetrics(reg)
	guard, err := actions.NewGuard(actions.GuardOptions{
		Client: client, Executor: execs, DryRun: cfg.DryRun, Policy: actions.PolicyOf(cfg), KV: kv, Claimer: b,
		Rechecker: live, Namespace: o.Namespace, Events: recorder, Now: live.Now,
		Metrics: metrics, Logger: log.Named("guard"),
	})
	if err != nil {
		broadcaster.Shutdown()
		return nil, err
	}
	store := actions.KVProposalStore{KV: kv}
	var revoker actions.OverrideBook // not a typed nil
	if o.Overrides != nil {
		revoker = o.Overrides
	}
	svc, err := actions.NewService(actions.ServiceOptions{
		Guard: guard, Client: client, Store: store, Claimer: b, Notifier: n, Overrides: revoker,
		Audit: b, AuditSubject: audit.Subject(cfg.Cluster, audit.Proposal),
		RefusalSubject: audit.Subject(cfg.Cluster, audit.Refusal), Events: recorder,
		TTL: cfg.Proposals.TTL.Duration, Interval: o.Interval, RefusalQuiet: o.RefusalQuiet, RefusalWindow: o.RefusalWindow,
		Now: live.Now, Metrics: metrics, Logger: log,
	})
	if err != nil {
		broadcaster.Shutdown()
		return nil, err
	}
	return &actionsStage{svc: svc, store: store, overrides: o.Overrides, broadcaster: broadcaster}, nil
}

// applyActions puts a reloaded rules.yaml's budgets, cooldowns and proposal TTL in force.
// (dry_run and airflow take effect at the next start.)
func (a *actionsStage) applyActions(cfg *config.Config) {
	a.svc.Guard().SetPolicy(actions.PolicyOf(cfg))
	a.svc.SetProposalTTL(cfg.Proposals.TTL.Duration)
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
