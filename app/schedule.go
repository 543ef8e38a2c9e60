package app

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/audit"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/rules"
	"github.com/podmedic/podmedic/schedule"
)

// ScheduleOptions tune the scheduled jobs (rules.yaml's schedules) and the election of the
// replica that runs them; zero values take the defaults.
type ScheduleOptions struct {
	// Disabled runs no schedules on this replica (the demo, whose clock is simulated).
	Disabled bool
	// LeaseNamespace and LeaseName of the Lease the replicas elect the leader with: defaults
	// Actions.Namespace, else $POD_NAMESPACE, else the service account's namespace, else
	// default; and podmedic-schedules.
	LeaseNamespace, LeaseName string
	// Identity of this replica in the lease; default the host name with a random suffix.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod of the election; defaults 15s, 10s, 2s.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
}

// schedules is the running scheduler, or nothing when disabled.
type schedules struct{ s *schedule.Scheduler }

// newSchedules builds the scheduler: sweeps over the API's pods with the pipeline's rules
// engine and view, through the actions stage's guard and service; the digest over the audit
// stream and the proposals; reports recorded on podmedic.audit.<cluster>.schedule and
// notified through n; ticks claimed in the dedup bucket; leader elected with a Lease.
func newSchedules(o Options, cfg *config.Config, reg *rules.Registry, client kubernetes.Interface, b *bus.Bus, live *rules.Live,
	act *actionsStage, n notifier.Notifier, log *zap.Logger, metrics prometheus.Registerer) (*schedules, error) {
	so := o.Schedule
	if so.Disabled {
		return &schedules{}, nil
	}
	ns := so.LeaseNamespace
	if ns == "" {
		ns = o.Actions.Namespace
	}
	el, err := schedule.NewLeaseElector(schedule.LeaseOptions{Client: client, Namespace: ns, Name: so.LeaseName,
		Identity: so.Identity, LeaseDuration: so.LeaseDuration, RenewDeadline: so.RenewDeadline, RetryPeriod: so.RetryPeriod,
		Logger: log.Named("leader")})
	if err != nil {
		return nil, err
	}
	digester := &schedule.Digester{Source: audit.Reader{JS: b.JetStream()}, Proposals: act.svc}
	if act.overrides != nil {
		digester.Overrides = act.overrides
	}
	s, err := schedule.New(schedule.Options{
		Config: cfg,
		Sweeper: &schedule.Sweeper{Rules: live.Engine, Registry: reg, View: live.View, Pods: apiPods{client}, Client: client,
			Guard: act.svc.Guard(), Service: act.svc, Store: act.store, Audit: b,
			AuditSubject: audit.Subject(cfg.Cluster, audit.Proposal), Now: live.Now, Logger: log.Named("sweep")},
		Digester: digester,
		Notifier: n, Claimer: b, Audit: b, ReportSubject: audit.Subject(cfg.Cluster, audit.Schedule),
		Elector: el, Logger: log, Metrics: metrics,
	})
	if err != nil {
		return nil, err
	}
	return &schedules{s: s}, nil
}

// run runs the schedules (while this replica leads) until ctx ends.
func (x *schedules) run(ctx context.Context) error {
	if x == nil || x.s == nil {
		return nil
	}
	return x.s.Run(ctx)
}

// apply puts a reloaded rules.yaml's schedules in force.
func (x *schedules) apply(cfg *config.Config) {
	if x != nil && x.s != nil {
		x.s.SetConfig(cfg)
	}
}

// Scheduler returns the scheduler of the schedules, or nil when they are disabled.
func (h *Handle) Scheduler() *schedule.Scheduler {
	if h.sched == nil {
		return nil
	}
	return h.sched.s
}

// RunSchedule runs a schedule at once, outside its cron expression, whether or not this
// replica leads (tests; an operator's "run now").
func (h *Handle) RunSchedule(ctx context.Context, name string) (*schedule.Report, error) {
	s := h.Scheduler()
	if s == nil {
		return nil, errors.New("schedules are disabled")
	}
	return s.RunNow(ctx, name)
}

// apiPods lists pods from the API, paginated, with the label selector and a phase field
// selector applied by the apiserver. (The watchers' caches hold trimmed records indexed for
// the detectors' look-ups, not for listing by selector; a sweep lists every few minutes.)
type apiPods struct{ client kubernetes.Interface }

var _ schedule.PodLister = apiPods{}

// ListPods implements schedule.PodLister.
func (a apiPods) ListPods(ctx context.Context, namespace string, sel labels.Selector, phase string, fn func(*corev1.Pod) error) error {
	opts := metav1.ListOptions{Limit: 500}
	if sel != nil && !sel.Empty() {
		opts.LabelSelector = sel.String()
	}
	if phase != "" {
		opts.FieldSelector = "status.phase=" + phase
	}
	for {
		list, err := a.client.CoreV1().Pods(namespace).List(ctx, opts)
		if err != nil {
			return err
		}
		for i := range list.Items {
			if err := fn(&list.Items[i]); err != nil {
				return err
			}
		}
		if list.Continue == "" {
			return nil
		}
		opts.Continue = list.Continue
	}
}

// Audit is the audit stream and the proposals of a podmedic's NATS, opened by OpenAudit for
// `podmedic digest`.
type Audit struct {
	Source    audit.Source
	Proposals schedule.ProposalLister // nil when there is no proposals bucket
	close     func()
}

// Close disconnects (and stops the embedded server OpenAudit started).
func (a *Audit) Close() { a.close() }

// OpenAudit opens a podmedic's audit stream read-only (see audit.Open), with its proposals
// bucket when there is one.
func OpenAudit(ctx context.Context, natsURL, dataDir string) (*Audit, error) {
	c, err := audit.Open(ctx, natsURL, dataDir)
	if err != nil {
		return nil, err
	}
	a := &Audit{Source: audit.Reader{JS: c.JS}, close: c.Close}
	if kv, err := c.JS.KeyValue(ctx, bus.BucketProposals); err == nil {
		a.Proposals = storeProposals{actions.KVProposalStore{KV: actions.JetStreamKV{KV: kv}}}
	}
	return a, nil
}

// storeProposals lists the proposals of a store.
type storeProposals struct{ s actions.ProposalStore }

func (s storeProposals) Proposals(ctx context.Context) ([]finding.Proposal, error) {
	return s.s.List(ctx)
}
