package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// testBus opens a bus on an embedded server storing in dir.
func testBus(t testing.TB, dir string, mods ...func(*Options)) *Bus {
	t.Helper()
	o := Options{
		DataDir:      dir,
		Name:         "podmedic-test",
		Logger:       zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)),
		Metrics:      NewMetrics(prometheus.NewRegistry()),
		RetryDelay:   50 * time.Millisecond,
		DrainTimeout: 5 * time.Second,
	}
	for _, m := range mods {
		m(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	b, err := Open(ctx, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func podObs(i int) *Observation {
	return &Observation{
		Version:         EnvelopeVersion,
		Cluster:         "prod-eu",
		Type:            Updated,
		Kind:            KindPod,
		Namespace:       "airflow",
		Name:            fmt.Sprintf("etl-load-%d", i),
		UID:             fmt.Sprintf("uid-%d", i),
		ResourceVersion: "100",
		ObservedAt:      time.Date(2026, 11, 20, 2, 13, 9, 0, time.UTC),
		Object:          json.RawMessage(`{"metadata":{"name":"etl-load"}}`),
	}
}

// consumer runs Consume in the background; stop cancels it and returns Consume's result.
type consumer struct {
	cancel context.CancelFunc
	done   chan error
}

func startConsume(t *testing.T, b *Bus, workers int, h Handler) *consumer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &consumer{cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- b.Consume(ctx, workers, h) }()
	t.Cleanup(func() { _ = c.stop(t) })
	return c
}

func (c *consumer) stop(t *testing.T) error {
	c.cancel()
	select {
	case err, ok := <-c.done:
		if ok {
			close(c.done)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Consume did not return within 20s of cancel")
		return nil
	}
}

// recorder is a Handler that records the MsgIDs it handled.
type recorder struct {
	mu  sync.Mutex
	ids map[string]int
	n   atomic.Int64
}

func newRecorder() *recorder { return &recorder{ids: map[string]int{}} }

func (r *recorder) handle(_ context.Context, o *Observation) error {
	r.mu.Lock()
	r.ids[o.MsgID()]++
	r.mu.Unlock()
	r.n.Add(1)
	return nil
}

func (r *recorder) snapshot() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.ids))
	for k, v := range r.ids {
		m[k] = v
	}
	return m
}

func streamMsgs(t *testing.T, b *Bus, name string) uint64 {
	t.Helper()
	s, err := b.JetStream().Stream(testCtx(t), name)
	require.NoError(t, err)
	info, err := s.Info(testCtx(t))
	require.NoError(t, err)
	return info.State.Msgs
}

func consumerInfo(t *testing.T, b *Bus) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := b.JetStream().Consumer(testCtx(t), StreamObservations, ConsumerRules)
	require.NoError(t, err)
	info, err := c.Info(testCtx(t))
	require.NoError(t, err)
	return info
}

func requireStreamEmpty(t *testing.T, b *Bus) {
	t.Helper()
	require.Eventually(t, func() bool { return streamMsgs(t, b, StreamObservations) == 0 },
		5*time.Second, 20*time.Millisecond, "observation stream should end empty (work queue)")
}

func handled(b *Bus, outcome string) float64 {
	return testutil.ToFloat64(b.metrics.Handled.WithLabelValues(outcome))
}

func TestPublishDedup(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)

	o := podObs(1)
	require.NoError(t, b.PublishObservation(ctx, o))
	require.NoError(t, b.PublishObservation(ctx, o), "a duplicate is not an error")
	del := *o
	del.Type = Deleted
	require.NoError(t, b.PublishObservation(ctx, &del))

	require.Equal(t, 2.0, testutil.ToFloat64(b.metrics.Published))
	require.Equal(t, 1.0, testutil.ToFloat64(b.metrics.Duplicates))
	require.Equal(t, uint64(2), streamMsgs(t, b, StreamObservations))

	r := newRecorder()
	startConsume(t, b, 2, r.handle)
	require.Eventually(t, func() bool { return r.n.Load() == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool { return r.n.Load() > 2 }, 300*time.Millisecond, 10*time.Millisecond, "nothing else arrives")
	require.Equal(t, map[string]int{
		"prod-eu/uid-1/100":         1,
		"prod-eu/uid-1/100/DELETED": 1,
	}, r.snapshot())
	requireStreamEmpty(t, b)
}

func TestPublishHeadersAndSubject(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)

	o := &Observation{
		Cluster: "prod.eu", Type: Added, Kind: KindEvent, Namespace: "spark",
		Name: "driver-0.17a8c", UID: "ev-1", ResourceVersion: "7", Reason: "FailedMount",
		Object: json.RawMessage(`{"reason":"FailedMount"}`),
	} // Version 0: PublishObservation sets it
	require.NoError(t, b.PublishObservation(ctx, o))
	require.Equal(t, 0, o.Version, "the caller's observation is not modified")

	s, err := b.JetStream().Stream(ctx, StreamObservations)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(ctx, "podmedic.obs.prod_eu.event.spark.driver-0_17a8c")
	require.NoError(t, err)
	require.Equal(t, "ADDED", m.Header.Get(HeaderType))
	require.Equal(t, "Event", m.Header.Get(HeaderKind))
	require.Equal(t, "FailedMount", m.Header.Get(HeaderReason))
	require.Equal(t, "prod.eu/ev-1/7", m.Header.Get(jetstream.MsgIDHeader))
	got, err := DecodeObservation(m.Data)
	require.NoError(t, err)
	require.Equal(t, EnvelopeVersion, got.Version)

	// What consumers would terminate is refused at the source.
	bad := podObs(3)
	bad.UID = ""
	require.ErrorIs(t, b.PublishObservation(ctx, bad), ErrMalformed)
	require.Equal(t, 1.0, testutil.ToFloat64(b.metrics.PublishErrors))

	// A pod observation has no reason header.
	require.NoError(t, b.PublishObservation(ctx, podObs(2)))
	m, err = s.GetLastMsgForSubject(ctx, podObs(2).Subject())
	require.NoError(t, err)
	require.Empty(t, m.Header.Values(HeaderReason))
}

func TestConsumeNakThenAck(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	require.NoError(t, b.PublishObservation(ctx, podObs(1)))

	var calls atomic.Int32
	acked := make(chan struct{})
	startConsume(t, b, 1, func(_ context.Context, o *Observation) error {
		if calls.Add(1) == 1 {
			return errors.New("apiserver unavailable")
		}
		close(acked)
		return nil
	})
	select {
	case <-acked:
	case <-ctx.Done():
		t.Fatal("the message was not redelivered after the first failure")
	}
	requireStreamEmpty(t, b)
	require.Never(t, func() bool { return calls.Load() > 2 }, 300*time.Millisecond, 10*time.Millisecond, "no third delivery")
	require.Equal(t, int32(2), calls.Load())
	require.Equal(t, 1.0, handled(b, OutcomeNak))
	require.Equal(t, 1.0, handled(b, OutcomeAck))
	ci := consumerInfo(t, b)
	require.Zero(t, ci.NumAckPending)
	require.Zero(t, ci.NumPending)
}

func TestConsumeMalformed(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	js := b.JetStream()
	_, err := js.Publish(ctx, "podmedic.obs.x", []byte(`{"v":99}`))
	require.NoError(t, err)
	_, err = js.Publish(ctx, "podmedic.obs.x", []byte(`not json`))
	require.NoError(t, err)
	require.NoError(t, b.PublishObservation(ctx, podObs(1)))

	r := newRecorder()
	startConsume(t, b, 1, r.handle)
	require.Eventually(t, func() bool { return r.n.Load() == 1 }, 5*time.Second, 10*time.Millisecond,
		"the good message after two malformed ones is handled")
	requireStreamEmpty(t, b)
	require.Eventually(t, func() bool { return handled(b, OutcomeTerm) == 2 && handled(b, OutcomeAck) == 1 },
		5*time.Second, 10*time.Millisecond, "two terminated, one acked")
	require.Never(t, func() bool { return r.n.Load() > 1 }, 300*time.Millisecond, 10*time.Millisecond, "nothing else is handled")

	require.Equal(t, 2.0, testutil.ToFloat64(b.metrics.Malformed))
	require.Equal(t, 2.0, handled(b, OutcomeTerm))
	require.Equal(t, 1.0, handled(b, OutcomeAck))
	require.Equal(t, map[string]int{"prod-eu/uid-1/100": 1}, r.snapshot())
	ci := consumerInfo(t, b)
	require.Equal(t, uint64(3), ci.Delivered.Stream)
	require.Zero(t, ci.NumRedelivered)
	require.Zero(t, ci.NumAckPending)
}

func TestConsumePermanent(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	require.NoError(t, b.PublishObservation(ctx, podObs(1)))

	var calls atomic.Int32
	startConsume(t, b, 1, func(context.Context, *Observation) error {
		calls.Add(1)
		return fmt.Errorf("pod template has no containers: %w", ErrPermanent)
	})
	requireStreamEmpty(t, b)
	// 10x RetryDelay: a nak would have come back.
	require.Never(t, func() bool { return calls.Load() > 1 }, 500*time.Millisecond, 10*time.Millisecond, "not redelivered")
	require.Eventually(t, func() bool { return handled(b, OutcomeTerm) == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 1.0, handled(b, OutcomeTerm))
	require.Zero(t, handled(b, OutcomeNak))
	require.Zero(t, consumerInfo(t, b).NumRedelivered)
}

func TestConsumeGivesUpOnLastDelivery(t *testing.T) {
	b := testBus(t, t.TempDir(), func(o *Options) { o.RetryDelay = 5 * time.Millisecond })
	ctx := testCtx(t)
	require.NoError(t, b.PublishObservation(ctx, podObs(1)))

	var calls atomic.Int32
	startConsume(t, b, 1, func(context.Context, *Observation) error {
		calls.Add(1)
		return errors.New("still failing")
	})
	// 5ms doubled per delivery: about 2.6s for 10 deliveries.
	require.Eventually(t, func() bool { return calls.Load() == MaxDeliver }, 15*time.Second, 10*time.Millisecond)
	requireStreamEmpty(t, b)
	require.Equal(t, float64(MaxDeliver-1), handled(b, OutcomeNak))
	require.Equal(t, 1.0, handled(b, OutcomeTerm))
}

func TestConsumeGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	b := testBus(t, dir)
	ctx := testCtx(t)
	require.NoError(t, b.PublishObservation(ctx, podObs(1)))

	entered := make(chan struct{})
	release := make(chan struct{})
	var handlerCtxErr atomic.Value
	var handlerDone atomic.Bool
	c := startConsume(t, b, 2, func(hctx context.Context, o *Observation) error {
		close(entered)
		<-release
		time.Sleep(50 * time.Millisecond)
		handlerCtxErr.Store(fmt.Sprint(hctx.Err()))
		handlerDone.Store(true)
		return nil
	})
	<-entered
	c.cancel()
	go func() { time.Sleep(300 * time.Millisecond); close(release) }()
	require.NoError(t, c.stop(t))
	require.True(t, handlerDone.Load(), "Consume returned before the in-flight handler finished")
	require.Equal(t, "<nil>", handlerCtxErr.Load(), "the handler's context is not cancelled by shutdown")
	require.Equal(t, 1.0, handled(b, OutcomeAck))
	require.NoError(t, b.Close())

	// Reopen: the message was acked, so it is gone and never comes back.
	b2 := testBus(t, dir)
	require.Zero(t, streamMsgs(t, b2, StreamObservations))
	ci := consumerInfo(t, b2)
	require.Zero(t, ci.NumAckPending)
	require.Zero(t, ci.NumPending)
	r := newRecorder()
	startConsume(t, b2, 1, r.handle)
	require.Never(t, func() bool { return r.n.Load() > 0 }, 500*time.Millisecond, 10*time.Millisecond, "an acked message never comes back")
}

func TestConsumeDrainDeadline(t *testing.T) {
	b := testBus(t, t.TempDir(), func(o *Options) { o.DrainTimeout = 300 * time.Millisecond })
	ctx := testCtx(t)
	require.NoError(t, b.PublishObservation(ctx, podObs(1)))

	entered := make(chan struct{})
	c := startConsume(t, b, 1, func(hctx context.Context, o *Observation) error {
		close(entered)
		<-hctx.Done() // a handler that only stops when told to
		return hctx.Err()
	})
	<-entered
	start := time.Now()
	require.NoError(t, c.stop(t))
	require.Less(t, time.Since(start), 3*time.Second)
	require.Equal(t, 1.0, handled(b, OutcomeNak), "the cancelled handler's message is handed back")
}

func TestPersistenceAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	b := testBus(t, dir)
	ctx := testCtx(t)
	for i := range 10 {
		require.NoError(t, b.PublishObservation(ctx, podObs(i)))
	}
	require.NoError(t, b.Close())

	b2 := testBus(t, dir)
	r := newRecorder()
	startConsume(t, b2, 2, r.handle)
	require.Eventually(t, func() bool { return r.n.Load() == 10 }, 10*time.Second, 10*time.Millisecond)
	got := r.snapshot()
	require.Len(t, got, 10)
	for i := range 10 {
		require.Equal(t, 1, got[podObs(i).MsgID()])
	}
	requireStreamEmpty(t, b2)
}

func TestClaim(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)

	ok, err := b.Claim(ctx, "cooldown.airflow.etl-load", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = b.Claim(ctx, "cooldown.airflow.etl-load", time.Hour)
	require.NoError(t, err)
	require.False(t, ok)

	ok, err = b.Claim(ctx, "notice.oom.uid-1", time.Second)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = b.Claim(ctx, "notice.oom.uid-1", time.Second)
	require.NoError(t, err)
	require.False(t, ok)
	start := time.Now()
	require.Eventually(t, func() bool {
		ok, err := b.Claim(ctx, "notice.oom.uid-1", time.Second)
		require.NoError(t, err)
		return ok
	}, 5*time.Second, 50*time.Millisecond, "the claim expires with its TTL")
	t.Logf("claim re-acquired %s after the failed attempt", time.Since(start).Round(10*time.Millisecond))
	ok, err = b.Claim(ctx, "notice.oom.uid-1", time.Second)
	require.NoError(t, err)
	require.False(t, ok, "re-claimed after expiry, so held again")

	// Release (a failed delivery) makes the key claimable again at once.
	ok, err = b.Claim(ctx, "notice.crashloop.uid-2", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, b.Release(ctx, "notice.crashloop.uid-2"))
	ok, err = b.Claim(ctx, "notice.crashloop.uid-2", time.Hour)
	require.NoError(t, err)
	require.True(t, ok)

	_, err = b.Claim(ctx, "x", 10*time.Millisecond)
	require.ErrorContains(t, err, "below the minimum")
}

func TestProposalsCompareAndSet(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	kv := b.Proposals()
	st, err := kv.Status(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(ProposalHistory), st.History())

	rev, err := kv.Create(ctx, "p-1", []byte(`{"state":"pending"}`))
	require.NoError(t, err)
	_, err = kv.Create(ctx, "p-1", []byte(`{"state":"pending"}`))
	require.ErrorIs(t, err, jetstream.ErrKeyExists)
	_, err = kv.Update(ctx, "p-1", []byte(`{"state":"approved"}`), rev)
	require.NoError(t, err)
	_, err = kv.Update(ctx, "p-1", []byte(`{"state":"executing"}`), rev)
	require.Error(t, err, "a stale revision loses")
}

func TestPublishJSON(t *testing.T) {
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)
	v := map[string]string{"kind": "OOMKilled", "pod": "etl-load-7f9c"}
	require.NoError(t, b.PublishJSON(ctx, SubjectFindings+".prod-eu.OOMKilled", "f-1", v))
	require.NoError(t, b.PublishJSON(ctx, SubjectFindings+".prod-eu.OOMKilled", "f-1", v))
	require.NoError(t, b.PublishJSON(ctx, SubjectAudit+".proposal", "", v))
	require.NoError(t, b.PublishJSON(ctx, SubjectAudit+".proposal", "", v))
	require.Equal(t, uint64(3), streamMsgs(t, b, StreamAudit))
	require.Equal(t, 1.0, testutil.ToFloat64(b.metrics.Duplicates))

	err := b.PublishJSON(ctx, "podmedic.obs.x", "", v)
	require.ErrorContains(t, err, `subject "podmedic.obs.x" is not under podmedic.findings or podmedic.audit`)
	err = b.PublishJSON(ctx, "podmedic.findingsx", "", v)
	require.Error(t, err)
}

func TestOpenUnreachable(t *testing.T) {
	start := time.Now()
	_, err := Open(testCtx(t), Options{URL: "nats://127.0.0.1:1", ConnectTimeout: 2 * time.Second, Logger: zaptest.NewLogger(t)})
	require.Error(t, err)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Contains(t, err.Error(), "connect to NATS at nats://127.0.0.1:1: ")
	require.Contains(t, err.Error(), "connection refused")
	t.Log(err)

	_, err = Open(testCtx(t), Options{URL: "nats://admin:s3cret@127.0.0.1:1,nats://tok3n@127.0.0.1:2", ConnectTimeout: time.Second})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cret")
	require.NotContains(t, err.Error(), "tok3n")
	t.Log(err)
}

func TestOpenValidation(t *testing.T) {
	_, err := Open(testCtx(t), Options{})
	require.ErrorContains(t, err, "DataDir is required")
	_, err = Open(testCtx(t), Options{DataDir: t.TempDir(), Replicas: 3})
	require.ErrorContains(t, err, "Replicas must be 1")
}

// An embedded server that listens is reachable as an external URL, and a second Open on the
// same assets (another replica, a restart) is fine.
func TestListenAndSecondReplica(t *testing.T) {
	b := testBus(t, t.TempDir(), func(o *Options) { o.ListenAddr = "127.0.0.1:0" })
	url := b.ClientURL()
	require.True(t, strings.HasPrefix(url, "nats://127.0.0.1:"), url)
	require.NoError(t, b.Ready(testCtx(t)))

	ext := testBus(t, "", func(o *Options) { o.URL = url })
	require.NoError(t, ext.Ready(testCtx(t)))
	require.Empty(t, ext.ClientURL())

	// Published by one replica, handled by the other.
	require.NoError(t, ext.PublishObservation(testCtx(t), podObs(1)))
	require.NoError(t, b.PublishObservation(testCtx(t), podObs(1)))
	r := newRecorder()
	startConsume(t, b, 1, r.handle)
	require.Eventually(t, func() bool { return r.n.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, 1.0, testutil.ToFloat64(b.metrics.Duplicates))
}

func TestConsumeConcurrent(t *testing.T) {
	const n = 2000
	b := testBus(t, t.TempDir())
	ctx := testCtx(t)

	var wg sync.WaitGroup
	errs := make(chan error, n)
	for p := range 4 {
		wg.Go(func() {
			for i := p; i < n; i += 4 {
				if err := b.PublishObservation(ctx, podObs(i)); err != nil {
					errs <- err
				}
			}
		})
	}
	r := newRecorder()
	startConsume(t, b, 4, r.handle)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	if !assert.Eventually(t, func() bool { return r.n.Load() >= n }, 60*time.Second, 10*time.Millisecond) {
		ci := consumerInfo(t, b)
		t.Fatalf("handled %d of %d; consumer: pending %d, ack pending %d, waiting %d, redelivered %d, delivered %d",
			r.n.Load(), n, ci.NumPending, ci.NumAckPending, ci.NumWaiting, ci.NumRedelivered, ci.Delivered.Stream)
	}
	require.Never(t, func() bool { return r.n.Load() > int64(n) }, 200*time.Millisecond, 10*time.Millisecond, "no duplicates")
	got := r.snapshot()
	require.Len(t, got, n)
	for id, c := range got {
		require.Equal(t, 1, c, id)
	}
	require.Equal(t, float64(n), handled(b, OutcomeAck))
	requireStreamEmpty(t, b)
}

func TestRetryDelay(t *testing.T) {
	for delivered, want := range map[uint64]time.Duration{
		1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 16 * time.Second, 6: MaxRetryDelay, 10: MaxRetryDelay, 64: MaxRetryDelay,
	} {
		for range 20 {
			d := retryDelay(time.Second, delivered)
			require.LessOrEqual(t, d, MaxRetryDelay)
			require.InDelta(t, float64(want), float64(d), float64(want)/5+1, "delivery %d", delivered)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	require.Equal(t, "nats://redacted@a:4222,nats://b:4222,nats://redacted@c:4222",
		redactURLs("nats://u:p@a:4222, nats://b:4222,nats://token@c:4222"))
}

// A handler that ignores its context does not keep Consume from returning.
func TestConsumeStuckHandler(t *testing.T) {
	b := testBus(t, t.TempDir(), func(o *Options) { o.DrainTimeout = 200 * time.Millisecond })
	ctx := testCtx(t)
	require.NoError(t, b.PublishObservation(ctx, podObs(1)))

	entered := make(chan struct{})
	unblock := make(chan struct{})
	defer close(unblock)
	c := startConsume(t, b, 1, func(context.Context, *Observation) error {
		close(entered)
		<-unblock
		return nil
	})
	<-entered
	start := time.Now()
	err := c.stop(t)
	require.ErrorContains(t, err, "handlers still running")
	require.Less(t, time.Since(start), 8*time.Second)
}
