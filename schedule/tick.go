package schedule

import (
	"time"

	"github.com/robfig/cron/v3"
)

// MaxCatchUp bounds how late a missed tick is still run when a leader starts.
const MaxCatchUp = time.Hour

// lookbacks are how far back prevTick searches, shortest first: the first that holds a tick
// is searched forward tick by tick, so the walk is short whatever the schedule's interval.
var lookbacks = []time.Duration{time.Second, time.Minute, time.Hour, 24 * time.Hour, 8 * 24 * time.Hour,
	32 * 24 * time.Hour, 367 * 24 * time.Hour, 5 * 367 * 24 * time.Hour}

// prevTick returns the latest time at or before now at which s runs, or zero when it ran
// not in the last five years.
func prevTick(s cron.Schedule, now time.Time) time.Time {
	for _, lb := range lookbacks {
		t := s.Next(now.Add(-lb).Add(-time.Nanosecond))
		if t.IsZero() || t.After(now) {
			continue
		}
		for {
			n := s.Next(t)
			if n.IsZero() || n.After(now) {
				return t
			}
			t = n
		}
	}
	return time.Time{}
}

// catchUp is how late tick may still be run: the job's interval after tick, at most MaxCatchUp.
func catchUp(s cron.Schedule, tick time.Time) time.Duration {
	next := s.Next(tick)
	if next.IsZero() {
		return MaxCatchUp
	}
	return min(next.Sub(tick), MaxCatchUp)
}
