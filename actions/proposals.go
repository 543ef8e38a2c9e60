package actions

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/podmedic/podmedic/finding"
)

// ProposalStore keeps proposals with compare-and-set: Create fails for an id that exists, and
// Update succeeds only from the revision the proposal was read at, so of two racing decisions
// (two replicas, a double click) exactly one wins.
type ProposalStore interface {
	// Create stores a new proposal and sets its Revision; ErrKeyExists when the id exists.
	Create(ctx context.Context, p *finding.Proposal) error
	// Get returns the proposal with its Revision; ErrKeyNotFound when unknown.
	Get(ctx context.Context, id string) (*finding.Proposal, error)
	// Update stores p if the stored revision is still p.Revision, and sets the new one;
	// else ErrRevisionMismatch.
	Update(ctx context.Context, p *finding.Proposal) error
	// Delete removes the proposal if its revision is still rev.
	Delete(ctx context.Context, id string, rev uint64) error
	// List returns every proposal, in no particular order.
	List(ctx context.Context) ([]finding.Proposal, error)
}

// KVProposalStore is a ProposalStore in a KV, one key per proposal: "proposal.<id>".
type KVProposalStore struct{ KV KV }

var _ ProposalStore = KVProposalStore{}

const proposalPrefix = "proposal."

// Create implements ProposalStore.
func (s KVProposalStore) Create(ctx context.Context, p *finding.Proposal) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	rev, err := s.KV.Create(ctx, proposalPrefix+p.ID, data)
	if err != nil {
		return fmt.Errorf("create proposal %s: %w", p.ID, err)
	}
	p.Revision = rev
	return nil
}

// Get implements ProposalStore.
func (s KVProposalStore) Get(ctx context.Context, id string) (*finding.Proposal, error) {
	if !ValidProposalID(id) {
		return nil, fmt.Errorf("proposal %q: %w", id, ErrKeyNotFound)
	}
	data, rev, err := s.KV.Get(ctx, proposalPrefix+id)
	if err != nil {
		return nil, fmt.Errorf("get proposal %s: %w", id, err)
	}
	var p finding.Proposal
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("decode proposal %s: %w", id, err)
	}
	p.Revision = rev
	return &p, nil
}

// Update implements ProposalStore.
func (s KVProposalStore) Update(ctx context.Context, p *finding.Proposal) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	rev, err := s.KV.Update(ctx, proposalPrefix+p.ID, data, p.Revision)
	if err != nil {
		return fmt.Errorf("update proposal %s: %w", p.ID, err)
	}
	p.Revision = rev
	return nil
}

// Delete implements ProposalStore.
func (s KVProposalStore) Delete(ctx context.Context, id string, rev uint64) error {
	return s.KV.Delete(ctx, proposalPrefix+id, rev)
}

// List implements ProposalStore. With a KV that is an EntryLister it reads the bucket in one
// pass.
func (s KVProposalStore) List(ctx context.Context) ([]finding.Proposal, error) {
	if l, ok := s.KV.(EntryLister); ok {
		entries, err := l.Entries(ctx, proposalPrefix)
		if err != nil {
			return nil, fmt.Errorf("list proposals: %w", err)
		}
		out := make([]finding.Proposal, 0, len(entries))
		for _, e := range entries {
			var p finding.Proposal
			if err := json.Unmarshal(e.Value, &p); err != nil {
				return nil, fmt.Errorf("decode proposal %s: %w", e.Key, err)
			}
			p.Revision = e.Revision
			out = append(out, p)
		}
		return out, nil
	}
	keys, err := s.KV.Keys(ctx, proposalPrefix)
	if err != nil {
		return nil, fmt.Errorf("list proposals: %w", err)
	}
	out := make([]finding.Proposal, 0, len(keys))
	for _, k := range keys {
		p, err := s.Get(ctx, strings.TrimPrefix(k, proposalPrefix))
		if errors.Is(err, ErrKeyNotFound) {
			continue // deleted while listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *p)
	}
	return out, nil
}

// idEncoding is lowercase base32 without padding: URL-safe, unambiguous when read aloud.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ProposalIDLen is the length of a proposal id.
const ProposalIDLen = 13

// ProposalID is the id of the action planned for a finding: 13 lowercase base32 characters
// (64 bits) of a hash of the finding's key and the action type. It is deterministic, so a
// finding handled twice (a retried delivery, another replica) maps to the same proposal and
// is never proposed or executed twice; findings are unique per failure, so ids are too.
func ProposalID(f *finding.Finding) string {
	t := ""
	if f.Action != nil {
		t = string(f.Action.Type)
	}
	h := sha256.Sum256([]byte(f.Key() + "\x00" + t))
	return idEncoding.EncodeToString(h[:8])
}

// ValidProposalID reports whether id has the shape of a proposal id, so that user input never
// reaches the store as a key it was not meant to be.
func ValidProposalID(id string) bool {
	if len(id) != ProposalIDLen {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

// Errors of a decision on a proposal. The messages are for the human who decided.
var (
	ErrUnknownProposal = errors.New("unknown proposal")
	ErrAlreadyDecided  = errors.New("proposal already decided")
	ErrProposalExpired = errors.New("proposal expired")
)

// DecisionError refuses a decision on a proposal that is unknown, expired or already decided.
type DecisionError struct {
	// Err is ErrUnknownProposal, ErrAlreadyDecided or ErrProposalExpired.
	Err error
	Msg string
	// Proposal in its current state (nil when unknown).
	Proposal *finding.Proposal
}

func (e *DecisionError) Error() string { return e.Msg }
func (e *DecisionError) Unwrap() error { return e.Err }

func decisionError(p *finding.Proposal) *DecisionError {
	when := p.DecidedAt.UTC().Format("2006-01-02 15:04:05Z")
	switch p.State {
	case finding.StateExpired:
		return &DecisionError{Err: ErrProposalExpired, Proposal: p,
			Msg: fmt.Sprintf("proposal %s expired at %s without a decision; it was not executed", p.ID, p.ExpiresAt.UTC().Format("2006-01-02 15:04:05Z"))}
	case finding.StateDenied:
		return &DecisionError{Err: ErrAlreadyDecided, Proposal: p,
			Msg: fmt.Sprintf("proposal %s was already denied by %s at %s", p.ID, p.DecidedBy, when)}
	}
	msg := fmt.Sprintf("proposal %s was already approved by %s at %s", p.ID, p.DecidedBy, when)
	if p.State != finding.StateApproved && p.Outcome != nil {
		msg += fmt.Sprintf(" and %s: %s", p.State, p.Outcome.Message)
	}
	return &DecisionError{Err: ErrAlreadyDecided, Proposal: p, Msg: msg}
}
