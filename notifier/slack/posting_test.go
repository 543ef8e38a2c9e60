package slack

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zaptest"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
)

// memLeases is a Leaser in memory on a settable clock.
type memLeases struct {
	mu     sync.Mutex
	now    time.Time
	owner  map[string]string // "" once settled
	expiry map[string]time.Time
}

func (m *memLeases) live(key string) bool { e, ok := m.expiry[key]; return ok && m.now.Before(e) }

func (m *memLeases) ClaimFor(_ context.Context, key, owner string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live(key) {
		return m.owner[key] == owner, nil
	}
	m.owner[key], m.expiry[key] = owner, m.now.Add(ttl)
	return true, nil
}

func (m *memLeases) Renew(_ context.Context, key, owner string, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live(key) || m.owner[key] != owner {
		return false, nil
	}
	m.expiry[key] = m.now.Add(ttl)
	return true, nil
}

func (m *memLeases) Settle(_ context.Context, key, owner string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live(key) && m.owner[key] == owner {
		m.owner[key], m.expiry[key] = "", m.now.Add(ttl)
	}
	return nil
}

// memSlack is a Slack stand-in: the proposals it was sent, and the ones it has posted.
type memSlack struct {
	mu     sync.Mutex
	sent   []string
	posted map[string]bool
}

func (s *memSlack) Notify(_ context.Context, n *finding.Notice) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, n.Proposal.ID)
	return nil
}

func (s *memSlack) Has(_ context.Context, id string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.posted[id], nil
}

type proposals []finding.Proposal

func (p proposals) Proposals(context.Context) ([]finding.Proposal, error) { return p, nil }

var _ notifier.ProposalLister = proposals(nil)

// TestSlackPostingAdoptsADeadReplicasProposals: replica A queues two proposals for Slack and
// is killed before posting one of them. Replica B leaves them alone while A's leases live, then
// sends the one Slack never got, once; the posted one is never sent again.
func TestSlackPostingAdoptsADeadReplicasProposals(t *testing.T) {
	leases := &memLeases{now: time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC), owner: map[string]string{}, expiry: map[string]time.Time{}}
	slackA, slackB := &memSlack{posted: map[string]bool{}}, &memSlack{posted: map[string]bool{}}
	a := NewPosting(slackA, leases, slackA, zaptest.NewLogger(t))
	b := NewPosting(slackB, leases, slackB, zaptest.NewLogger(t))
	ctx := context.Background()
	pending := proposals{
		{ID: "aaaaaaaaaaaaa", State: finding.StatePending},
		{ID: "bbbbbbbbbbbbb", State: finding.StatePending},
		{ID: "ccccccccccccc", State: finding.StateExecuted},
	}
	for i := range pending[:2] {
		require.NoError(t, a.Notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Proposal: &pending[i]}))
	}
	require.Equal(t, []string{"aaaaaaaaaaaaa", "bbbbbbbbbbbbb"}, slackA.sent)
	// A posts the first, and dies.
	slackA.posted["aaaaaaaaaaaaa"], slackB.posted["aaaaaaaaaaaaa"] = true, true
	a.Posted(ctx, "aaaaaaaaaaaaa")

	b.adopt(ctx, pending)
	require.Empty(t, slackB.sent, "A's lease on the other is still live")
	require.NoError(t, b.Notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Proposal: &pending[1]}))
	require.Empty(t, slackB.sent, "a redelivered notice does not take it from a live replica")

	leases.now = leases.now.Add(postLease + time.Second)
	b.adopt(ctx, pending)
	require.Equal(t, []string{"bbbbbbbbbbbbb"}, slackB.sent, "the orphan, once")
	b.adopt(ctx, pending)
	b.renew(ctx)
	b.adopt(ctx, pending)
	require.Equal(t, []string{"bbbbbbbbbbbbb"}, slackB.sent, "B holds it now")
}
