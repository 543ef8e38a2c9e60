package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
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

// TestFramesAreFewMessages: a batch goes out as frames of up to MaxFrameObservations in one
// message each; every observation is delivered once, as itself.
func TestFramesAreFewMessages(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	var obs []*Observation
	for i := range MaxFrameObservations + 44 {
		obs = append(obs, podObs(i))
	}
	for i, err := range b.PublishObservations(ctx, obs) {
		require.NoError(t, err, "observation %d", i)
	}
	require.Equal(t, uint64(2), streamMsgs(t, b, StreamObservations), "two frames")
	// The same batch again (another replica framing alike): deduplicated as a whole.
	for _, err := range b.PublishObservations(ctx, obs) {
		require.NoError(t, err)
	}
	require.Equal(t, uint64(2), streamMsgs(t, b, StreamObservations), "the same frames are duplicates")

	r := newRecorder()
	c := startConsume(t, b, 2, r.handle)
	require.Eventually(t, func() bool { return r.n.Load() == int64(len(obs)) }, 20*time.Second, 10*time.Millisecond)
	requireStreamEmpty(t, b)
	require.NoError(t, c.stop(t))
	for _, o := range obs {
		require.Equal(t, 1, r.snapshot()[o.MsgID()], o.MsgID())
	}
	require.Equal(t, float64(len(obs)), handled(b, OutcomeAck))
}

// TestFrameMemberFailures: in a frame, an observation whose handler fails is retried on its
// own and the others are not handled again; a permanent failure and a malformed member are
// terminated alone.
func TestFrameMemberFailures(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	var obs []*Observation
	for i := range 10 {
		obs = append(obs, podObs(i))
	}
	f := &frame{}
	for i, o := range obs {
		m, id, err := prepareObservation(o)
		require.NoError(t, err)
		f.add(i, o.Cluster, id, m)
	}
	m, id := f.msg()
	m.Data = append(m.Data, []byte("\n{\"v\":1,\"kind\":\"Pod\"}")...) // a malformed member
	_, err := b.JetStream().PublishMsg(ctx, m, jetstream.WithMsgID(id))
	require.NoError(t, err)

	var mu sync.Mutex
	calls := map[string]int{}
	c := startConsume(t, b, 2, func(_ context.Context, o *Observation) error {
		mu.Lock()
		defer mu.Unlock()
		calls[o.Name]++
		switch {
		case o.Name == "etl-load-3" && calls[o.Name] == 1:
			return errors.New("dedup store unavailable")
		case o.Name == "etl-load-7":
			return fmt.Errorf("%w: cannot decode", ErrPermanent)
		}
		return nil
	})
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls["etl-load-3"] == 2
	}, 20*time.Second, 10*time.Millisecond, "the failed member is retried")
	requireStreamEmpty(t, b)
	require.NoError(t, c.stop(t))
	for _, o := range obs {
		want := 1
		if o.Name == "etl-load-3" {
			want = 2
		}
		require.Equal(t, want, calls[o.Name], o.Name)
	}
	require.Equal(t, 1.0, testutil.ToFloat64(b.metrics.Malformed))
	require.Equal(t, 2.0, handled(b, OutcomeTerm), "the malformed member and the permanent failure")
	require.Equal(t, 1.0, handled(b, OutcomeNak))
	require.Equal(t, 9.0, handled(b, OutcomeAck))
}
