package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Claim atomically claims key in the dedup bucket (BucketDedup, History 1) for ttl: the first
// caller gets true, later callers false until the key expires. Use it for cooldowns and notice
// dedup across replicas. ttl must be at least one second (the server's TTL granularity). Key
// must be a valid KV key (letters, digits, '-', '_', '/', '=', '.').
func (b *Bus) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl < time.Second {
		return false, fmt.Errorf("claim %q: ttl %s is below the minimum of 1s", key, ttl)
	}
	_, err := b.dedup.Create(ctx, key, nil, jetstream.KeyTTL(ttl))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyExists):
		return false, nil
	default:
		return false, fmt.Errorf("claim %q: %w", key, err)
	}
}

// Proposals is the KV bucket BucketProposals (History ProposalHistory, file storage). Use
// compare-and-set on it (Create, Update with the last revision) so that exactly one replica
// acts on an approved proposal.
func (b *Bus) Proposals() jetstream.KeyValue { return b.proposals }

// Values of an owned claim (ClaimFor) in the dedup bucket.
const (
	claimOpen = "open "
	claimDone = "done"
)

// ClaimFor claims key for ttl on behalf of owner (the message being handled, say). As with
// Claim the first caller wins and later ones lose; but while the claim is open — owner has not
// settled it — a caller with the same owner wins it again. So the work of a handler that died
// after claiming (a killed replica), or whose claim got through while its answer was lost (a
// NATS node went away), is done when the same message is delivered again, instead of being
// skipped as done by someone else. Settle closes the claim once the work is done.
func (b *Bus) ClaimFor(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	if ttl < time.Second {
		return false, fmt.Errorf("claim %q: ttl %s is below the minimum of 1s", key, ttl)
	}
	mine := claimOpen + owner
	for range 3 {
		_, err := b.dedup.Create(ctx, key, []byte(mine), jetstream.KeyTTL(ttl))
		switch {
		case err == nil:
			return true, nil
		case !errors.Is(err, jetstream.ErrKeyExists):
			return false, fmt.Errorf("claim %q: %w", key, err)
		}
		e, err := b.dedup.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			continue // expired or released meanwhile: claim again
		case err != nil:
			return false, fmt.Errorf("claim %q: %w", key, err)
		}
		return string(e.Value()) == mine, nil
	}
	return false, fmt.Errorf("claim %q: the key keeps changing", key)
}

// Settle closes owner's open claim of key: from now on nobody wins it until ttl has passed.
// A claim that is not owner's open one (settled already, released, expired) is left alone.
func (b *Bus) Settle(ctx context.Context, key, owner string, ttl time.Duration) error {
	_, err := b.rewriteClaim(ctx, key, owner, claimDone, ttl)
	if err != nil {
		return fmt.Errorf("settle %q: %w", key, err)
	}
	return nil
}

// Renew keeps owner's open claim of key open for ttl from now (a lease). It reports false when
// the claim is not owner's open one any more (it expired, was released or settled).
func (b *Bus) Renew(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	ok, err := b.rewriteClaim(ctx, key, owner, claimOpen+owner, ttl)
	if err != nil {
		return false, fmt.Errorf("renew %q: %w", key, err)
	}
	return ok, nil
}

// rewriteClaim replaces owner's open claim of key with value for ttl, and reports whether it
// did (false: the claim is not owner's open one).
func (b *Bus) rewriteClaim(ctx context.Context, key, owner, value string, ttl time.Duration) (bool, error) {
	e, err := b.dedup.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
		return false, nil
	case err != nil:
		return false, err
	}
	if string(e.Value()) != claimOpen+owner {
		return false, nil
	}
	// KeyValue.Update keeps no TTL: the key would outlive its claim. Write the revision the
	// way the KV does, with the per-message TTL.
	m := &nats.Msg{Subject: "$KV." + BucketDedup + "." + key, Data: []byte(value)}
	_, err = b.js.PublishMsg(ctx, m, jetstream.WithExpectLastSequencePerSubject(e.Revision()), jetstream.WithMsgTTL(ttl))
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return false, nil // changed meanwhile (released, settled by a redelivery of the same message)
	}
	return err == nil, err
}
