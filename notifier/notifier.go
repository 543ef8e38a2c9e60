package notifier

import (
	"context"
	"errors"

	"github.com/podmedic/podmedic/finding"
)

// Notifier delivers one finding (with its planned action) to humans. An error means the
// finding was not delivered and the caller should retry.
type Notifier interface {
	Notify(ctx context.Context, f *finding.Finding) error
}

// Func adapts a function to a Notifier.
type Func func(ctx context.Context, f *finding.Finding) error

// Notify calls fn.
func (fn Func) Notify(ctx context.Context, f *finding.Finding) error { return fn(ctx, f) }

// Fanout delivers to every notifier and joins their errors.
type Fanout []Notifier

// Notify implements Notifier.
func (fo Fanout) Notify(ctx context.Context, f *finding.Finding) error {
	var errs []error
	for _, n := range fo {
		errs = append(errs, n.Notify(ctx, f))
	}
	return errors.Join(errs...)
}
