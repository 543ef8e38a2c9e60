package bus

import (
	"context"
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
	c := claims{t, b, ctx, key}

	require.True(t, c.claimFor("msg-1", time.Hour))
	require.False(t, c.claimFor("msg-2", time.Hour), "another message's claim")
	require.True(t, c.claimFor("msg-1", time.Hour), "the same message, delivered again before it settled")

	require.NoError(t, b.Settle(ctx, key, "msg-2", time.Hour), "not msg-2's: left alone")
	require.True(t, c.claimFor("msg-1", time.Hour))
	require.NoError(t, b.Settle(ctx, key, "msg-1", 2*time.Second))
	require.NoError(t, b.Settle(ctx, key, "msg-1", 2*time.Second), "settling twice is harmless")
	for _, owner := range []string{"msg-1", "msg-2"} {
		require.False(t, c.claimFor(owner, time.Hour), "settled: %s loses", owner)
	}
	require.False(t, c.claim(time.Hour), "a plain Claim loses too")
	require.Eventually(t, func() bool { return c.claimFor("msg-3", time.Hour) }, 10*time.Second, 100*time.Millisecond, "the settled claim expires with the TTL Settle gave it")

	require.NoError(t, b.Release(ctx, key))
	require.True(t, c.claimFor("msg-4", time.Hour), "released: anyone's")
	require.NoError(t, b.Settle(ctx, key, "msg-3", time.Hour), "a released claim is left alone")
	require.True(t, c.claimFor("msg-4", time.Hour))
}

// TestRenew: a lease is an open claim its owner renews; unrenewed, it expires and is anyone's.
func TestRenew(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	const key = "slack.post.abc"
	c := claims{t, b, ctx, key}
	require.True(t, c.claimFor("replica-1", 2*time.Second))
	for range 3 {
		time.Sleep(time.Second)
		require.True(t, c.renew("replica-1", 2*time.Second), "renewed")
		require.False(t, c.claimFor("replica-2", time.Minute), "held by a live owner")
	}
	require.False(t, c.renew("replica-2", time.Minute), "not replica-2's")
	require.Eventually(t, func() bool { return c.claimFor("replica-2", time.Minute) }, 10*time.Second, 100*time.Millisecond, "unrenewed, the lease expires")
	require.False(t, c.renew("replica-1", time.Minute), "replica-1 lost it")
}

// claims makes the claim calls of one key, requiring that they do not fail.
type claims struct {
	t   *testing.T
	b   *Bus
	ctx context.Context
	key string
}

func (c claims) claim(ttl time.Duration) bool {
	c.t.Helper()
	ok, err := c.b.Claim(c.ctx, c.key, ttl)
	require.NoError(c.t, err)
	return ok
}

func (c claims) claimFor(owner string, ttl time.Duration) bool {
	c.t.Helper()
	ok, err := c.b.ClaimFor(c.ctx, c.key, owner, ttl)
	require.NoError(c.t, err)
	return ok
}

func (c claims) renew(owner string, ttl time.Duration) bool {
	c.t.Helper()
	ok, err := c.b.Renew(c.ctx, c.key, owner, ttl)
	require.NoError(c.t, err)
	return ok
}
