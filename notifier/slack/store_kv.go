package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// KVMessageStore keeps the message references in a NATS KV bucket, shared by the replicas and
// kept across restarts.
type KVMessageStore struct {
	KV jetstream.KeyValue
	// OnPut, when set, is told of each proposal whose message Slack now has (Posting.Posted).
	OnPut func(ctx context.Context, id string)
}

var _ MessageStore = (*KVMessageStore)(nil)

// Get implements MessageStore.
func (s *KVMessageStore) Get(ctx context.Context, id string) (MessageRef, bool, error) {
	e, err := s.KV.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return MessageRef{}, false, nil
	}
	if err != nil {
		return MessageRef{}, false, err
	}
	var ref MessageRef
	if err := json.Unmarshal(e.Value(), &ref); err != nil {
		return MessageRef{}, false, fmt.Errorf("message ref of %s: %w", id, err)
	}
	return ref, true, nil
}

// Put implements MessageStore.
func (s *KVMessageStore) Put(ctx context.Context, id string, ref MessageRef) error {
	b, err := json.Marshal(ref)
	if err != nil {
		return err
	}
	if _, err = s.KV.Put(ctx, id, b); err != nil {
		return err
	}
	if s.OnPut != nil {
		s.OnPut(ctx, id)
	}
	return nil
}

// Has reports whether Slack has a message of the proposal.
func (s *KVMessageStore) Has(ctx context.Context, id string) (bool, error) {
	_, ok, err := s.Get(ctx, id)
	return ok, err
}
