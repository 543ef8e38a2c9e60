package slack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
)

// Leases of proposals on their way to Slack.
const (
	// postLease is how long a replica holds a pending proposal it has queued for Slack without
	// renewing it: a replica that died with proposals in its queue gives them up this long
	// after its last renewal.
	postLease = time.Minute
	// postRenewEvery is how often the leases are renewed and the orphans looked for.
	postRenewEvery = 20 * time.Second
	// postedKeep is how long the claim of a posted proposal is kept.
	postedKeep = 24 * time.Hour
)

// Leaser is what the Slack posting gate needs of the bus's dedup bucket.
type Leaser interface {
	ClaimFor(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	Renew(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	Settle(ctx context.Context, key, owner string, ttl time.Duration) error
}

// Posting stands before the Slack notifier. Slack notices are delivered from a queue in
// the memory of the replica that accepted them: a replica killed with pending proposals in
// that queue would take them with it, and nobody could approve them from Slack. So each pending
// proposal sent to Slack is leased ("slack.post.<id>", renewed while it waits in the queue,
// settled once Slack has the message); every postRenewEvery each replica looks for pending
// proposals that have no Slack message and no live lease — a dead replica's — and sends them
// itself. A proposal another live replica holds is not sent twice.
type Posting struct {
	next   notifier.Notifier
	leases Leaser
	refs   PostedLookup
	owner  string
	log    *zap.Logger

	mu     sync.Mutex
	queued map[string]bool // leased here, not yet in Slack
}

// PostedLookup tells whether Slack has a proposal's message (KVMessageStore).
type PostedLookup interface {
	Has(ctx context.Context, id string) (bool, error)
}

var _ notifier.Notifier = (*Posting)(nil)

// NewPosting returns the posting gate before next (the Slack notifier), leasing through leases
// (the bus's dedup bucket) and asking refs whether Slack has a proposal's message. Tell it
// of each message Slack has with Posted (KVMessageStore.OnPut) and run Run.
func NewPosting(next notifier.Notifier, leases Leaser, refs PostedLookup, log *zap.Logger) *Posting {
	host, _ := os.Hostname()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &Posting{next: next, leases: leases, refs: refs, owner: host + "-" + hex.EncodeToString(b), log: log, queued: map[string]bool{}}
}

func postKey(id string) string { return "slack.post." + id }

// Notify implements notifier.Notifier: a pending proposal goes to Slack when this replica
// holds (or gets) its lease; everything else goes as is.
func (s *Posting) Notify(ctx context.Context, n *finding.Notice) error {
	if n.Type == finding.NoticeFinding && n.Proposal != nil && n.Proposal.State == finding.StatePending {
		id := n.Proposal.ID
		won, err := s.leases.ClaimFor(ctx, postKey(id), s.owner, postLease)
		switch {
		case err != nil:
			// Rather twice than never.
			s.log.Warn("leasing a proposal for Slack failed; sending it anyway", zap.String("id", id), zap.Error(err))
		case !won:
			return nil // in another live replica's queue, or in Slack already
		default:
			s.mu.Lock()
			s.queued[id] = true
			s.mu.Unlock()
		}
	}
	return s.next.Notify(ctx, n)
}

// Posted is told by the message store that Slack has the proposal's message.
func (s *Posting) Posted(ctx context.Context, id string) {
	s.mu.Lock()
	queued := s.queued[id]
	delete(s.queued, id)
	s.mu.Unlock()
	if !queued {
		return
	}
	if err := s.leases.Settle(ctx, postKey(id), s.owner, postedKeep); err != nil {
		s.log.Warn("settling a posted proposal's lease failed", zap.String("id", id), zap.Error(err))
	}
}

// Run renews the leases of the queued proposals and sends the orphans, every postRenewEvery
// until ctx ends.
func (s *Posting) Run(ctx context.Context, lister notifier.ProposalLister) {
	t := time.NewTicker(postRenewEvery)
	defer t.Stop()
	for {
		s.adopt(ctx, lister)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.renew(ctx)
	}
}

func (s *Posting) renew(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.queued))
	for id := range s.queued {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		ok, err := s.leases.Renew(ctx, postKey(id), s.owner, postLease)
		if err != nil {
			s.log.Warn("renewing a proposal's Slack lease failed", zap.String("id", id), zap.Error(err))
			continue
		}
		if !ok {
			// Posted meanwhile (settled) or lost: posted will not be told again.
			s.mu.Lock()
			delete(s.queued, id)
			s.mu.Unlock()
		}
	}
}

// adopt sends the pending proposals that have no Slack message and no live lease.
func (s *Posting) adopt(ctx context.Context, lister notifier.ProposalLister) {
	ps, err := lister.Proposals(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("listing proposals for Slack failed", zap.Error(err))
		}
		return
	}
	adopted := 0
	for i := range ps {
		p := &ps[i]
		if p.State != finding.StatePending {
			continue
		}
		s.mu.Lock()
		mine := s.queued[p.ID]
		s.mu.Unlock()
		if mine {
			continue
		}
		if ok, err := s.refs.Has(ctx, p.ID); err != nil || ok {
			continue
		}
		won, err := s.leases.ClaimFor(ctx, postKey(p.ID), s.owner, postLease)
		if err != nil || !won {
			continue
		}
		s.mu.Lock()
		s.queued[p.ID] = true
		s.mu.Unlock()
		f := p.Finding
		if err := s.next.Notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Finding: &f, Proposal: p}); err != nil {
			s.log.Warn("sending a pending proposal to Slack failed", zap.String("id", p.ID), zap.Error(err))
			continue
		}
		adopted++
	}
	if adopted > 0 {
		s.log.Info("sent pending proposals that were not in Slack (their replica stopped before posting them)", zap.Int("proposals", adopted))
	}
}
