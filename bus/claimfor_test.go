package bus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestClaimFor: an open claim is won again by its owner (a redelivery of the message that
// made it) and by nobody else; once settled nobody wins it; a settled key still expires with
// its TTL; a released claim is anyone's again.
func TestClaimFor(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	const key = "finding.oom.uid-1"

	ok, err := b.ClaimFor(ctx, key, "msg-1", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = b.ClaimFor(ctx, key, "msg-2", time.Hour)
	require.NoError(t, err)
	require.False(t, ok, "another message's claim")
	ok, err = b.ClaimFor(ctx, key, "msg-1", time.Hour)
	require.NoError(t, err)
	require.True(t, ok, "the same message, delivered again before it settled")

	require.NoError(t, b.Settle(ctx, key, "msg-2", time.Hour), "not msg-2's: left alone")
	ok, err = b.ClaimFor(ctx, key, "msg-1", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, b.Settle(ctx, key, "msg-1", 2*time.Second))
	require.NoError(t, b.Settle(ctx, key, "msg-1", 2*time.Second), "settling twice is harmless")
	for _, owner := range []string{"msg-1", "msg-2"} {
		ok, err = b.ClaimFor(ctx, key, owner, time.Hour)
		require.NoError(t, err)
		require.False(t, ok, "settled: %s loses", owner)
	}
	ok, err = b.Claim(ctx, key, time.Hour)
	require.NoError(t, err)
	require.False(t, ok, "a plain Claim loses too")
	require.Eventually(t, func() bool {
		ok, err := b.ClaimFor(ctx, key, "msg-3", time.Hour)
		require.NoError(t, err)
		return ok
	}, 10*time.Second, 100*time.Millisecond, "the settled claim expires with the TTL Settle gave it")

	require.NoError(t, b.Release(ctx, key))
	ok, err = b.ClaimFor(ctx, key, "msg-4", time.Hour)
	require.NoError(t, err)
	require.True(t, ok, "released: anyone's")
	require.NoError(t, b.Settle(ctx, key, "msg-3", time.Hour), "a released claim is left alone")
	ok, err = b.ClaimFor(ctx, key, "msg-4", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
}

// TestRenew: a lease is an open claim its owner renews; unrenewed, it expires and is anyone's.
func TestRenew(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	const key = "slack.post.abc"
	ok, err := b.ClaimFor(ctx, key, "replica-1", 2*time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	for range 3 {
		time.Sleep(time.Second)
		ok, err = b.Renew(ctx, key, "replica-1", 2*time.Second)
		require.NoError(t, err)
		require.True(t, ok, "renewed")
		ok, err = b.ClaimFor(ctx, key, "replica-2", time.Minute)
		require.NoError(t, err)
		require.False(t, ok, "held by a live owner")
	}
	ok, err = b.Renew(ctx, key, "replica-2", time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "not replica-2's")
	require.Eventually(t, func() bool {
		ok, err := b.ClaimFor(ctx, key, "replica-2", time.Minute)
		require.NoError(t, err)
		return ok
	}, 10*time.Second, 100*time.Millisecond, "unrenewed, the lease expires")
	ok, err = b.Renew(ctx, key, "replica-1", time.Minute)
	require.NoError(t, err)
	require.False(t, ok, "replica-1 lost it")
}
