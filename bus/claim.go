package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

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
