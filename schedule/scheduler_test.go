package schedule

import (
	"context"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/rules"
)

// fakeRunner counts the runs of each job and tick; a run takes block (of the bubble's time).
type fakeRunner struct {
	mu    sync.Mutex
	runs  map[string]map[time.Time]int
	block time.Duration
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{runs: map[string]map[time.Time]int{}}
}

func (f *fakeRunner) Sweep(ctx context.Context, _ *config.Config, job *config.Schedule, tick time.Time) *Report {
	f.mu.Lock()
	if f.runs[job.Name] == nil {
		f.runs[job.Name] = map[time.Time]int{}
	}
	f.runs[job.Name][tick]++
	f.mu.Unlock()
	if f.block > 0 {
		select {
		case <-time.After(f.block):
		case <-ctx.Done():
		}
	}
	return &Report{Job: job.Name, Type: JobSweepType, Tick: tick, Kind: job.Sweep.Kind, Action: job.Sweep.Action.Type,
		Mode: job.Sweep.Action.Mode, Budget: job.Sweep.Budget, Candidates: 1, Acted: 1, Targets: []string{"airflow/a"}}
}

// ticks returns a job's ticks run, sorted, and fails if one ran more than once.
func (f *fakeRunner) ticks(t *testing.T, job string) []time.Time {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Time
	for tick, n := range f.runs[job] {
		assert.Equal(t, 1, n, "tick %s of %s ran %d times", tick.Format(time.TimeOnly), job, n)
		out = append(out, tick)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

func loadConfig(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("rules.yaml", []byte(yaml), rules.NewDefaultRegistry())
	require.NoError(t, err)
	return cfg
}

const tenSeconds = `version: 1
rules: [{name: evicted, detect: {kind: Evicted}}]
schedules:
  - name: every-10s
    cron: "*/10 * * * * *"
    sweep: {kind: Evicted, action: {type: delete-pod, mode: auto}}
    notify: {channel: "#ops"}
`

// running is a scheduler running in a goroutine until stop.
type running struct {
	s    *Scheduler
	stop func()
}

func start(t *testing.T, o Options) *running {
	t.Helper()
	if o.Logger == nil {
		o.Logger = zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	}
	s, err := New(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	r := &running{s: s, stop: func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}}
	t.Cleanup(r.stop)
	return r
}

func at0(hhmmss string) time.Time {
	t, err := time.Parse(time.TimeOnly, hhmmss)
	if err != nil {
		panic(err)
	}
	return time.Date(2000, 1, 1, t.Hour(), t.Minute(), t.Second(), 0, time.UTC)
}

// TestTwoLeadersRunEachTickOnce: two schedulers that both think they lead (a split brain, or
// the moment of a leader change) run every tick once between them: the tick's claim decides.
func TestTwoLeadersRunEachTickOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := loadConfig(t, tenSeconds)
		claimer := actions.NewMemoryClaimer(time.Now)
		runner, rec := newFakeRunner(), &recorder{}
		for _, id := range []string{"a", "b"} {
			start(t, Options{Config: cfg, Sweeper: runner, Notifier: rec, Claimer: claimer, Audit: rec,
				ReportSubject: "podmedic.audit.test.schedule", Elector: AlwaysLeader{ID: id}})
		}
		time.Sleep(65 * time.Second)
		synctest.Wait()

		// The bubble starts at 2000-01-01 00:00:00: the tick at 0s runs at once (catch-up),
		// then every 10 seconds.
		want := []time.Time{at0("00:00:00"), at0("00:00:10"), at0("00:00:20"), at0("00:00:30"), at0("00:00:40"),
			at0("00:00:50"), at0("00:01:00")}
		assert.Equal(t, want, runner.ticks(t, "every-10s"))
		assert.Len(t, rec.audit, 7, "one report per tick on the audit stream")
		assert.Contains(t, rec.audit, "podmedic.audit.test.schedule every-10s/946684810")
		notices := rec.OfType(finding.NoticeReport)
		require.Len(t, notices, 7)
		assert.Equal(t, "Sweep every-10s: deleted 1 of 1 Evicted pod", notices[0].Title)
		assert.Equal(t, "#ops", notices[0].Route)
	})
}

// TestOverlappingRunsSkip: a run still going when the next tick comes makes that tick skip,
// with a warning naming the job.
func TestOverlappingRunsSkip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		core, logs := observer.New(zap.WarnLevel)
		runner := newFakeRunner()
		runner.block = 25 * time.Second
		r := start(t, Options{Config: loadConfig(t, tenSeconds), Sweeper: runner, Notifier: &recorder{},
			Claimer: actions.NewMemoryClaimer(time.Now), Logger: zap.New(core)})
		time.Sleep(41 * time.Second)
		synctest.Wait()
		r.stop()

		// 0s runs until 25s (10s and 20s skip), 30s runs until 55s (40s skips).
		assert.Equal(t, []time.Time{at0("00:00:00"), at0("00:00:30")}, runner.ticks(t, "every-10s"))
		assert.Equal(t, 3.0, testutil.ToFloat64(r.s.m.skips.WithLabelValues("every-10s", "overlap")))
		skips := logs.FilterMessage("skipping a run of the job: its previous run is still going").All()
		require.Len(t, skips, 3)
		assert.Equal(t, "every-10s", skips[0].ContextMap()["job"])
	})
}

const tenMinutesAndDaily = `version: 1
rules: [{name: evicted, detect: {kind: Evicted}}]
schedules:
  - name: every-10m
    cron: "*/10 * * * *"
    sweep: {kind: Evicted, action: {type: delete-pod, mode: auto}}
  - name: digest
    cron: "0 8 * * *"
    sweep: {kind: Evicted, action: {type: delete-pod, mode: notify}}
`

// TestMissedRunsRunOnceLate: a tick missed while no replica led runs once, late, when a
// leader starts; a tick a leader ran already is not run again by the next one; a tick missed
// by more than an hour is not run late.
func TestMissedRunsRunOnceLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := loadConfig(t, tenMinutesAndDaily)
		claimer := actions.NewMemoryClaimer(time.Now)
		runner := newFakeRunner()
		opts := func(id string) Options {
			return Options{Config: cfg, Sweeper: runner, Notifier: &recorder{}, Claimer: claimer, Elector: AlwaysLeader{ID: id}}
		}
		a := start(t, opts("a")) // 00:00: runs the 00:00 tick
		time.Sleep(5 * time.Minute)
		a.stop() // 00:05: a restart begins; nobody leads at 00:10
		time.Sleep(7 * time.Minute)
		b := start(t, opts("b")) // 00:12: runs the missed 00:10 tick, late
		time.Sleep(9 * time.Minute)
		c := start(t, opts("c")) // 00:21: a second leader; 00:20 was run by b
		time.Sleep(10 * time.Minute)
		synctest.Wait()

		assert.Equal(t, []time.Time{at0("00:00:00"), at0("00:10:00"), at0("00:20:00"), at0("00:30:00")}, runner.ticks(t, "every-10m"))
		already := testutil.ToFloat64(b.s.m.skips.WithLabelValues("every-10m", "already-run")) +
			testutil.ToFloat64(c.s.m.skips.WithLabelValues("every-10m", "already-run"))
		assert.Equal(t, 2.0, already, "c's catch-up of 00:20, and one of b and c at 00:30")
		// The daily job's last tick (yesterday 08:00) is 16 hours old when each starts: too
		// late to run.
		assert.Empty(t, runner.ticks(t, "digest"))
		assert.Equal(t, 1.0, testutil.ToFloat64(a.s.m.skips.WithLabelValues("digest", "late")))
	})
}

// TestDailyJobRunsLateWithinAnHour: a leader that starts at 08:30 runs the 08:00 tick of a
// daily job, once.
func TestDailyJobRunsLateWithinAnHour(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(8*time.Hour + 30*time.Minute)
		cfg := loadConfig(t, tenMinutesAndDaily)
		claimer := actions.NewMemoryClaimer(time.Now)
		runner := newFakeRunner()
		start(t, Options{Config: cfg, Sweeper: runner, Notifier: &recorder{}, Claimer: claimer, Elector: AlwaysLeader{ID: "a"}})
		synctest.Wait()
		start(t, Options{Config: cfg, Sweeper: runner, Notifier: &recorder{}, Claimer: claimer, Elector: AlwaysLeader{ID: "b"}})
		synctest.Wait()
		assert.Equal(t, []time.Time{at0("08:00:00")}, runner.ticks(t, "digest"))
	})
}

// TestReloadAndCampaign: without schedules the scheduler does not campaign; a reload that adds
// one starts it, and a reload that changes it reschedules.
func TestReloadAndCampaign(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		runner := newFakeRunner()
		el := &countingElector{}
		r := start(t, Options{Config: loadConfig(t, "version: 1\nrules: [{name: evicted, detect: {kind: Evicted}}]\n"),
			Sweeper: runner, Notifier: &recorder{}, Claimer: actions.NewMemoryClaimer(time.Now), Elector: el})
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Zero(t, el.campaigns(), "no schedules: no campaign (and no lease to manage)")

		r.s.SetConfig(loadConfig(t, tenSeconds))
		time.Sleep(25 * time.Second) // 01:00 (catch-up), 01:10, 01:20
		synctest.Wait()
		assert.Equal(t, 1, el.campaigns())
		assert.True(t, r.s.Leading())
		assert.Len(t, runner.ticks(t, "every-10s"), 3)

		r.s.SetConfig(loadConfig(t, `version: 1
rules: [{name: evicted, detect: {kind: Evicted}}]
schedules:
  - {name: every-20s, cron: "*/20 * * * * *", sweep: {kind: Evicted, action: {type: delete-pod, mode: auto}}}
`))
		time.Sleep(40 * time.Second) // 01:25 -> 02:05: every-20s at 01:40, 02:00
		synctest.Wait()
		assert.Len(t, runner.ticks(t, "every-10s"), 3, "the removed job stopped")
		assert.Equal(t, []time.Time{at0("00:01:40"), at0("00:02:00")}, runner.ticks(t, "every-20s"))
	})
}

type countingElector struct {
	mu sync.Mutex
	n  int
}

func (c *countingElector) Run(ctx context.Context, lead func(context.Context)) error {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	lead(ctx)
	return nil
}

func (c *countingElector) Identity() string { return "counting" }

func (c *countingElector) campaigns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestQuietRunsAreNotNotified: a sweep that found nothing is recorded, not notified.
func TestQuietRunsAreNotNotified(t *testing.T) {
	rec := &recorder{}
	cfg := loadConfig(t, tenSeconds)
	quiet := sweepFunc(func(_ context.Context, _ *config.Config, job *config.Schedule, tick time.Time) *Report {
		return &Report{Job: job.Name, Type: JobSweepType, Tick: tick, Mode: finding.ModeAuto}
	})
	s, err := New(Options{Config: cfg, Sweeper: quiet, Notifier: rec, Claimer: actions.NewMemoryClaimer(time.Now), Audit: rec,
		ReportSubject: "podmedic.audit.test.schedule"})
	require.NoError(t, err)
	rep, err := s.RunNow(context.Background(), "every-10s")
	require.NoError(t, err)
	assert.Equal(t, "every-10s", rep.Job)
	assert.Len(t, rec.audit, 1)
	assert.Empty(t, rec.Notices())
	_, err = s.RunTick(context.Background(), &cfg.Schedules[0], rep.Tick)
	assert.ErrorIs(t, err, ErrAlreadyRun)
	_, err = s.RunNow(context.Background(), "nope")
	assert.ErrorContains(t, err, `no schedule named "nope"`)
}

type sweepFunc func(ctx context.Context, cfg *config.Config, job *config.Schedule, tick time.Time) *Report

func (f sweepFunc) Sweep(ctx context.Context, cfg *config.Config, job *config.Schedule, tick time.Time) *Report {
	return f(ctx, cfg, job, tick)
}

func TestPrevTick(t *testing.T) {
	for _, tc := range []struct{ expr, now, want string }{
		{"*/10 * * * *", "2026-11-20T08:17:31Z", "2026-11-20T08:10:00Z"},
		{"*/10 * * * *", "2026-11-20T08:10:00Z", "2026-11-20T08:10:00Z"},
		{"*/10 * * * * *", "2026-11-20T08:17:31.5Z", "2026-11-20T08:17:30Z"},
		{"0 8 * * *", "2026-11-20T07:59:59Z", "2026-11-19T08:00:00Z"},
		{"0 8 * * 1-5", "2026-11-23T07:00:00Z", "2026-11-20T08:00:00Z"}, // Monday morning: Friday's
		{"@monthly", "2026-11-20T08:00:00Z", "2026-11-01T00:00:00Z"},
		{"@yearly", "2026-11-20T08:00:00Z", "2026-01-01T00:00:00Z"},
		{"@every 15m", "2026-11-20T08:17:31Z", "2026-11-20T08:15:00Z"},
	} {
		s, err := config.ParseCron(tc.expr, time.UTC)
		require.NoError(t, err)
		now, _ := time.Parse(time.RFC3339Nano, tc.now)
		want, _ := time.Parse(time.RFC3339, tc.want)
		assert.Equal(t, want, prevTick(s, now).UTC(), "%s at %s", tc.expr, tc.now)
	}
	s, _ := config.ParseCron("0 8 * * *", time.UTC)
	assert.Equal(t, MaxCatchUp, catchUp(s, at0("08:00:00")))
	s, _ = config.ParseCron("*/10 * * * *", time.UTC)
	assert.Equal(t, 10*time.Minute, catchUp(s, at0("08:00:00")))
}
