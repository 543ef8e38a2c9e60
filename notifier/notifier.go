package notifier

import (
	"context"
	"errors"

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
