package slack

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// backlog counts the notices accepted and not yet in Slack (Pending, Flush, the queue bound
// and the queue-depth gauge). It has its own lock, taken last: intake adds to it under the
// Notifier's lock, lanes take from it under theirs.
type backlog struct {
	latency *prometheus.HistogramVec

	mu      sync.Mutex
	pending int
	idle    chan struct{} // closed while pending is 0
}

func newBacklog() *backlog {
	b := &backlog{idle: make(chan struct{})}
	close(b.idle)
	return b
}

// add counts k more notices accepted.
func (b *backlog) add(k int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == 0 && k > 0 {
		b.idle = make(chan struct{})
	}
	b.pending += k
}

// deliver counts notices as delivered, observing how long each took.
func (b *backlog) deliver(ps []pend, now time.Time) {
	if len(ps) == 0 {
		return
	}
	if b.latency != nil {
		for _, p := range ps {
			b.latency.WithLabelValues(string(p.typ)).Observe(now.Sub(p.at).Seconds())
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending -= len(ps)
	if b.pending == 0 {
		close(b.idle)
	}
}

// count is how many accepted notices are not yet delivered.
func (b *backlog) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending
}

// empty is closed once every notice accepted so far is delivered.
func (b *backlog) empty() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.idle
}
