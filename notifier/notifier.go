package notifier

import (
	"context"
	"errors"
	"sync"

	"github.com/podmedic/podmedic/finding"
)

// Notifier delivers one notice (a new finding with its proposal or outcome, a decision on a
// proposal, a refusal by the guard) to humans. nil means the notice was accepted: delivered,
// or queued by a notifier that retries until it is delivered (Slack); an error means it was
// not accepted and the caller should retry.
type Notifier interface {
	Notify(ctx context.Context, n *finding.Notice) error
}

// Func adapts a function to a Notifier.
type Func func(ctx context.Context, n *finding.Notice) error

// Notify calls fn.
func (fn Func) Notify(ctx context.Context, n *finding.Notice) error { return fn(ctx, n) }

// Fanout delivers to every notifier and joins their errors.
type Fanout []Notifier

// Notify implements Notifier.
func (fo Fanout) Notify(ctx context.Context, n *finding.Notice) error {
	var errs []error
	for _, to := range fo {
		errs = append(errs, to.Notify(ctx, n))
	}
	return errors.Join(errs...)
}

// Recorder is a Notifier that keeps every notice it accepts (tests, tools). It is safe for
// concurrent use.
type Recorder struct {
	mu      sync.Mutex
	notices []finding.Notice
	fail    error
}

var _ Notifier = (*Recorder)(nil)

// Notify keeps a copy of n, or returns the error set with Fail.
func (r *Recorder) Notify(_ context.Context, n *finding.Notice) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	r.notices = append(r.notices, *n)
	return nil
}

// Fail makes Notify refuse every notice with err (nil: accept again).
func (r *Recorder) Fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = err
}

// Notices returns the notices kept so far, oldest first.
func (r *Recorder) Notices() []finding.Notice {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]finding.Notice(nil), r.notices...)
}

// OfType returns the notices of type t kept so far, oldest first.
func (r *Recorder) OfType(t finding.NoticeType) []finding.Notice {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []finding.Notice
	for _, n := range r.notices {
		if n.Type == t {
			out = append(out, n)
		}
	}
	return out
}
