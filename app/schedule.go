package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/actions"
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
func newSchedules(o Options, cfg *config.Config, reg *rules.Registry, client kubernetes.Interface, b *bus.Bus, p *pipeline,
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
	s, err := schedule.New(schedule.Options{
		Config: cfg,
		Sweeper: &schedule.Sweeper{Rules: p.engine.Load, Registry: reg, View: p.view, Pods: apiPods{client}, Client: client,
			Guard: act.svc.Guard(), Service: act.svc, Store: act.store, Audit: b,
			AuditSubject: auditSubject(cfg.Cluster, schedule.RecordProposal), Now: p.now, Logger: log.Named("sweep")},
		Digester: &schedule.Digester{Source: AuditRecords(b.JetStream()), Proposals: act.svc},
		Notifier: n, Claimer: b, Audit: b, ReportSubject: auditSubject(cfg.Cluster, schedule.RecordSchedule),
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

// AuditRecords reads the audit stream (PODMEDIC_AUDIT) with an ordered consumer: ephemeral and
// read-only, so it changes nothing on the stream.
func AuditRecords(js jetstream.JetStream) schedule.AuditSource { return auditReader{js} }

type auditReader struct{ js jetstream.JetStream }

// fetchWait bounds the wait for a batch when the consumer has nothing left to deliver.
const fetchWait = time.Second

// Records implements schedule.AuditSource.
func (a auditReader) Records(ctx context.Context, cluster string, since time.Time) ([]schedule.Record, error) {
	tok := "*"
	if cluster != "" {
		tok = bus.Token(cluster)
	}
	cons, err := a.js.OrderedConsumer(ctx, bus.StreamAudit, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.SubjectFindings + "." + tok + ".>", bus.SubjectAudit + "." + tok + ".>"},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", bus.StreamAudit, err)
	}
	var out []schedule.Record
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", bus.StreamAudit, err)
		}
		n, last := 0, false
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			if r, ok := record(m.Subject(), meta.Timestamp, m.Data()); ok {
				out = append(out, r)
			}
			last = meta.NumPending == 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("read stream %s: %w", bus.StreamAudit, err)
		}
		if n == 0 || last {
			return out, ctx.Err()
		}
	}
}

// record parses podmedic.findings.<cluster>.<kind> and
// podmedic.audit.<cluster>.<proposal|schedule|refusal>.
func record(subject string, at time.Time, data []byte) (schedule.Record, bool) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 {
		return schedule.Record{}, false
	}
	r := schedule.Record{Cluster: parts[2], Time: at, Data: data}
	switch {
	case parts[0]+"."+parts[1] == bus.SubjectFindings:
		r.Type = schedule.RecordFinding
	case parts[3] == schedule.RecordProposal || parts[3] == schedule.RecordSchedule || parts[3] == schedule.RecordRefusal:
		r.Type = parts[3]
	default:
		return schedule.Record{}, false
	}
	return r, true
}

// Audit is the audit stream and the proposals of a podmedic's NATS, opened by OpenAudit for
// `podmedic digest`.
type Audit struct {
	Source    schedule.AuditSource
	Proposals schedule.ProposalLister // nil when there is no proposals bucket
	close     func()
}

// Close disconnects (and stops the embedded server OpenAudit started).
func (a *Audit) Close() { a.close() }

// OpenAudit opens a podmedic's audit stream read-only: on the NATS server at natsURL, or, with
// an empty natsURL, in the embedded server's store in dataDir, of which it serves a copy
// in-process (so it works while podmedic runs, and never changes the store).
func OpenAudit(ctx context.Context, natsURL, dataDir string) (*Audit, error) {
	var (
		nc      *nats.Conn
		srv     *server.Server
		err     error
		cleanup = func() {}
	)
	switch {
	case natsURL != "":
		if nc, err = nats.Connect(natsURL, nats.Name("podmedic-digest"), nats.Timeout(5*time.Second)); err != nil {
			return nil, fmt.Errorf("connect to NATS at %s: %w", natsURL, err)
		}
	case dataDir != "":
		// A copy of the audit stream and the proposals bucket is served, never the store
		// itself: a running podmedic may be writing it, and a second server on the same files
		// would corrupt them.
		tmp, err := copyStore(dataDir)
		if err != nil {
			return nil, err
		}
		cleanup = func() { _ = os.RemoveAll(tmp) }
		srv, err = server.NewServer(&server.Options{ServerName: "podmedic-digest", JetStream: true, StoreDir: tmp,
			DontListen: true, NoSigs: true, NoLog: true})
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("open the store in %s: %w", dataDir, err)
		}
		srv.Start()
		if !srv.ReadyForConnections(10*time.Second) || !srv.JetStreamEnabled() {
			srv.Shutdown()
			cleanup()
			return nil, fmt.Errorf("open the store in %s: the embedded NATS server did not start", dataDir)
		}
		if nc, err = nats.Connect("", nats.InProcessServer(srv), nats.Name("podmedic-digest")); err != nil {
			srv.Shutdown()
			cleanup()
			return nil, err
		}
	default:
		return nil, errors.New("--nats-url or --data-dir is needed to read the audit stream")
	}
	closeAll := func() {
		nc.Close()
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
		cleanup()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		closeAll()
		return nil, err
	}
	if _, err := js.Stream(ctx, bus.StreamAudit); err != nil {
		closeAll()
		return nil, fmt.Errorf("no audit stream %s: %w", bus.StreamAudit, err)
	}
	a := &Audit{Source: AuditRecords(js), close: closeAll}
	if kv, err := js.KeyValue(ctx, bus.BucketProposals); err == nil {
		a.Proposals = storeProposals{actions.KVProposalStore{KV: JetStreamKV{KV: kv}}}
	}
	return a, nil
}

// storeProposals lists the proposals of a store.
type storeProposals struct{ s actions.ProposalStore }

func (s storeProposals) Proposals(ctx context.Context) ([]finding.Proposal, error) {
	return s.s.List(ctx)
}

// copyStore copies the audit stream and the proposals bucket of the JetStream store in dataDir
// (dataDir/jetstream/<account>/streams/<stream>) into a new temporary directory and returns it.
func copyStore(dataDir string) (string, error) {
	root := filepath.Join(dataDir, "jetstream")
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "streams", bus.StreamAudit))
	if len(dirs) == 0 {
		return "", fmt.Errorf("no podmedic store in %s (no %s stream under %s); give the --data-dir of `podmedic run`, or --nats-url",
			dataDir, bus.StreamAudit, root)
	}
	kv, _ := filepath.Glob(filepath.Join(root, "*", "streams", "KV_"+bus.BucketProposals))
	tmp, err := os.MkdirTemp("", "podmedic-digest-")
	if err != nil {
		return "", err
	}
	for _, dir := range append(dirs, kv...) {
		rel, err := filepath.Rel(dataDir, dir)
		if err == nil {
			err = os.CopyFS(filepath.Join(tmp, rel), os.DirFS(dir))
		}
		if err != nil {
			_ = os.RemoveAll(tmp)
			return "", fmt.Errorf("copy the store in %s: %w", dataDir, err)
		}
	}
	return tmp, nil
}
