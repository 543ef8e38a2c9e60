package slack

import (
	"context"
	"sync"
)

// MessageRef says where a message is.
type MessageRef struct {
	// Channel is the channel id Slack answered (chat.update needs the id, not "#name").
	Channel string `json:"channel"`
	TS      string `json:"ts"`
}

// MessageStore remembers the message posted for each proposal, so that a decision that
// arrives after a restart (or on another replica) updates that message. app backs it with a
// NATS KV bucket; MemoryStore is the in-process default.
type MessageStore interface {
	// Get returns the message of a proposal; ok is false when there is none.
	Get(ctx context.Context, proposalID string) (ref MessageRef, ok bool, err error)
	// Put records the message of a proposal.
	Put(ctx context.Context, proposalID string, ref MessageRef) error
}

// MemoryStore is a MessageStore in memory. It is safe for concurrent use.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string]MessageRef
}

var _ MessageStore = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string]MessageRef{}} }

// Get implements MessageStore.
func (s *MemoryStore) Get(_ context.Context, id string) (MessageRef, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.m[id]
	return r, ok, nil
}

// Put implements MessageStore.
func (s *MemoryStore) Put(_ context.Context, id string, ref MessageRef) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = ref
	return nil
}
