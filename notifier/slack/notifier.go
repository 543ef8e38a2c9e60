package slack

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
)

// Errors of Notify.
var (
	// ErrQueueFull: too many notices are accepted and not yet delivered; the notice was not
	// accepted and the caller should retry later.
	ErrQueueFull = errors.New("slack: notice queue is full")
	// ErrStopped: Run has returned; the notice was not accepted.
	ErrStopped = errors.New("slack: notifier stopped")
	// ErrInvalidNotice: the notice can never be delivered (a missing finding or proposal);
	// retrying does not help.
	ErrInvalidNotice = errors.New("slack: invalid notice")
)

// Notifier delivers notices to Slack and takes decisions back. Create it with New, run Run
// under a context, and mount InteractionHandler when interactions arrive over HTTP.
type Notifier struct {
	cfg       Config
	o         options
	api       *slack.Client
	m         *metrics
	approvers *approvers
	clicks    *seenSet // clicks already handled (both transports)
	replays   *seenSet // signatures of HTTP interaction requests already seen
	backlog   *backlog // notices accepted and not yet delivered

	// The intake: dedup of findings, grouping, and the index of messages by key. Messages'
	// contents are guarded by their lane's lock, taken after this one.
	mu    sync.Mutex
	team  string // the bot token's workspace (auth.test), once known
	lanes map[string]*lane
	// unstarted are lanes whose sender Run has not started yet; laneAdded wakes Run.
	unstarted []*lane
	laneAdded chan struct{}
	decider   notifier.Decider    // Run's
	msgs      map[string]*message // by key
	groups    map[string]*message // open group message by group key and channel
	seen      map[string]time.Time
	seq       int
	running   bool
	stopping  bool // Run is waiting for its goroutines: no new async work
	stopped   bool
	workers   sync.WaitGroup
	async     sync.WaitGroup
	sem       chan struct{}
}

var _ notifier.Notifier = (*Notifier)(nil)

// New returns a Notifier for cfg. It makes no network call; see Check and Run.
func New(cfg Config, opts ...Option) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if o.store == nil {
		o.store = NewMemoryStore()
	}
	if o.log == nil {
		o.log = zap.NewNop()
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultAPIURL
	}
	copts := []slack.Option{slack.OptionAPIURL(cfg.APIURL)}
	if cfg.Secrets.AppToken != "" {
		copts = append(copts, slack.OptionAppLevelToken(cfg.Secrets.AppToken))
	}
	if o.httpClient != nil {
		copts = append(copts, slack.OptionHTTPClient(o.httpClient))
	}
	n := &Notifier{
		cfg:       cfg,
		o:         o,
		api:       slack.New(cfg.Secrets.BotToken, copts...),
		clicks:    newSeenSet(),
		replays:   newSeenSet(),
		lanes:     map[string]*lane{},
		laneAdded: make(chan struct{}, 1),
		msgs:      map[string]*message{},
		groups:    map[string]*message{},
		seen:      map[string]time.Time{},
		backlog:   newBacklog(),
		sem:       make(chan struct{}, 16),
	}
	n.m = newMetrics(o.reg, func() float64 { return float64(n.backlog.count()) })
	n.backlog.latency = n.m.latency
	n.approvers = newApprovers(cfg.Approvers, o.approverRefresh, o.approverMaxStale, n.api, n.m, o.log)
	return n, nil
}

// Check verifies the bot token with auth.test.
func (n *Notifier) Check(ctx context.Context) error {
	if _, err := n.authTest(ctx); err != nil {
		return fmt.Errorf("slack: %w", err)
	}
	return nil
}

// authTest asks auth.test and remembers the bot token's workspace (see ownTeam).
func (n *Notifier) authTest(ctx context.Context) (string, error) {
	resp, err := n.api.AuthTestContext(ctx)
	if err != nil {
		n.countError("auth.test", err)
		return "", fmt.Errorf("auth.test: %w", err)
	}
	n.mu.Lock()
	n.team = resp.TeamID
	n.mu.Unlock()
	return resp.TeamID, nil
}

// Pending returns how many accepted notices are not yet delivered.
func (n *Notifier) Pending() int { return n.backlog.count() }

// Flush waits until every accepted notice is delivered (or ctx ends). app may call it with a
// short timeout before stopping Run.
func (n *Notifier) Flush(ctx context.Context) error {
	select {
	case <-n.backlog.empty():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("slack: %d notices undelivered: %w", n.Pending(), context.Cause(ctx))
	}
}

// Notify implements notifier.Notifier. It returns at once: nil means the notice is accepted
// (or was already: the same finding or the same proposal state is never delivered twice) and
// Run will deliver it, retrying through rate limits and outages for as long as it runs; it is
// not a promise that Slack has it yet (see Flush). ErrQueueFull and ErrStopped mean the notice
// was not accepted and the caller should retry; ErrInvalidNotice means it never can be.
func (n *Notifier) Notify(ctx context.Context, nt *finding.Notice) error {
	if err := validNotice(nt); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return ErrStopped
	}
	return n.acceptLocked(nt, time.Now(), false)
}

func validNotice(nt *finding.Notice) error {
	switch {
	case nt == nil:
		return fmt.Errorf("%w: nil", ErrInvalidNotice)
	case nt.Type == finding.NoticeFinding && nt.Finding == nil && nt.Proposal == nil:
		return fmt.Errorf("%w: finding notice without a finding", ErrInvalidNotice)
	case nt.Type == finding.NoticeDecision && nt.Proposal == nil:
		return fmt.Errorf("%w: decision notice without a proposal", ErrInvalidNotice)
	case (nt.Type == finding.NoticeFinding || nt.Type == finding.NoticeDecision) && nt.Proposal != nil && nt.Proposal.ID == "":
		return fmt.Errorf("%w: proposal without an id", ErrInvalidNotice)
	case nt.Type == finding.NoticeReport && nt.Title == "" && nt.Text == "":
		return fmt.Errorf("%w: report without a title or text", ErrInvalidNotice)
	case nt.Type == finding.NoticeFollowUp && (nt.Proposal == nil || nt.Proposal.ID == "" || nt.Text == ""):
		return fmt.Errorf("%w: follow-up without a proposal or text", ErrInvalidNotice)
	case nt.Type != finding.NoticeFinding && nt.Type != finding.NoticeDecision && nt.Type != finding.NoticeRefusal &&
		nt.Type != finding.NoticeReport && nt.Type != finding.NoticeFollowUp:
		return fmt.Errorf("%w: unknown type %q", ErrInvalidNotice, nt.Type)
	}
	return nil
}

// message kinds.
type msgKind uint8

const (
	kindProposal msgKind = iota // one proposal: buttons, then its decision
	kindGroup                   // a storm group of findings without a pending proposal
	kindRefusal                 // a refusal by the guard
	kindReport                  // a scheduled job's report (a sweep's run, the digest)
)

// pend is a notice whose content is not yet in Slack: delivered once the message's posted
// version reaches version.
type pend struct {
	version int
	at      time.Time
	typ     finding.NoticeType
}

// threadReply is a thread reply waiting to be posted.
type threadReply struct {
	content rendered
	pend    []pend
}

// message is one Slack message podmedic keeps current.
type message struct {
	key     string
	kind    msgKind
	lane    *lane
	created time.Time

	ref          MessageRef // channel id and ts once posted or found in the store
	resolve      bool       // look ref up in the store first
	resolveAt    time.Time
	resolveFails int
	textOnly     bool // Slack refused the blocks: send the text alone

	version    int // bumped by every change of content
	posted     int // the version Slack has
	lastUpdate time.Time
	rootPend   []pend
	replies    []*threadReply

	// kindProposal
	proposal     *finding.Proposal
	outcome      *finding.Outcome
	finalReplied bool
	expiredShown bool // shown expired because its time is up, before any expired notice

	// kindGroup
	gkey      string
	members   []member
	covered   int // members shown in the root (the first inline+1) or listed in a reply
	openUntil time.Time
	lastReply time.Time

	// kindRefusal, kindReport
	notice *finding.Notice
}

// delivered reports whether Slack shows everything the message holds.
func (m *message) delivered() bool {
	return !m.resolve && m.ref.TS != "" && m.posted >= m.version && len(m.replies) == 0 &&
		(m.kind != kindGroup || m.covered >= len(m.members))
}

// display is the state a proposal's message shows.
func (m *message) display() finding.ProposalState {
	if m.proposal.State == finding.StatePending && m.expiredShown {
		return finding.StateExpired
	}
	return m.proposal.State
}

// render renders the message's root as it stands.
func (m *message) render(sum Summarizer, inline int) rendered {
	switch m.kind {
	case kindProposal:
		return renderProposal(sum, m.proposal, m.outcome, m.display())
	case kindGroup:
		return renderGroup(sum, m.members, inline)
	case kindReport:
		return renderReport(m.notice)
	}
	return renderRefusal(m.notice)
}

func rank(s finding.ProposalState) int {
	switch s {
	case finding.StatePending:
		return 0
	case finding.StateApproved:
		return 1
	}
	return 2
}

// acceptLocked takes a notice into the state the lanes deliver. internal notices (decisions
// taken through Slack itself) are not subject to the queue bound.
func (n *Notifier) acceptLocked(nt *finding.Notice, now time.Time, internal bool) error {
	full := !internal && n.backlog.count() >= n.o.queueSize
	switch {
	case nt.Type == finding.NoticeReport:
		if full {
			return ErrQueueFull
		}
		n.seq++
		m := n.newMessageLocked(fmt.Sprintf("d:%d", n.seq), kindReport, n.cfg.ChannelForRoute(nt.Route), now)
		cp := *nt
		m.notice = &cp
		m.lane.add(m, now, nt.Type)
		return nil

	case nt.Type == finding.NoticeRefusal:
		if full {
			return ErrQueueFull
		}
		n.seq++
		f := nt.Finding
		m := n.newMessageLocked(fmt.Sprintf("r:%d", n.seq), kindRefusal, n.cfg.ChannelFor(f), now)
		cp := *nt
		m.notice = &cp
		m.lane.add(m, now, nt.Type)
		return nil

	case nt.Proposal != nil:
		p := clone(nt.Proposal)
		key := "p:" + p.ID
		followUp := nt.Type == finding.NoticeFollowUp
		if m, ok := n.msgs[key]; ok {
			l := m.lane
			l.mu.Lock()
			defer l.mu.Unlock()
			if nt.Type == finding.NoticeFinding && m.outcome == nil && nt.Outcome != nil {
				m.outcome = nt.Outcome
				l.bumpLocked(m, now, nt.Type)
			}
			l.applyLocked(m, p, now, nt.Type)
			if followUp {
				l.replyLocked(m, renderFollowUp(nt.Text), now, nt.Type)
			}
			return nil
		}
		if full {
			return ErrQueueFull
		}
		f := &p.Finding
		if nt.Finding != nil {
			f = nt.Finding
			n.seen[f.Key()] = now
		}
		m := n.newMessageLocked(key, kindProposal, n.cfg.ChannelFor(f), now)
		m.proposal = p
		m.outcome = nt.Outcome
		// A decision or a follow-up about a proposal this process has not posted: find its
		// message in the store (posted before a restart, or by another replica) before doing
		// anything. A follow-up comes after the decision's own reply.
		m.resolve = nt.Type == finding.NoticeDecision || followUp
		m.finalReplied = (nt.Type == finding.NoticeFinding || followUp) && p.State.Final()
		l := m.lane
		l.add(m, now, nt.Type)
		l.mu.Lock()
		defer l.mu.Unlock()
		if p.State.Final() && !m.finalReplied {
			l.finalReplyLocked(m, now, nt.Type)
		}
		if followUp {
			l.replyLocked(m, renderFollowUp(nt.Text), now, nt.Type)
		}
		return nil
	}

	// A finding without a proposal: fold it into its group.
	f := nt.Finding
	key := f.Key()
	if _, dup := n.seen[key]; dup {
		return nil
	}
	if full {
		return ErrQueueFull
	}
	n.seen[key] = now
	ch := n.cfg.ChannelFor(f)
	gk := GroupKey(f) + "|" + ch
	fc := *f
	fc.Evidence = append([]string(nil), f.Evidence...)
	mem := member{f: &fc, action: f.Action, outcome: nt.Outcome, at: now}
	m := n.groups[gk]
	if m == nil || now.After(m.openUntil) {
		n.seq++
		m = n.newMessageLocked(fmt.Sprintf("g:%d", n.seq), kindGroup, ch, now)
		m.gkey = gk
		m.openUntil = now.Add(n.o.groupWindow)
		m.covered = 1 + n.o.inlineMembers
		m.members = []member{mem}
		n.groups[gk] = m
		m.lane.add(m, now, nt.Type)
		return nil
	}
	l := m.lane
	l.mu.Lock()
	defer l.mu.Unlock()
	m.members = append(m.members, mem)
	if len(m.members) <= m.covered {
		l.bumpLocked(m, now, nt.Type)
	} else {
		// Listed in a thread reply later (its pend is the member itself); the root's count
		// changes too.
		m.version++
		n.backlog.add(1)
		l.poke()
	}
	return nil
}

// newMessageLocked makes a message of the channel's lane; lane.add hands it over.
func (n *Notifier) newMessageLocked(key string, kind msgKind, channel string, now time.Time) *message {
	m := &message{key: key, kind: kind, lane: n.laneLocked(channel), created: now}
	n.msgs[key] = m
	return m
}

// applyDecision shows a proposal's new state, as Decide returned it.
func (n *Notifier) applyDecision(p *finding.Proposal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_ = n.acceptLocked(&finding.Notice{Type: finding.NoticeDecision, Proposal: p}, time.Now(), true)
}

// clone copies a proposal deeply enough that the caller may change theirs.
func clone(p *finding.Proposal) *finding.Proposal {
	c := *p
	c.Finding.Evidence = append([]string(nil), p.Finding.Evidence...)
	if p.Outcome != nil {
		o := *p.Outcome
		c.Outcome = &o
	}
	return &c
}
