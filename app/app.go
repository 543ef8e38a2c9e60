package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/internal/httpserve"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/rules"
	"github.com/podmedic/podmedic/watchers"
)

// Options configure Run.
type Options struct {
	// Config is the loaded rules.yaml.
	Config *config.Config
	// Registry holds the detectors (default rules.NewDefaultRegistry()).
	Registry *rules.Registry
	// Client talks to the cluster. When nil it is built from Kubeconfig/Context, and so is
	// Dynamic.
	Client kubernetes.Interface
	// Dynamic reads (and, with PatchSparkApplications, patches) SparkApplications, with a
	// given Client; nil: none are watched.
	Dynamic    dynamic.Interface
	Kubeconfig string
	Context    string
	// NATSURL of an external server; empty starts the embedded one in DataDir.
	NATSURL string
	// NATSReplicas of the streams and buckets on an external NATS cluster (3 for HA). Default 1.
	NATSReplicas int
	// NATSListen exposes the embedded NATS server to clients at this address (e.g.
	// 127.0.0.1:4222, for `podmedic overrides`); empty: in-process only.
	NATSListen string
	DataDir    string
	// DryRun overrides rules.yaml's dry_run when true.
	DryRun bool
	// HTTPAddr serves /healthz, /readyz and /metrics; empty disables the server.
	HTTPAddr string
	// HTTPTimeouts bound each request to the HTTP server and the inbox; zero values take the
	// defaults (httpserve.Timeouts).
	HTTPTimeouts httpserve.Timeouts
	// HTTPMaxInteractions bounds the requests to /slack/interactions served at once (their
	// signature can only be checked once the body is read); the others are answered 503.
	// Zero: httpserve.DefaultMaxInFlight.
	HTTPMaxInteractions int
	// Out receives console notices in ConsoleFormat (text or json).
	Out           io.Writer
	ConsoleFormat string
	// Notifier overrides the console notifier (tests, demo).
	Notifier notifier.Notifier
	// Workers handling observations. Default 16: a worker waits mostly on round trips (claims
	// in NATS KV, the audit stream, the API server for actions), so more of them keep a burst's
	// tail short (a 500-pod burst: p99 from write to Slack 276 -> 50 ms) at the cost of a
	// goroutine each.
	Workers int
	// Resync re-publishes pods and PVCs for time-based detectors. Default 1m.
	Resync time.Duration
	// PatchSparkApplications executes approved memory proposals for Spark drivers and
	// executors as patches of their SparkApplication (and its ScheduledSparkApplication);
	// off, they are advice: the approval records the decision and says what to change.
	PatchSparkApplications bool
	// DiscoveryInterval is how often to look for the SparkApplication CRD while it is not
	// installed. Default 1m.
	DiscoveryInterval time.Duration
	Logger            *zap.Logger
	// Now is the clock detectors evaluate at; default time.Now (the demo plays a night faster).
	Now func() time.Time
	// ConfigPath is the rules.yaml Config was loaded from; when set, podmedic reloads it on
	// SIGHUP and when its content changes.
	ConfigPath string
	// Webhook serves the admission webhook that applies memory overrides (off without Addr).
	Webhook WebhookOptions
	// InboxAddr serves the local inbox (approve/deny proposals) when Slack is not configured;
	// it must be a loopback address. Empty disables it.
	InboxAddr string
	// InboxReady, when set, is told the inbox's address once it listens.
	InboxReady func(addr string)
	// Logs replaces the Kubernetes log API for TaskFailed log tails (the demo).
	Logs rules.LogSource
	// Getenv reads secrets (SLACK_BOT_TOKEN, ...); default os.Getenv.
	Getenv func(string) string
	// Ready, when set, is called once podmedic is ready (caches synced, bus up).
	Ready func(*Handle)
	// Actions tunes the actions stage (own namespace, Airflow credentials, loop timings).
	Actions ActionsOptions
	// Schedule tunes the scheduled jobs and the election of the replica that runs them.
	Schedule ScheduleOptions
}

// DefaultQPS and DefaultBurst rate-limit podmedic's requests to the Kubernetes API when the
// kubeconfig sets no limit (the watches are not counted).
const (
	DefaultQPS   = 50
	DefaultBurst = 100
)

// Handle lets the caller of Run observe the running pipeline.
type Handle struct {
	w       *watchers.Watcher
	b       *bus.Bus
	actions *actionsStage
	sched   *schedules
}

// WaitIdle waits until nothing is in flight anywhere in the pipeline — the watchers' queue is
// empty and every observation on the bus has been handled and acked — and has stayed so for
// quiet. It returns ctx's error when ctx ends first.
func (h *Handle) WaitIdle(ctx context.Context, quiet time.Duration) error {
	var since time.Time
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		idle := h.w.Idle()
		if idle {
			c, err := h.b.JetStream().Consumer(ctx, bus.StreamObservations, bus.ConsumerRules)
			if err == nil {
				info, err := c.Info(ctx)
				idle = err == nil && info.NumPending == 0 && info.NumAckPending == 0
			} else {
				idle = false
			}
		}
		switch {
		case !idle:
			since = time.Time{}
		case since.IsZero():
			since = time.Now()
		case time.Since(since) >= quiet:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Run runs the daemon until ctx is done or a component fails.
func Run(ctx context.Context, o Options) error {
	log := o.Logger
	if log == nil {
		log = zap.NewNop()
	}
	cfg := o.Config
	if o.DryRun {
		cfg.DryRun = true
	}
	reg := o.Registry
	if reg == nil {
		reg = rules.NewDefaultRegistry()
	}
	engine, err := rules.NewEngine(cfg, reg, actions.MemoryPlanner{})
	if err != nil {
		return err
	}

	client, dyn := o.Client, o.Dynamic
	if client == nil {
		rc, err := KubeConfig(o.Kubeconfig, o.Context)
		if err != nil {
			return err
		}
		rc.UserAgent = "podmedic"
		if rc.QPS == 0 && rc.Burst == 0 {
			// client-go's default (5/s, bursts of 10) paces a storm: every proposal and every
			// action reads its pod first, every outcome writes an Event.
			rc.QPS, rc.Burst = DefaultQPS, DefaultBurst
		}
		if client, err = kubernetes.NewForConfig(rc); err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
		if dyn, err = dynamic.NewForConfig(rc); err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
		if err := Reachable(ctx, client, rc.Host, 15*time.Second); err != nil {
			return err
		}
	}

	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	dataDir := o.DataDir
	if o.NATSURL == "" && dataDir == "" {
		return errors.New("--data-dir is required for the embedded NATS server")
	}
	hostname, _ := os.Hostname()
	b, err := bus.Open(ctx, bus.Options{
		URL: o.NATSURL, DataDir: dataDir, ListenAddr: o.NATSListen, Name: "podmedic-" + hostname, Replicas: o.NATSReplicas,
		MaxMemory: cfg.NATS.MaxMemory.Value(), MaxStore: cfg.NATS.MaxStore.Value(),
		Logger: log.Named("bus"), Metrics: bus.NewMetrics(metrics),
	})
	if err != nil {
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			log.Warn("closing the bus", zap.Error(err))
		}
	}()

	w, err := watchers.New(watchers.Options{
		Client: client, Cluster: cfg.Cluster, Namespaces: cfg.Namespaces.Include, Exclude: cfg.Namespaces.Exclude,
		Resync: o.Resync, Publisher: b, Logger: log.Named("watchers"), Metrics: watchers.NewMetrics(metrics),
		Dynamic: dyn, DiscoveryInterval: o.DiscoveryInterval,
	})
	if err != nil {
		return err
	}

	ns, err := newNotifiers(ctx, o, cfg, reg, b, log, metrics)
	if err != nil {
		return err
	}
	n := ns.chain
	live := rules.NewLive(engine, w, o.Now)
	var wh *webhookStage
	if o.Webhook.Addr != "" {
		ownNS := o.Actions.Namespace
		if ownNS == "" {
			ownNS = actions.OwnNamespace("")
		}
		if wh, err = newWebhook(ctx, o.Webhook, cfg, client, b, o.NATSReplicas, ownNS, metrics, log.Named("webhook")); err != nil {
			return err
		}
		// Closed here too when the start fails before the server takes it (a second close,
		// after the server's, changes nothing).
		defer func() { _ = wh.ln.Close() }()
		o.Actions.Overrides = wh.store
	}
	if o.PatchSparkApplications {
		o.Actions.Dynamic = dyn
	}
	act, err := newActions(ctx, o.Actions, cfg, client, b, live, n, log.Named("actions"), metrics)
	if err != nil {
		return err
	}
	defer act.broadcaster.Shutdown()
	handler := rules.NewHandler(rules.HandlerOptions{Live: live, Claims: b, Stage: act.svc, Follower: act.svc,
		Logs: &rules.LogTailer{Client: client, Source: o.Logs}, Logger: log.Named("rules"), Registerer: metrics})
	sch, err := newSchedules(o, cfg, reg, client, b, live, act, n, log.Named("schedule"), metrics)
	if err != nil {
		return err
	}
	workers := o.Workers
	if workers <= 0 {
		workers = 16
	}

	ready := func(ctx context.Context) error {
		if !w.Synced() {
			return errors.New("informer caches not synced")
		}
		return b.Ready(ctx)
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return b.Consume(gctx, workers, handler.Handle) })
	g.Go(func() error { return act.svc.Run(gctx) })
	g.Go(func() error { return sch.run(gctx) })
	if err := ns.run(gctx, g, o, act.svc, log); err != nil {
		return err
	}
	if wh != nil {
		wh.serve(gctx, g, client, cfg.Cluster, cfg.Namespaces.Include, act.svc.Guard().Protected, ruleMaxLimit(live), o.HTTPTimeouts, log.Named("webhook"))
	}
	if o.ConfigPath != "" {
		rl, err := newReloader(o.ConfigPath, cfg, reg, func(c *config.Config) error {
			if o.DryRun {
				c.DryRun = true
			}
			e, err := rules.NewEngine(c, reg, actions.MemoryPlanner{})
			if err != nil {
				return err
			}
			live.Set(e)
			act.applyActions(c)
			sch.apply(c)
			return nil
		}, log.Named("reload"), metrics)
		if err != nil {
			return err
		}
		g.Go(func() error { return rl.Run(gctx) })
	}
	if o.HTTPAddr != "" {
		interactions := ns.interactions(cfg)
		if interactions != nil {
			interactions = httpserve.Limit(interactions, o.HTTPMaxInteractions)
		}
		srv, ln, err := listen(o.HTTPAddr, o.HTTPTimeouts, metrics, ready, interactions)
		if err != nil {
			return err
		}
		log.Info("serving health and metrics", zap.String("addr", ln.Addr().String()))
		g.Go(func() error { return httpserve.Serve(gctx, srv, ln) })
	}
	g.Go(func() error {
		// Announce readiness once, for the log and for callers that wait on it.
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				if ready(gctx) == nil {
					log.Info("podmedic is ready", zap.String("cluster", cfg.Cluster), zap.Bool("dry_run", cfg.DryRun),
						zap.Int("rules", len(cfg.Rules)))
					if o.Ready != nil {
						o.Ready(&Handle{w: w, b: b, actions: act, sched: sch})
					}
					return nil
				}
			}
		}
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

func listen(addr string, timeouts httpserve.Timeouts, reg *prometheus.Registry, ready func(context.Context) error, interactions http.Handler) (*http.Server, net.Listener, error) {
	mux := http.NewServeMux()
	if interactions != nil {
		mux.Handle("POST /slack/interactions", interactions)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return timeouts.Server(mux), ln, nil
}
