package schedule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// ErrAlreadyRun is returned by RunTick for a tick that was run already, here or by another
// replica.
var ErrAlreadyRun = errors.New("this run of the job was made already")

// SweepRunner runs one sweep of a job (Sweeper).
type SweepRunner interface {
	Sweep(ctx context.Context, cfg *config.Config, job *config.Schedule, tick time.Time) *Report
}

// DigestBuilder builds the digest of the window before until (Digester).
type DigestBuilder interface {
	Build(ctx context.Context, cluster string, until time.Time, window time.Duration, top int) (*Digest, error)
}

var (
	_ SweepRunner   = (*Sweeper)(nil)
	_ DigestBuilder = (*Digester)(nil)
)

// Options configure New.
type Options struct {
	// Config holds the schedules (SetConfig replaces it on a reload).
	Config *config.Config
	// Sweeper runs sweeps and Digester builds digests (a *Sweeper and a *Digester); a job whose
	// runner is nil fails.
	Sweeper  SweepRunner
	Digester DigestBuilder
	// Notifier receives each run's report (NoticeReport) worth telling.
	Notifier actions.Notifier
	// Claimer claims each tick once across replicas (the bus's dedup bucket).
	Claimer actions.Claimer
	// Audit and ReportSubject record each run's Report (podmedic.audit.<cluster>.schedule).
	Audit         actions.AuditPublisher
	ReportSubject string
	// Elector runs the schedules while this replica leads; default AlwaysLeader.
	Elector Elector
	// Now is the clock (tick times, catch-up); default time.Now. The cron timers are the
	// standard library's.
	Now     func() time.Time
	Logger  *zap.Logger
	Metrics prometheus.Registerer
}

// Scheduler runs the enabled schedules of the configuration with robfig/cron while this
// replica is the leader. It is safe for concurrent use.
type Scheduler struct {
	o       Options
	log     *zap.Logger
	m       *metrics
	changed chan struct{}

	mu      sync.Mutex
	cfg     *config.Config
	wrapped map[string]cron.Job // per job name, for good: SkipIfStillRunning holds across reloads
	term    context.Context     // the current leadership; nil when not leading
	runs    sync.WaitGroup      // runs of the current leadership (Add under mu while term != nil)
}

// New returns a scheduler. Run starts it.
func New(o Options) (*Scheduler, error) {
	if o.Config == nil || o.Claimer == nil || o.Notifier == nil {
		return nil, errors.New("schedule: Config, Claimer and Notifier are required")
	}
	if o.Elector == nil {
		o.Elector = AlwaysLeader{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Scheduler{o: o, log: o.Logger, m: newMetrics(o.Metrics), changed: make(chan struct{}, 1),
		cfg: o.Config, wrapped: map[string]cron.Job{}}, nil
}

// SetConfig puts a reloaded configuration's schedules in force: a leader reschedules at once;
// a replica that had no schedules starts campaigning.
func (s *Scheduler) SetConfig(cfg *config.Config) {
	s.mu.Lock()
	s.cfg = cfg
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// Config returns the configuration in force.
func (s *Scheduler) Config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Leading reports whether this replica runs the schedules now.
func (s *Scheduler) Leading() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.term != nil
}

func enabled(cfg *config.Config) []*config.Schedule {
	var out []*config.Schedule
	for i := range cfg.Schedules {
		if j := &cfg.Schedules[i]; !j.Disabled && j.When != nil {
			out = append(out, j)
		}
	}
	return out
}

func job(cfg *config.Config, name string) *config.Schedule {
	for _, j := range enabled(cfg) {
		if j.Name == name {
			return j
		}
	}
	return nil
}

// Run campaigns for the leadership (once the configuration has an enabled schedule) and runs
// the schedules while it leads, until ctx ends. It returns nil when ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	for len(enabled(s.Config())) == 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-s.changed:
		}
	}
	s.log.Info("campaigning to run the schedules", zap.String("identity", s.o.Elector.Identity()))
	err := s.o.Elector.Run(ctx, s.lead)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// lead runs the schedules until ctx (the leadership) ends, then waits for the runs under way,
// which see ctx end, to return.
func (s *Scheduler) lead(ctx context.Context) {
	s.m.leader.Set(1)
	defer s.m.leader.Set(0)
	s.log.Info("leading: running the schedules", zap.String("identity", s.o.Elector.Identity()))
	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cronLogger{log: s.log}),
		cron.WithChain(cron.Recover(cronLogger{log: s.log})))
	s.mu.Lock()
	s.term = ctx
	s.mu.Unlock()
	ids := s.install(c)
	c.Start()
	// Ticks missed while no replica led run now, once (fire skips those too old, and the
	// claim those another leader ran).
	for _, j := range enabled(s.Config()) {
		go s.job(j.Name).Run()
	}
	defer func() {
		<-c.Stop().Done()
		s.mu.Lock()
		s.term = nil
		s.mu.Unlock()
		s.runs.Wait()
		s.log.Info("no longer leading: schedules stopped", zap.String("identity", s.o.Elector.Identity()))
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
			for _, id := range ids {
				c.Remove(id)
			}
			ids = s.install(c)
		}
	}
}

// install schedules the enabled jobs of the configuration in force on c.
func (s *Scheduler) install(c *cron.Cron) []cron.EntryID {
	var ids []cron.EntryID
	for _, j := range enabled(s.Config()) {
		ids = append(ids, c.Schedule(j.When, s.job(j.Name)))
	}
	return ids
}

// job is the cron job of a schedule, made once per name: cron.SkipIfStillRunning skips a tick
// while the job's previous run is still going, across reloads.
func (s *Scheduler) job(name string) cron.Job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.wrapped[name]; ok {
		return j
	}
	log := s.log.With(zap.String("job", name))
	skip := cronLogger{log: log, onSkip: func() { s.m.skips.WithLabelValues(name, "overlap").Inc() }}
	j := cron.NewChain(cron.SkipIfStillRunning(skip)).Then(cron.FuncJob(func() { s.fire(name) }))
	s.wrapped[name] = j
	return j
}

// fire runs the latest tick of a job, when this replica leads, the tick is not too old, and
// no replica ran it yet.
func (s *Scheduler) fire(name string) {
	s.mu.Lock()
	ctx, cfg := s.term, s.cfg
	if ctx == nil || ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.runs.Add(1)
	s.mu.Unlock()
	defer s.runs.Done()
	j := job(cfg, name)
	if j == nil {
		return
	}
	now := s.o.Now()
	tick := prevTick(j.When, now).UTC()
	if tick.IsZero() {
		return
	}
	if late := now.Sub(tick); late > catchUp(j.When, tick) {
		s.m.skips.WithLabelValues(name, "late").Inc()
		s.log.Debug("the job's last tick is too old to run late", zap.String("job", name), zap.Time("tick", tick))
		return
	}
	if _, err := s.RunTick(ctx, j, tick); err != nil && !errors.Is(err, ErrAlreadyRun) {
		s.log.Error("scheduled run failed", zap.String("job", name), zap.Time("tick", tick), zap.Error(err))
	}
}

// RunTick runs job for its scheduled time tick, once across replicas: it claims the tick,
// runs the sweep or digest, records the report on the audit stream and notifies it when it is
// worth telling. A tick claimed already returns ErrAlreadyRun. The run's own problems are in
// the report (Report.Error), and returned as well.
func (s *Scheduler) RunTick(ctx context.Context, j *config.Schedule, tick time.Time) (*Report, error) {
	log := s.log.With(zap.String("job", j.Name), zap.Time("tick", tick))
	key := fmt.Sprintf("schedule.%s.%d", j.Name, tick.Unix())
	ttl := max(catchUp(j.When, tick)+MaxCatchUp, time.Second)
	won, err := s.o.Claimer.Claim(ctx, key, ttl)
	if err != nil {
		s.m.runs.WithLabelValues(j.Name, "error").Inc()
		return nil, fmt.Errorf("claim the run of %s at %s: %w", j.Name, tick.UTC().Format(time.RFC3339), err)
	}
	if !won {
		s.m.skips.WithLabelValues(j.Name, "already-run").Inc()
		log.Info("this tick was run already (by this replica or another); not again")
		return nil, ErrAlreadyRun
	}
	rep := s.run(ctx, j, tick)
	// What a run did is recorded and told even when the leadership ended meanwhile.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if s.o.Audit != nil && s.o.ReportSubject != "" {
		if err := s.o.Audit.PublishJSON(rctx, s.o.ReportSubject, fmt.Sprintf("%s/%d", j.Name, tick.Unix()), rep); err != nil {
			log.Error("the run's report was not recorded on the audit stream", zap.Error(err))
		}
	}
	if rep.worthTelling() {
		n := &finding.Notice{Type: finding.NoticeReport, Title: rep.Title(), Text: rep.Text(), Route: route(j.Notify)}
		if err := s.o.Notifier.Notify(rctx, n); err != nil {
			log.Warn("the run's report was not delivered", zap.Error(err))
		}
	}
	result := "ok"
	if rep.Error != "" {
		result = "error"
	}
	s.m.runs.WithLabelValues(j.Name, result).Inc()
	s.m.last.WithLabelValues(j.Name).Set(float64(rep.Finished.Unix()))
	if rep.Type == JobSweepType {
		s.m.remaining.WithLabelValues(j.Name).Set(float64(rep.Remaining))
	}
	log.Info("scheduled run", zap.String("type", rep.Type), zap.Int("candidates", rep.Candidates), zap.Int("acted", rep.Acted),
		zap.Int("proposed", rep.Proposed), zap.Int("failed", rep.Failed), zap.Int("refused", rep.RefusedTotal()),
		zap.Int("remaining", rep.Remaining), zap.Duration("took", rep.Finished.Sub(rep.Started)), zap.String("error", rep.Error))
	if rep.Error != "" {
		return rep, errors.New(rep.Error)
	}
	return rep, nil
}

// RunNow runs a job at once, outside its schedule (tests, an operator's "run now"), with the
// current second as its tick.
func (s *Scheduler) RunNow(ctx context.Context, name string) (*Report, error) {
	cfg := s.Config()
	var j *config.Schedule
	for i := range cfg.Schedules {
		if cfg.Schedules[i].Name == name {
			j = &cfg.Schedules[i]
		}
	}
	if j == nil {
		return nil, fmt.Errorf("no schedule named %q", name)
	}
	return s.RunTick(ctx, j, s.o.Now().Truncate(time.Second).UTC())
}

func (s *Scheduler) run(ctx context.Context, j *config.Schedule, tick time.Time) *Report {
	start := s.o.Now()
	var rep *Report
	switch {
	case j.Sweep != nil && s.o.Sweeper != nil:
		rep = s.o.Sweeper.Sweep(ctx, s.Config(), j, tick)
	case j.Digest != nil && s.o.Digester != nil:
		rep = &Report{Job: j.Name, Type: JobDigestType, Tick: tick}
		d, err := s.o.Digester.Build(ctx, s.Config().Cluster, tick, j.Digest.Window.Duration, j.Digest.Top)
		if err != nil {
			rep.Error = err.Error()
		}
		rep.Digest = d
	default:
		rep = &Report{Job: j.Name, Type: j.Type(), Tick: tick, Error: "no runner for " + j.Type() + " jobs"}
	}
	rep.Started, rep.Finished, rep.Leader = start, s.o.Now(), s.o.Elector.Identity()
	return rep
}

// route is where a job's reports go: its fixed channel, else its route, else "" (the default
// channel).
func route(n config.Notify) string {
	if n.Channel != "" {
		return n.Channel
	}
	return n.Route
}

// cronLogger routes robfig/cron's log into zap: its routine messages at debug, a skipped run
// (SkipIfStillRunning) as a warning, errors (a recovered panic) as errors.
type cronLogger struct {
	log    *zap.Logger
	onSkip func()
}

func (l cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		l.log.Warn("skipping a run of the job: its previous run is still going")
		if l.onSkip != nil {
			l.onSkip()
		}
		return
	}
	l.log.Debug("cron: "+msg, fields(kv)...)
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, append(fields(kv), zap.Error(err))...)
}

func fields(kv []any) []zap.Field {
	var out []zap.Field
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, zap.Any(fmt.Sprint(kv[i]), kv[i+1]))
	}
	return out
}

// metrics of the scheduler.
type metrics struct {
	runs      *prometheus.CounterVec
	skips     *prometheus.CounterVec
	leader    prometheus.Gauge
	last      *prometheus.GaugeVec
	remaining *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_schedule_runs_total",
			Help: "Runs of scheduled jobs on this replica, by job and result (ok, error).",
		}, []string{"job", "result"}),
		skips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_schedule_skips_total",
			Help: "Ticks of scheduled jobs not run, by job and reason: overlap (the previous run was still going), already-run (another replica or an earlier leader ran it), late (missed for longer than the job's interval).",
		}, []string{"job", "reason"}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podmedic_schedule_leader",
			Help: "1 while this replica leads and runs the schedules.",
		}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podmedic_schedule_last_run_timestamp_seconds",
			Help: "When the job's last run on this replica finished (Unix seconds).",
		}, []string{"job"}),
		remaining: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "podmedic_sweep_remaining",
			Help: "Pods the sweep's last run on this replica left for a later run (over its budget).",
		}, []string{"job"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.skips, m.leader, m.last, m.remaining)
	}
	return m
}
