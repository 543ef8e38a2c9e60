package bus

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPublishObservationsInOneGo(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	var obs []*Observation
	for i := range 300 {
		obs = append(obs, podObs(i))
	}
	bad := podObs(1000)
	bad.UID = ""
	obs = append(obs, podObs(0), bad) // a duplicate, and one a consumer would refuse
	errs := b.PublishObservations(ctx, obs)
	for i, err := range errs[:301] {
		require.NoError(t, err, "observation %d", i)
	}
	require.ErrorIs(t, errs[301], ErrMalformed)

	got := make(chan string, 400)
	c := startConsume(t, b, 4, func(_ context.Context, o *Observation) error { got <- o.Name; return nil })
	seen := map[string]bool{}
	for len(seen) < 300 {
		select {
		case n := <-got:
			require.False(t, seen[n], "delivered twice: %s", n)
			seen[n] = true
		case <-ctx.Done():
			t.Fatalf("%d of 300 delivered", len(seen))
		}
	}
	require.NoError(t, c.stop(t))
}

func TestObservationBacklog(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	for i := range 5 {
		require.NoError(t, b.PublishObservation(ctx, podObs(i)))
	}
	// The consumer's pending count follows the stream shortly after the publish acks.
	require.Eventually(t, func() bool { n, err := b.ObservationBacklog(ctx); return err == nil && n == 5 },
		5*time.Second, 10*time.Millisecond, "backlog of 5 not reported")
	handled := make(chan struct{}, 5)
	c := startConsume(t, b, 2, func(context.Context, *Observation) error { handled <- struct{}{}; return nil })
	for range 5 {
		<-handled
	}
	require.Eventually(t, func() bool { n, err := b.ObservationBacklog(ctx); return err == nil && n == 0 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, c.stop(t))
}
