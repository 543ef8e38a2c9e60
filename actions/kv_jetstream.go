package actions

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// JetStreamKV adapts a JetStream KV bucket to KV.
type JetStreamKV struct{ KV jetstream.KeyValue }

var (
	_ KV          = JetStreamKV{}
	_ EntryLister = JetStreamKV{}
)

// Get implements KV.
func (k JetStreamKV) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	e, err := k.KV.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, fmt.Errorf("%s: %w", key, ErrKeyNotFound)
	}
	if err != nil {
		return nil, 0, err
	}
	return e.Value(), e.Revision(), nil
}

// Create implements KV.
func (k JetStreamKV) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := k.KV.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, fmt.Errorf("%s: %w", key, ErrKeyExists)
	}
	return rev, err
}

// Update implements KV.
func (k JetStreamKV) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	rev, err := k.KV.Update(ctx, key, value, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, fmt.Errorf("%s: %w", key, ErrRevisionMismatch)
	}
	return rev, err
}

// Delete implements KV: a purge, so the key's history goes too.
func (k JetStreamKV) Delete(ctx context.Context, key string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev > 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	err := k.KV.Purge(ctx, key, opts...)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || rev > 0 && errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("%s: %w", key, ErrRevisionMismatch)
	}
	return err
}

// Keys implements KV.
func (k JetStreamKV) Keys(ctx context.Context, prefix string) ([]string, error) {
	lister, err := k.KV.ListKeysFiltered(ctx, prefix+">")
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for key := range lister.Keys() {
		if !seen[key] { // a busy bucket may list a key twice
			seen[key] = true
			out = append(out, key)
		}
	}
	return out, ctx.Err()
}

// Entries implements EntryLister: one watch of the prefix delivers the latest value
// of every key.
func (k JetStreamKV) Entries(ctx context.Context, prefix string) ([]Entry, error) {
	w, err := k.KV.WatchFiltered(ctx, []string{prefix + ">"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, err
	}
	defer func() { _ = w.Stop() }()
	latest := map[string]Entry{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("watch of " + prefix + " stopped")
			}
			if e == nil { // every current value delivered
				out := make([]Entry, 0, len(latest))
				for _, v := range latest {
					out = append(out, v)
				}
				return out, nil
			}
			if e.Operation() == jetstream.KeyValuePut {
				latest[e.Key()] = Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision()}
			} else {
				delete(latest, e.Key())
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
