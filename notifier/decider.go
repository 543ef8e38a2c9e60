package notifier

import (
	"context"

	"github.com/podmedic/podmedic/finding"
)

// Decider applies a human decision to a proposal and returns it in its new state. The actions
// stage implements it; Slack interactions and the local inbox call it. The user is who decided
// ("U012AB3CD" for Slack, "inbox:<name>" for the inbox); approve false means deny. Errors
// explain refusals in a sentence a human can read (expired, already decided, unknown).
type Decider interface {
	Decide(ctx context.Context, id, user string, approve bool) (*finding.Proposal, error)
}

// DeciderFunc adapts a function to a Decider.
type DeciderFunc func(ctx context.Context, id, user string, approve bool) (*finding.Proposal, error)

// Decide calls f.
func (f DeciderFunc) Decide(ctx context.Context, id, user string, approve bool) (*finding.Proposal, error) {
	return f(ctx, id, user, approve)
}

// ProposalLister lists proposals, newest first: the pending ones and the recent decisions.
type ProposalLister interface {
	Proposals(ctx context.Context) ([]finding.Proposal, error)
}

// Revoker ends a memory override that an approval stored (the actions stage). user is who
// revokes; the answer says what was revoked.
type Revoker interface {
	RevokeOverride(ctx context.Context, id, user string) (string, error)
}
