package bus

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Release gives up a claim made with Claim, so that the next Claim of key succeeds: for a
// finding whose delivery failed after it was claimed. The purge marker expires after
// DedupMarkerTTL so released keys do not accumulate in the bucket.
func (b *Bus) Release(ctx context.Context, key string) error {
	if err := b.dedup.Purge(ctx, key, jetstream.PurgeTTL(DedupMarkerTTL)); err != nil {
		return fmt.Errorf("release %q: %w", key, err)
	}
	return nil
}
