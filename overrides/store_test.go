package overrides

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/podmedic/podmedic/bus"
)

var t0 = time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC)

func task(container string) Task {
	return Task{Cluster: "prod-eu", Namespace: "airflow", DagID: "etl_daily", TaskID: "load", Container: container}
}

func override(limit, request, proposal string) *Override {
	tk := task("base")
	return &Override{ID: tk.ID(), Task: tk, Limit: limit, Request: request, MaxLimit: "16Gi", ProposalID: proposal,
		ApprovedBy: "U0ALICE", CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0.Add(DefaultTTL)}
}

// openStore opens the bucket on a real (embedded) NATS server.
func openStore(t *testing.T) (*Store, *bus.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	b, err := bus.Open(ctx, bus.Options{DataDir: t.TempDir(), Name: "overrides-test", Logger: zaptest.NewLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	kv, err := OpenBucket(ctx, b.JetStream(), 1, 0)
	require.NoError(t, err)
	return NewStore(kv, func() time.Time { return t0.Add(time.Hour) }), b
}

// TestPutRaisesNeverLowers: a second raise of the same task updates its override (the same
// id), keeps the higher values, and records the later proposal.
func TestPutRaisesNeverLowers(t *testing.T) {
	s, _ := openStore(t)
	ctx := context.Background()
	got, err := s.Put(ctx, override("3Gi", "2Gi", "p-1"))
	require.NoError(t, err)
	assert.Equal(t, "3Gi", got.Limit)

	higher := override("4Gi", "3Gi", "p-2")
	higher.UpdatedAt = t0.Add(time.Hour)
	got, err = s.Put(ctx, higher)
	require.NoError(t, err)
	assert.Equal(t, []string{"4Gi", "3Gi", "p-2"}, []string{got.Limit, got.Request, got.ProposalID})
	assert.Equal(t, t0, got.CreatedAt, "created once")

	smaller := override("2Gi", "1Gi", "p-3")
	smaller.UpdatedAt = t0.Add(2 * time.Hour)
	got, err = s.Put(ctx, smaller)
	require.NoError(t, err)
	assert.Equal(t, []string{"4Gi", "3Gi"}, []string{got.Limit, got.Request}, "never lowered")

	all, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, task("base").ID(), all[0].ID)
}

// TestPutRefusesWhatCannotApply: no task, an id that is not the task's, a request above the
// limit, a limit above max_limit.
func TestPutRefusesWhatCannotApply(t *testing.T) {
	s, _ := openStore(t)
	for _, c := range []struct {
		mutate func(*Override)
		want   string
	}{
		{func(o *Override) { o.Task.DagID = "" }, "dag_id"},
		{func(o *Override) { o.ID = "o-0000" }, "is not the task's"},
		{func(o *Override) { o.Request = "5Gi" }, "request 5Gi above limit 3Gi"},
		{func(o *Override) { o.Limit = "32Gi" }, "limit 32Gi above max_limit 16Gi"},
		{func(o *Override) { o.Limit = "lots" }, `limit "lots"`},
	} {
		o := override("3Gi", "2Gi", "p-1")
		c.mutate(o)
		_, err := s.Put(context.Background(), o)
		require.ErrorContains(t, err, c.want)
	}
	all, err := s.List(context.Background())
	require.NoError(t, err)
	assert.Empty(t, all, "nothing stored")
}

// TestConcurrentPuts: replicas raising the same override at once never lose a raise (the
// highest wins).
func TestConcurrentPuts(t *testing.T) {
	s, _ := openStore(t)
	var wg sync.WaitGroup
	for i, l := range []string{"3Gi", "5Gi", "4Gi", "6Gi", "2Gi", "3500Mi"} {
		wg.Go(func() {
			o := override(l, "1Gi", "p-"+string(rune('a'+i)))
			_, err := s.Put(context.Background(), o)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	got, err := s.Get(context.Background(), task("base").ID())
	require.NoError(t, err)
	assert.Equal(t, "6Gi", got.Limit)
}

// TestCacheFollowsTheBucket: a cache watching the bucket sees what another replica's store
// puts and revokes, and answers for the cluster, task and time asked.
func TestCacheFollowsTheBucket(t *testing.T) {
	s, b := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Put(ctx, override("3Gi", "2Gi", "p-1"))
	require.NoError(t, err)

	kv, err := OpenBucket(ctx, b.JetStream(), 1, 0)
	require.NoError(t, err)
	c := NewCache()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, kv) }()
	<-c.Ready()
	now := t0.Add(time.Hour)
	got := c.Find("prod-eu", "airflow", "etl_daily", "load", now)
	require.Len(t, got, 1, "present when the cache started")
	assert.Equal(t, "3Gi", got[0].Limit)
	assert.Empty(t, c.Find("prod-us", "airflow", "etl_daily", "load", now), "another cluster")
	assert.Empty(t, c.Find("prod-eu", "airflow", "etl_daily", "extract", now), "another task")
	assert.Empty(t, c.Find("prod-eu", "airflow", "etl_daily", "load", t0.Add(DefaultTTL+time.Second)), "expired")

	side := override("1Gi", "512Mi", "p-2")
	side.Task.Container = "sidecar"
	side.ID = side.Task.ID()
	_, err = s.Put(ctx, side)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(c.Find("prod-eu", "airflow", "etl_daily", "load", now)) == 2 },
		5*time.Second, 10*time.Millisecond, "a second container's override arrives")

	_, err = s.Revoke(ctx, task("base").ID(), "U0BOB")
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(c.Find("prod-eu", "airflow", "etl_daily", "load", now)) == 1 },
		5*time.Second, 10*time.Millisecond, "revoked: not applied any more")
	assert.Equal(t, 1, c.Active(now))
	o, err := s.Get(ctx, task("base").ID())
	require.NoError(t, err)
	assert.Equal(t, "revoked", o.State(now))
	assert.Equal(t, "U0BOB", o.RevokedBy)

	_, err = s.Revoke(ctx, "o-nope", "U0BOB")
	assert.True(t, errors.Is(err, ErrNotFound))
	cancel()
	require.NoError(t, <-done)
}

type recorder struct {
	subjects, changes []string
	fail              bool
}

func (r *recorder) PublishJSON(_ context.Context, subject, _ string, v any) error {
	if r.fail {
		return errors.New("stream unavailable")
	}
	r.subjects = append(r.subjects, subject)
	r.changes = append(r.changes, v.(Change).Change+" "+v.(Change).Override.Limit)
	return nil
}

// TestChangesAreAudited: every change writes its record on the cluster's audit subject; a
// record that cannot be written is an ErrAudit, and the change stands.
func TestChangesAreAudited(t *testing.T) {
	plain, _ := openStore(t)
	rec := &recorder{}
	s := plain.WithAudit(rec)
	ctx := context.Background()
	_, err := s.Put(ctx, override("3Gi", "2Gi", "p-1"))
	require.NoError(t, err)
	higher := override("4Gi", "2Gi", "p-2")
	higher.UpdatedAt = t0.Add(time.Minute)
	_, err = s.Put(ctx, higher)
	require.NoError(t, err)
	_, err = s.Revoke(ctx, task("base").ID(), "U0BOB")
	require.NoError(t, err)
	assert.Equal(t, []string{"stored 3Gi", "raised 4Gi", "revoked 4Gi"}, rec.changes)
	assert.Equal(t, "podmedic.audit.prod-eu.override", rec.subjects[0])

	rec.fail = true
	again := override("5Gi", "2Gi", "p-3")
	again.UpdatedAt = t0.Add(2 * time.Minute)
	got, err := s.Put(ctx, again)
	require.ErrorIs(t, err, ErrAudit)
	require.NotNil(t, got)
	stored, err := plain.Get(ctx, task("base").ID())
	require.NoError(t, err)
	assert.Equal(t, "5Gi", stored.Limit, "the change stands")
}

// BenchmarkOverrideReachesAnotherReplica is the time from a Put by one replica until another
// replica's Cache — its own NATS connection, as a second podmedic has — answers with it: how
// soon that replica's webhook applies an override approved elsewhere (target: within 1 s).
func BenchmarkOverrideReachesAnotherReplica(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	one, err := bus.Open(ctx, bus.Options{DataDir: b.TempDir(), Name: "overrides-bench", ListenAddr: "127.0.0.1:0", Logger: zap.NewNop()})
	require.NoError(b, err)
	defer one.Close()
	kv, err := OpenBucket(ctx, one.JetStream(), 1, 0)
	require.NoError(b, err)
	s := NewStore(kv, nil)
	other, err := bus.Open(ctx, bus.Options{URL: one.ClientURL(), Name: "overrides-bench-other", Logger: zap.NewNop()})
	require.NoError(b, err)
	defer other.Close()
	okv, err := OpenBucket(ctx, other.JetStream(), 1, 0)
	require.NoError(b, err)
	c := NewCache()
	go func() { _ = c.Run(ctx, okv) }()
	<-c.Ready()

	now := time.Now()
	b.ResetTimer()
	for i := range b.N {
		tk := Task{Cluster: "prod-eu", Namespace: "airflow", DagID: fmt.Sprintf("dag_%d", i), TaskID: "load", Container: "base"}
		o := &Override{ID: tk.ID(), Task: tk, Limit: "3Gi", Request: "2Gi", ProposalID: "p-1", ApprovedBy: "U0ALICE",
			CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(DefaultTTL)}
		if _, err := s.Put(ctx, o); err != nil {
			b.Fatal(err)
		}
		for len(c.Find("prod-eu", "airflow", tk.DagID, "load", now)) == 0 {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

// TestCacheReportsChanges: once ready, the cache reports every change it sees — stored,
// raised, revoked — with the bucket's revision; the values the bucket held when it started
// are not changes.
func TestCacheReportsChanges(t *testing.T) {
	s, b := openStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := s.Put(ctx, override("3Gi", "2Gi", "p-0"))
	require.NoError(t, err)
	kv, err := OpenBucket(ctx, b.JetStream(), 1, 0)
	require.NoError(t, err)
	c := NewCache()
	var mu sync.Mutex
	var seen []string
	revs := map[uint64]bool{}
	c.OnChange(func(ch Change, rev uint64) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, ch.Change+" "+ch.Override.Limit)
		revs[rev] = true
	})
	go func() { _ = c.Run(ctx, kv) }()
	<-c.Ready()

	// Each change is seen before the next is made (overrides change minutes apart): a watch
	// that restarts delivers only a key's latest value (last per subject), and the revisions
	// between are not changes it can report.
	seenN := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(seen) == n
		}, 5*time.Second, 10*time.Millisecond)
	}
	_, err = s.Put(ctx, override("4Gi", "3Gi", "p-1"))
	require.NoError(t, err)
	seenN(1)
	side := override("1Gi", "512Mi", "p-2")
	side.Task.Container = "sidecar"
	side.ID = side.Task.ID()
	_, err = s.Put(ctx, side)
	require.NoError(t, err)
	seenN(2)
	_, err = s.Revoke(ctx, task("base").ID(), "U0BOB")
	require.NoError(t, err)
	seenN(3)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"raised 4Gi", "stored 1Gi", "revoked 4Gi"}, seen)
	assert.Len(t, revs, 3, "each change has its own revision")
}

// TestCacheKeepsEachTarget: the overrides of one task are one per target — each container, and
// the driver and the executors of its SparkApplications apart — and the same task in another
// cluster sharing the bucket is another task.
func TestCacheKeepsEachTarget(t *testing.T) {
	c := NewCache()
	role := func(cluster, r string) Override {
		tk := Task{Cluster: cluster, Namespace: "airflow", DagID: "etl_daily", TaskID: "load", Role: r}
		return Override{ID: tk.ID(), Task: tk, Limit: "6Gi", Memory: "5g", MemoryOverhead: "1g", CreatedAt: t0, UpdatedAt: t0, ExpiresAt: t0.Add(DefaultTTL)}
	}
	c.Set(*override("3Gi", "2Gi", "p-1"))
	c.Set(role("prod-eu", "driver"))
	c.Set(role("prod-eu", "executor"))
	c.Set(role("prod-us", "driver"))
	var got []string
	for _, o := range c.Find("prod-eu", "airflow", "etl_daily", "load", t0) {
		got = append(got, o.Task.Column())
	}
	assert.Equal(t, []string{"base", "spark:driver", "spark:executor"}, got)
	us := c.Find("prod-us", "airflow", "etl_daily", "load", t0)
	require.Len(t, us, 1)
	assert.Equal(t, "prod-us", us[0].Task.Cluster)
}

// entry is a bucket entry as a watch delivers it.
type entry struct {
	jetstream.KeyValueEntry // the methods apply does not call
	key                     string
	value                   []byte
	rev                     uint64
}

func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return e.value }
func (e entry) Revision() uint64                { return e.rev }
func (e entry) Operation() jetstream.KeyValueOp { return jetstream.KeyValuePut }

// TestCacheIgnoresRedeliveries: an entry the cache holds already, delivered again by a watch
// that restarted, is not reported as a change; a newer revision is.
func TestCacheIgnoresRedeliveries(t *testing.T) {
	c := NewCache()
	o := override("3Gi", "2Gi", "p-1")
	raw, err := json.Marshal(o)
	require.NoError(t, err)
	ch := c.apply(entry{key: o.ID, value: raw, rev: 5})
	require.NotNil(t, ch)
	assert.Equal(t, "stored", ch.Change)
	assert.Nil(t, c.apply(entry{key: o.ID, value: raw, rev: 5}), "the same revision again")
	assert.Nil(t, c.apply(entry{key: o.ID, value: raw, rev: 4}), "an older one")
	ch = c.apply(entry{key: o.ID, value: raw, rev: 7})
	require.NotNil(t, ch)
	assert.Equal(t, "raised", ch.Change)
}
