package slack

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/podmedic/podmedic/finding"
)

// A notice goes from the Notifier's intake (dedup and grouping, notifier.go) to the lane of
// its channel, which owns the channel's messages and decides its next Web API call: a store
// look-up, a post, an update or a thread reply, paced as Slack asks. Each lane has its own
// lock; the intake's lock is taken before it, the backlog's after it.

// lane is one channel's sender: its messages, and when Slack may next be called for it.
type lane struct {
	n    *Notifier // its options, API client, store, metrics and backlog: none of its locked state
	name string
	wake chan struct{}
	// pace spaces calls by WithChannelInterval while the lane is polite (golang.org/x/time/rate).
	pace *rate.Limiter

	mu   sync.Mutex // guards what follows and the messages in msgs
	msgs []*message
	// nextAt: Slack's Retry-After or a backoff after a failure; no call before it.
	nextAt time.Time
	// paceUntil: after a 429 the lane paces and coalesces until then (see polite).
	paceUntil time.Time
	fails     int // consecutive retryable failures
	bare429   int // consecutive 429s without Retry-After
}

func newLane(n *Notifier, channel string) *lane {
	return &lane{n: n, name: channel, wake: make(chan struct{}, 1),
		pace: rate.NewLimiter(rate.Every(n.o.channelInterval), 1)}
}

// poke makes the lane look for work.
func (l *lane) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// add makes m one of the lane's messages, its content changed by a notice of type typ.
func (l *lane) add(m *message, now time.Time, typ finding.NoticeType) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, m)
	l.bumpLocked(m, now, typ)
}

// bumpLocked records a change of a message's root content by one notice.
func (l *lane) bumpLocked(m *message, now time.Time, typ finding.NoticeType) {
	m.version++
	m.rootPend = append(m.rootPend, pend{version: m.version, at: now, typ: typ})
	l.n.backlog.add(1)
	l.poke()
}

// applyLocked moves a proposal message to a newer state of its proposal.
func (l *lane) applyLocked(m *message, p *finding.Proposal, now time.Time, typ finding.NoticeType) {
	cur := m.proposal
	newer := rank(p.State) > rank(cur.State) ||
		(p.State == cur.State && p.Outcome != nil && cur.Outcome == nil)
	if !newer {
		return
	}
	m.proposal = p
	l.bumpLocked(m, now, typ)
	if p.State.Final() && !m.finalReplied {
		l.finalReplyLocked(m, now, typ)
	}
}

// finalReplyLocked queues the thread reply that records a proposal's outcome.
func (l *lane) finalReplyLocked(m *message, now time.Time, typ finding.NoticeType) {
	m.finalReplied = true
	l.replyLocked(m, renderDecisionReply(m.proposal), now, typ)
}

// replyLocked queues a thread reply under a proposal's message.
func (l *lane) replyLocked(m *message, content rendered, now time.Time, typ finding.NoticeType) {
	m.replies = append(m.replies, &threadReply{content: content, pend: []pend{{at: now, typ: typ}}})
	l.n.backlog.add(1)
	l.poke()
}

// deliverRootLocked counts the notices the posted root version shows as delivered.
func (l *lane) deliverRootLocked(m *message, now time.Time) {
	i := 0
	for ; i < len(m.rootPend) && m.rootPend[i].version <= m.posted; i++ {
	}
	l.n.backlog.deliver(m.rootPend[:i], now)
	m.rootPend = slices.Delete(m.rootPend, 0, i)
}

// prune forgets the lane's delivered messages that are done (see Notifier.pruneLocked) and
// returns them.
func (l *lane) prune(now time.Time) []*message {
	l.mu.Lock()
	defer l.mu.Unlock()
	var gone []*message
	l.msgs = slices.DeleteFunc(l.msgs, func(m *message) bool {
		if !m.delivered() {
			return false
		}
		var done bool
		switch m.kind {
		case kindGroup:
			done = now.After(m.openUntil)
		case kindRefusal, kindReport:
			done = true
		case kindProposal:
			end := m.proposal.DecidedAt
			if !m.proposal.State.Final() || end.IsZero() {
				end = m.proposal.ExpiresAt
			}
			done = !end.IsZero() && now.Sub(end) > keepDecided && (m.proposal.State.Final() || m.expiredShown)
		}
		if done {
			gone = append(gone, m)
		}
		return done
	})
	return gone
}

// opKind is what a lane does next.
type opKind uint8

const (
	opResolve opKind = iota // look a proposal's message up in the store
	opPost                  // post a message's root
	opUpdate                // chat.update a message's root
	opReply                 // post a thread reply
)

type op struct {
	kind    opKind
	m       *message
	content rendered
	version int
	channel string
	ts      string // chat.update's ts, or a reply's thread_ts
	reply   *threadReply
	upto    int  // members covered once a group reply is posted
	text    bool // send the text alone (Slack refused the blocks)
}

func (k opKind) method() string {
	switch k {
	case opUpdate:
		return "chat.update"
	case opResolve:
		return "store.get"
	}
	return "chat.postMessage"
}

// run is the lane's sender loop, until ctx ends.
func (l *lane) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		l.mu.Lock()
		o, wait := l.nextLocked(time.Now())
		l.mu.Unlock()
		if o != nil {
			l.execute(ctx, o)
			if ctx.Err() != nil {
				return
			}
			continue
		}
		var fire <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-l.wake:
		case <-fire:
		}
		timer.Stop()
	}
}

// nextLocked picks the lane's next call: store look-ups first, then (paced) first posts,
// proposals' updates and replies, and groups' coalesced updates and thread replies. Without
// one ready it says how long until one is (0: until woken).
func (l *lane) nextLocked(now time.Time) (*op, time.Duration) {
	o := l.n.o
	var soonest time.Time
	consider := func(t time.Time) {
		if soonest.IsZero() || t.Before(soonest) {
			soonest = t
		}
	}
	for _, m := range l.msgs {
		if m.resolve {
			if now.Before(m.resolveAt) {
				consider(m.resolveAt)
				continue
			}
			return &op{kind: opResolve, m: m}, 0
		}
	}
	// Proposals whose time is up lose their buttons even before the actions stage says so.
	for _, m := range l.msgs {
		if m.kind != kindProposal || m.resolve || m.expiredShown || m.proposal.State != finding.StatePending || m.proposal.ExpiresAt.IsZero() {
			continue
		}
		if now.Before(m.proposal.ExpiresAt) {
			consider(m.proposal.ExpiresAt)
			continue
		}
		m.expiredShown = true
		m.version++
	}
	wait := func() (*op, time.Duration) {
		if soonest.IsZero() {
			return nil, 0
		}
		return nil, max(soonest.Sub(now), time.Millisecond)
	}
	if now.Before(l.nextAt) {
		consider(l.nextAt)
		return wait()
	}
	// ready returns a call to make now, unless the lane is polite and its last call was less
	// than WithChannelInterval ago.
	ready := func(c *op) (*op, time.Duration) {
		c.text = c.m.textOnly
		if !l.polite(now) {
			return c, 0
		}
		r := l.pace.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			// rate's float arithmetic can put the next token a nanosecond early, which a
			// server counting exact seconds answers 429: wait to the next whole millisecond.
			consider(now.Add(d.Truncate(time.Millisecond) + time.Millisecond))
			return wait()
		}
		return c, 0
	}
	for _, m := range l.msgs {
		if !m.resolve && m.ref.TS == "" {
			return ready(&op{kind: opPost, m: m, content: m.render(o.summarizer, o.inlineMembers), version: m.version, channel: l.name})
		}
	}
	for _, m := range l.msgs {
		if m.kind != kindProposal || m.resolve {
			continue
		}
		if m.posted < m.version {
			return ready(&op{kind: opUpdate, m: m, content: m.render(o.summarizer, o.inlineMembers), version: m.version, channel: m.ref.Channel, ts: m.ref.TS})
		}
		if len(m.replies) > 0 {
			r := m.replies[0]
			return ready(&op{kind: opReply, m: m, content: r.content, reply: r, channel: m.ref.Channel, ts: m.ref.TS})
		}
	}
	for _, m := range l.msgs {
		if m.kind != kindGroup {
			continue
		}
		if m.posted < m.version {
			due := m.lastUpdate.Add(l.coalesce(now))
			if !now.Before(due) {
				return ready(&op{kind: opUpdate, m: m, content: m.render(o.summarizer, o.inlineMembers), version: m.version, channel: m.ref.Channel, ts: m.ref.TS})
			}
			consider(due)
		}
		if over := len(m.members) - m.covered; over > 0 {
			due := m.lastReply.Add(l.coalesce(now))
			if over >= o.threadChunk || !now.Before(due) {
				upto := m.covered + min(over, o.threadChunk)
				// Members are numbered among the others (the first is the message itself).
				content := renderMembers(m.members[m.covered:upto], m.covered, len(m.members)-1)
				return ready(&op{kind: opReply, m: m, content: content, upto: upto, channel: m.ref.Channel, ts: m.ref.TS})
			}
			consider(due)
		}
	}
	return wait()
}

// polite reports whether the lane paces its calls (WithChannelInterval) and coalesces group
// updates (WithUpdateInterval): always with WithSteadyPacing, else for WithPaceFor after
// Slack last answered it 429. Until Slack pushes back, calls go out as soon as the previous
// one returned, so a failure is named in Slack within milliseconds; a storm meets its first
// 429 within a call or two and is then folded into a few messages.
func (l *lane) polite(now time.Time) bool {
	return l.n.o.paceFor < 0 || now.Before(l.paceUntil)
}

// coalesce is how long a group's updates and thread replies wait after the last one.
func (l *lane) coalesce(now time.Time) time.Duration {
	if l.polite(now) {
		return l.n.o.updateInterval
	}
	return 0
}

// execute makes an op's call and records its result.
func (l *lane) execute(ctx context.Context, o *op) {
	n := l.n
	if o.kind == opResolve {
		id := o.m.proposal.ID
		ref, ok, err := n.o.store.Get(ctx, id)
		now := time.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			o.m.resolveFails++
			o.m.resolveAt = now.Add(n.backoff(o.m.resolveFails))
			n.o.log.Warn("slack: looking up a proposal's message failed; retrying", zap.String("proposal", id), zap.Error(err))
			return
		}
		o.m.resolve = false
		if ok {
			o.m.ref = ref
			o.m.posted = 0
			o.m.lastUpdate = now
		} else {
			n.o.log.Info("slack: no message known for a decided proposal; posting a new one", zap.String("proposal", id))
		}
		return
	}

	channel, ts, err := n.call(ctx, o)
	now := time.Now()
	if err != nil && ctx.Err() != nil {
		return // stopping: the op stays for a later Run (or is reported undelivered)
	}

	l.mu.Lock()
	m := o.m
	if err != nil {
		l.failedLocked(o, err, now)
		l.mu.Unlock()
		return
	}
	l.fails, l.bare429 = 0, 0
	var store *MessageRef
	switch o.kind {
	case opPost:
		m.ref = MessageRef{Channel: channel, TS: ts}
		m.posted = max(m.posted, o.version)
		m.lastUpdate, m.lastReply = now, now
		if m.kind == kindProposal {
			// Delivered once the store knows the message too (below).
			ref := m.ref
			store = &ref
		} else {
			l.deliverRootLocked(m, now)
		}
	case opUpdate:
		m.posted = max(m.posted, o.version)
		m.lastUpdate = now
		l.deliverRootLocked(m, now)
	case opReply:
		if o.reply != nil {
			m.replies = slices.DeleteFunc(m.replies, func(r *threadReply) bool { return r == o.reply })
			n.backlog.deliver(o.reply.pend, now)
		} else {
			ps := make([]pend, 0, o.upto-m.covered)
			for _, mem := range m.members[m.covered:o.upto] {
				ps = append(ps, pend{at: mem.at, typ: finding.NoticeFinding})
			}
			m.covered = o.upto
			m.lastReply = now
			n.backlog.deliver(ps, now)
		}
	}
	l.mu.Unlock()
	if store != nil {
		n.putRef(ctx, m.proposal.ID, *store)
		l.mu.Lock()
		l.deliverRootLocked(m, now)
		l.mu.Unlock()
	}
}

// paceLocked makes a rate-limited lane polite for WithPaceFor.
func (l *lane) paceLocked(now time.Time, log *zap.Logger) {
	if l.n.o.paceFor < 0 {
		return
	}
	if !now.Before(l.paceUntil) {
		log.Info("slack: rate limited; pacing and coalescing this channel", zap.Duration("for", l.n.o.paceFor))
	}
	l.paceUntil = now.Add(l.n.o.paceFor)
}

// Slack errors that say the message (or its thread) is gone.
var goneErrors = []string{"message_not_found", "cant_update_message", "edit_window_closed", "thread_not_found"}

// Slack errors that say the blocks were refused: the text alone is sent instead.
var renderErrors = []string{"invalid_blocks", "invalid_blocks_format", "msg_too_long", "too_many_blocks", "msg_blocks_too_long"}

// failedLocked decides what a failed call means: wait for Retry-After (or a default), back off,
// re-post a message that is gone, or fall back to text.
func (l *lane) failedLocked(o *op, err error, now time.Time) {
	n := l.n
	method := o.kind.method()
	n.countError(method, err)
	log := n.o.log.With(zap.String("channel", l.name), zap.String("method", method), zap.String("message", o.m.key))
	var (
		rl *slack.RateLimitedError
		sc slack.StatusCodeError
		se slack.SlackErrorResponse
	)
	switch {
	case errors.As(err, &rl):
		l.paceLocked(now, log)
		l.bare429 = 0
		l.nextAt = now.Add(max(rl.RetryAfter, time.Second))
		log.Debug("slack: rate limited", zap.Duration("retry_after", rl.RetryAfter))
	case errors.As(err, &sc) && sc.Code == http.StatusTooManyRequests,
		errors.As(err, &se) && se.Err == "ratelimited":
		l.paceLocked(now, log)
		l.bare429++
		d := n.doubled(n.o.retryAfter, l.bare429)
		l.nextAt = now.Add(d)
		log.Debug("slack: rate limited without Retry-After", zap.Duration("wait", d))
	case errors.As(err, &se) && slices.Contains(goneErrors, se.Err):
		log.Warn("slack: message gone; posting it again", zap.String("error", se.Err))
		o.m.ref.TS = ""
		o.m.posted = 0
	case errors.As(err, &se) && slices.Contains(renderErrors, se.Err) && !o.m.textOnly:
		log.Error("slack: blocks refused; sending the text alone", zap.String("error", se.Err))
		o.m.textOnly = true
	default:
		l.fails++
		d := n.backoff(l.fails)
		l.nextAt = now.Add(d)
		lvl := log.Warn
		if errors.As(err, &se) {
			lvl = log.Error // e.g. not_in_channel, channel_not_found, invalid_auth: needs a human
		}
		lvl("slack: call failed; retrying", zap.Error(err), zap.Duration("backoff", d), zap.Int("failures", l.fails))
	}
}
