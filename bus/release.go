package bus

import (
	"context"
	"fmt"
)

// Release gives up a claim made with Claim, so that the next Claim of key succeeds: for a
// finding whose delivery failed after it was claimed.
func (b *Bus) Release(ctx context.Context, key string) error {
	if err := b.dedup.Purge(ctx, key); err != nil {
		return fmt.Errorf("release %q: %w", key, err)
	}
	return nil
}
