package overrides

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/podmedic/podmedic/audit"
)

// Bucket is the NATS KV bucket of the overrides.
const Bucket = "podmedic-memory-overrides"

// ErrNotFound: no override with that id.
var ErrNotFound = errors.New("no such override")

// casAttempts bounds the compare-and-set retries of one change.
const casAttempts = 10

// Store keeps the overrides in a NATS KV bucket; every change is a compare-and-set on the
// entry's revision, so replicas never overwrite each other's change.
type Store struct {
	kv    jetstream.KeyValue
	now   func() time.Time
	audit Publisher
}

// Publisher writes audit records (bus.Bus implements it).
type Publisher interface {
	PublishJSON(ctx context.Context, subject, msgID string, v any) error
}

// Change is the audit record of a change of an override, on podmedic.audit.<cluster>.override.
type Change struct {
	// Change is stored (a new override), raised (an existing one updated by a later
	// approval) or revoked.
	Change   string   `json:"change"`
	Override Override `json:"override"`
}

// WithAudit makes the store write a Change record of every change it makes with p. The KV
// entry is the truth; a record that cannot be written is reported by the change's caller
// only as an error of the record (the change itself stands).
func (s *Store) WithAudit(p Publisher) *Store {
	c := *s
	c.audit = p
	return &c
}

// ErrAudit wraps a failure to write the audit record of a change that was made.
var ErrAudit = errors.New("override changed, but its audit record was not written")

func (s *Store) record(ctx context.Context, change string, o *Override) error {
	if s.audit == nil {
		return nil
	}
	id := fmt.Sprintf("override.%s.%s.%d", o.ID, change, o.UpdatedAt.UnixNano())
	if err := s.audit.PublishJSON(ctx, audit.Subject(o.Task.Cluster, audit.Override), id, Change{Change: change, Override: *o}); err != nil {
		return fmt.Errorf("%w: %v", ErrAudit, err)
	}
	return nil
}

// OpenBucket creates (or opens) the bucket. Entries outlive their expiry by a week so that
// `overrides list` still shows what expired; History 1.
func OpenBucket(ctx context.Context, js jetstream.JetStream, replicas int, ttl time.Duration) (jetstream.KeyValue, error) {
	if replicas <= 0 {
		replicas = 1
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: Bucket, Description: "memory overrides of Airflow tasks (podmedic)",
		History: 1, TTL: ttl + 7*24*time.Hour, Storage: jetstream.FileStorage, Replicas: replicas, MaxBytes: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("create KV bucket %s: %w", Bucket, err)
	}
	return kv, nil
}

// NewStore returns a store on kv; now is the clock (time.Now when nil).
func NewStore(kv jetstream.KeyValue, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{kv: kv, now: now}
}

// Put stores o, or raises the task's existing override to it (never lowering it), and returns
// what is stored.
func (s *Store) Put(ctx context.Context, o *Override) (*Override, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	for range casAttempts {
		cur, rev, err := s.get(ctx, o.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			b, _ := json.Marshal(o)
			if _, err := s.kv.Create(ctx, o.ID, b); errors.Is(err, jetstream.ErrKeyExists) {
				continue
			} else if err != nil {
				return nil, fmt.Errorf("store override %s: %w", o.ID, err)
			}
			return o, s.record(ctx, "stored", o)
		case err != nil:
			return nil, err
		}
		next, err := raise(cur, o)
		if err != nil {
			return nil, err
		}
		b, _ := json.Marshal(next)
		if _, err := s.kv.Update(ctx, o.ID, b, rev); isConflict(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("store override %s: %w", o.ID, err)
		}
		return next, s.record(ctx, "raised", next)
	}
	return nil, fmt.Errorf("store override %s: changed by others %d times in a row", o.ID, casAttempts)
}

// Revoke ends an override now: the webhook stops applying it. Revoking one already revoked
// changes nothing.
func (s *Store) Revoke(ctx context.Context, id, by string) (*Override, error) {
	for range casAttempts {
		cur, rev, err := s.get(ctx, id)
		if err != nil {
			return nil, err
		}
		if !cur.RevokedAt.IsZero() {
			return cur, nil
		}
		cur.RevokedAt, cur.RevokedBy, cur.UpdatedAt = s.now(), by, s.now()
		b, _ := json.Marshal(cur)
		if _, err := s.kv.Update(ctx, id, b, rev); isConflict(err) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("revoke override %s: %w", id, err)
		}
		return cur, s.record(ctx, "revoked", cur)
	}
	return nil, fmt.Errorf("revoke override %s: changed by others %d times in a row", id, casAttempts)
}

// Get returns the override with id.
func (s *Store) Get(ctx context.Context, id string) (*Override, error) {
	o, _, err := s.get(ctx, id)
	return o, err
}

func (s *Store) get(ctx context.Context, id string) (*Override, uint64, error) {
	e, err := s.kv.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read override %s: %w", id, err)
	}
	var o Override
	if err := json.Unmarshal(e.Value(), &o); err != nil {
		return nil, 0, fmt.Errorf("override %s: %w", id, err)
	}
	return &o, e.Revision(), nil
}

// List returns every override in the bucket (active, expired and revoked), by task. It reads
// them in one pass of a watch (one subscription, not a Get per key).
func (s *Store) List(ctx context.Context) ([]Override, error) {
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list overrides: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []Override
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list overrides: %w", context.Cause(ctx))
		case e, ok := <-w.Updates():
			if !ok || e == nil { // nil: the end of what the bucket holds
				sortByTask(out)
				return out, nil
			}
			var o Override
			if err := json.Unmarshal(e.Value(), &o); err != nil {
				return nil, fmt.Errorf("override %s: %w", e.Key(), err)
			}
			out = append(out, o)
		}
	}
}

func sortByTask(os []Override) {
	sort.Slice(os, func(i, j int) bool { return os[i].Task.String() < os[j].Task.String() })
}

func isConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyExists) || (errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence)
}

// Cache is every replica's copy of the overrides, kept current by a watch of the bucket: the
// webhook answers from it without a NATS round trip.
type Cache struct {
	mu       sync.RWMutex
	byTask   map[string]map[string]*Override // cluster/namespace/dag/task -> target (Task.Column) -> override
	byID     map[string]*Override
	revs     map[string]uint64 // the bucket revision of each key the cache holds
	ready    chan struct{}
	onChange func(ch Change, revision uint64)
}

// OnChange makes Run call fn with every change of an override it sees once it is ready (not
// for the values the bucket held when it started), whoever made it: this replica, another,
// the CLI. revision is the bucket's, the same on every replica. Call it before Run.
func (c *Cache) OnChange(fn func(ch Change, revision uint64)) { c.onChange = fn }

// NewCache returns an empty cache; Run fills it.
func NewCache() *Cache {
	return &Cache{byTask: map[string]map[string]*Override{}, byID: map[string]*Override{}, revs: map[string]uint64{}, ready: make(chan struct{})}
}

// Ready is closed once the cache holds everything the bucket held when Run started.
func (c *Cache) Ready() <-chan struct{} { return c.ready }

// Run watches kv until ctx ends.
func (c *Cache) Run(ctx context.Context, kv jetstream.KeyValue) error {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("watch %s: %w", Bucket, err)
	}
	defer func() { _ = w.Stop() }()
	initial := true
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if e == nil { // the end of the values the bucket held
				if initial {
					initial = false
					close(c.ready)
				}
				continue
			}
			if ch := c.apply(e); ch != nil && !initial && c.onChange != nil {
				c.onChange(*ch, e.Revision())
			}
		}
	}
}

// apply takes a change of the bucket in and says what it was: stored (new), revoked, or
// raised (any other update); nil for a deletion or an entry that is not an override.
func (c *Cache) apply(e jetstream.KeyValueEntry) *Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A watch that restarts delivers each key's latest value again (last per subject): a
	// revision the cache holds already is not a change.
	if r, ok := c.revs[e.Key()]; ok && e.Revision() <= r {
		return nil
	}
	c.revs[e.Key()] = e.Revision()
	old, had := c.byID[e.Key()]
	if had {
		delete(c.byTask[taskKey(old.Task)], old.Task.Column())
		delete(c.byID, e.Key())
	}
	if e.Operation() != jetstream.KeyValuePut {
		return nil
	}
	var o Override
	if json.Unmarshal(e.Value(), &o) != nil || o.ID != e.Key() {
		return nil
	}
	c.setLocked(&o)
	ch := &Change{Change: "raised", Override: o}
	switch {
	case !had:
		ch.Change = "stored"
	case !o.RevokedAt.IsZero() && old.RevokedAt.IsZero():
		ch.Change = "revoked"
	}
	return ch
}

// Set puts o in the cache directly (tests, and a replica that has just stored it).
func (c *Cache) Set(o Override) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(&o)
}

func (c *Cache) setLocked(o *Override) {
	k := taskKey(o.Task)
	if c.byTask[k] == nil {
		c.byTask[k] = map[string]*Override{}
	}
	// By target: a container's name, or a Spark role (a task's driver and executors each).
	c.byID[o.ID], c.byTask[k][o.Task.Column()] = o, o
}

func taskKey(t Task) string { return t.Cluster + "/" + t.Namespace + "/" + t.DagID + "/" + t.TaskID }

// Find returns the overrides of a task in force at now (one per container or Spark role), for
// cluster.
func (c *Cache) Find(cluster, namespace, dag, task string, now time.Time) []Override {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []Override
	for _, o := range c.byTask[taskKey(Task{Cluster: cluster, Namespace: namespace, DagID: dag, TaskID: task})] {
		if o.Active(now) {
			out = append(out, *o)
		}
	}
	slices.SortFunc(out, func(a, b Override) int { return strings.Compare(a.Task.Column(), b.Task.Column()) })
	return out
}

// Active counts the overrides in force at now.
func (c *Cache) Active(now time.Time) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	n := 0
	for _, o := range c.byID {
		if o.Active(now) {
			n++
		}
	}
	return n
}
