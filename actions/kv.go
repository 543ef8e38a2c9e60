package actions

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"
)

// KV is a key-value store with compare-and-set, the semantics of a JetStream KV bucket
// (History >= 1): proposals and budgets live in one. The app adapts the bus's proposals
// bucket to it; MemoryKV is the in-process version for tests and single-process tools.
// Keys are dot-separated tokens of letters, digits, '-', '_' and '='.
type KV interface {
	// Get returns key's value and revision, or an error matching ErrKeyNotFound.
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	// Create stores value under key when key does not exist (or was deleted), else it
	// returns an error matching ErrKeyExists.
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	// Update stores value when key's revision is still rev, else it returns an error
	// matching ErrRevisionMismatch.
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	// Delete removes key; with rev > 0 only when its revision is still rev (else
	// ErrRevisionMismatch). Deleting a missing key is not an error.
	Delete(ctx context.Context, key string, rev uint64) error
	// Keys lists the keys under prefix, which ends with a dot ("proposal.").
	Keys(ctx context.Context, prefix string) ([]string, error)
}

// Entry is a key with its value and revision.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
}

// EntryLister is implemented by a KV that can read every entry under a prefix in one pass (a
// JetStream watch) rather than a Get per key.
type EntryLister interface {
	Entries(ctx context.Context, prefix string) ([]Entry, error)
}

// Errors of a KV.
var (
	ErrKeyNotFound      = errors.New("key not found")
	ErrKeyExists        = errors.New("key exists")
	ErrRevisionMismatch = errors.New("revision mismatch")
)

// Claimer claims keys for a time, exactly once across replicas: the dedup bucket's Claim
// (cooldowns, once-per-window refusal notices).
type Claimer interface {
	// Claim returns true for the first caller, false until ttl has passed.
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Release gives a claim up, so the next Claim of key succeeds.
	Release(ctx context.Context, key string) error
}

// OwnedClaimer is a Claimer whose claims can be owned (the bus): while an owned claim is
// open, its owner wins it again, so a request interrupted after its claim (a killed replica, a
// lost answer) is finished when it is retried; Settle closes the claim. The guard claims
// cooldowns this way when its Claimer can.
type OwnedClaimer interface {
	ClaimFor(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	Settle(ctx context.Context, key, owner string, ttl time.Duration) error
}

// MemoryKV is a KV in memory. It is safe for concurrent use.
type MemoryKV struct {
	mu   sync.Mutex
	rev  uint64
	data map[string]memEntry
}

type memEntry struct {
	value []byte
	rev   uint64
}

var (
	_ KV          = (*MemoryKV)(nil)
	_ EntryLister = (*MemoryKV)(nil)
)

// NewMemoryKV returns an empty MemoryKV.
func NewMemoryKV() *MemoryKV { return &MemoryKV{data: map[string]memEntry{}} }

// Get implements KV.
func (m *MemoryKV) Get(_ context.Context, key string) ([]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.data[key]
	if !ok {
		return nil, 0, ErrKeyNotFound
	}
	return append([]byte(nil), e.value...), e.rev, nil
}

// Create implements KV.
func (m *MemoryKV) Create(_ context.Context, key string, value []byte) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.data[key]; ok {
		return 0, ErrKeyExists
	}
	m.rev++
	m.data[key] = memEntry{value: append([]byte(nil), value...), rev: m.rev}
	return m.rev, nil
}

// Update implements KV.
func (m *MemoryKV) Update(_ context.Context, key string, value []byte, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.data[key]
	if !ok || e.rev != rev {
		return 0, ErrRevisionMismatch
	}
	m.rev++
	m.data[key] = memEntry{value: append([]byte(nil), value...), rev: m.rev}
	return m.rev, nil
}

// Delete implements KV.
func (m *MemoryKV) Delete(_ context.Context, key string, rev uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.data[key]
	if rev > 0 && (!ok || e.rev != rev) {
		return ErrRevisionMismatch
	}
	delete(m.data, key)
	return nil
}

// Keys implements KV.
func (m *MemoryKV) Keys(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for k := range m.data {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Entries implements EntryLister.
func (m *MemoryKV) Entries(_ context.Context, prefix string) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Entry
	for k, e := range m.data {
		if strings.HasPrefix(k, prefix) {
			out = append(out, Entry{Key: k, Value: append([]byte(nil), e.value...), Revision: e.rev})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// MemoryClaimer is a Claimer in memory with TTLs on the given clock. It is safe for
// concurrent use.
type MemoryClaimer struct {
	mu     sync.Mutex
	now    func() time.Time
	claims map[string]time.Time // key -> expiry
	owners map[string]string    // key -> owner of an open claim
}

var (
	_ Claimer      = (*MemoryClaimer)(nil)
	_ OwnedClaimer = (*MemoryClaimer)(nil)
)

// NewMemoryClaimer returns a MemoryClaimer; now defaults to time.Now.
func NewMemoryClaimer(now func() time.Time) *MemoryClaimer {
	if now == nil {
		now = time.Now
	}
	return &MemoryClaimer{now: now, claims: map[string]time.Time{}, owners: map[string]string{}}
}

// Claim implements Claimer.
func (m *MemoryClaimer) Claim(_ context.Context, key string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if exp, ok := m.claims[key]; ok && now.Before(exp) {
		return false, nil
	}
	m.claims[key] = now.Add(ttl)
	return true, nil
}

// Release implements Claimer.
func (m *MemoryClaimer) Release(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.claims, key)
	delete(m.owners, key)
	return nil
}

// ClaimFor implements OwnedClaimer.
func (m *MemoryClaimer) ClaimFor(_ context.Context, key, owner string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if exp, ok := m.claims[key]; ok && now.Before(exp) {
		return m.owners[key] == owner, nil
	}
	m.claims[key], m.owners[key] = now.Add(ttl), owner
	return true, nil
}

// Settle implements OwnedClaimer.
func (m *MemoryClaimer) Settle(_ context.Context, key, owner string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if exp, ok := m.claims[key]; ok && m.now().Before(exp) && m.owners[key] == owner {
		m.claims[key] = m.now().Add(ttl)
		delete(m.owners, key)
	}
	return nil
}

// Claimed reports whether key is claimed now (tests).
func (m *MemoryClaimer) Claimed(key string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.claims[key]
	return ok && m.now().Before(exp)
}
