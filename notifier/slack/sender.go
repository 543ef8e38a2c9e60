package slack

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/retry"
)

// lane is one channel's sender: its messages, and when Slack may next be called for it.
type lane struct {
	name   string
	wake   chan struct{}
	msgs   []*message
	nextAt time.Time // pacing, Retry-After and backoff
	// paceUntil: after a 429 the lane paces and coalesces until then (see polite).
	paceUntil time.Time
	fails     int // consecutive retryable failures
	bare429   int // consecutive 429s without Retry-After
	started   bool
}

func (n *Notifier) laneLocked(channel string) *lane {
	l, ok := n.lanes[channel]
	if !ok {
		l = &lane{name: channel, wake: make(chan struct{}, 1)}
		n.lanes[channel] = l
		if n.running {
			n.startLaneLocked(l)
		}
	}
	return l
}

func (n *Notifier) startLaneLocked(l *lane) {
	if l.started {
		return
	}
	l.started = true
	ctx := n.runCtx
	n.workers.Go(func() { n.runLane(ctx, l) })
}

func (n *Notifier) wakeLocked(l *lane) {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run delivers accepted notices until ctx ends, runs Socket Mode when configured, and returns
// nil after a clean stop (notices still undelivered then are logged, and lost with the
// process; see Flush). It may be called once.
func (n *Notifier) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.running || n.stopped {
		n.mu.Unlock()
		return errors.New("slack: Run called twice")
	}
	n.running = true
	n.runCtx = ctx
	for _, l := range n.lanes {
		n.startLaneLocked(l)
	}
	n.mu.Unlock()

	if n.cfg.SocketMode {
		n.workers.Go(func() { n.runSocketMode(ctx) })
	}
	n.workers.Go(func() { n.janitor(ctx) })
	<-ctx.Done()
	n.workers.Wait()
	n.mu.Lock()
	n.stopping = true
	n.mu.Unlock()
	n.async.Wait()

	n.mu.Lock()
	n.stopped = true
	left := n.pending
	n.mu.Unlock()
	if left > 0 {
		n.o.log.Warn("slack notifier stopped with undelivered notices", zap.Int("undelivered", left))
	}
	return nil
}

// janitor forgets delivered messages and old finding keys.
func (n *Notifier) janitor(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n.mu.Lock()
			n.pruneLocked(now)
			n.mu.Unlock()
		}
	}
}

// Retention of delivered messages in memory (the store keeps proposals' refs for longer).
const (
	keepDecided = time.Hour
	keepSeen    = 24 * time.Hour
)

func (n *Notifier) pruneLocked(now time.Time) {
	for k, t := range n.seen {
		if now.Sub(t) > keepSeen {
			delete(n.seen, k)
		}
	}
	for _, l := range n.lanes {
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
				delete(n.msgs, m.key)
				if m.kind == kindGroup && n.groups[m.gkey] == m {
					delete(n.groups, m.gkey)
				}
			}
			return done
		})
	}
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
	upto    int // members covered once a group reply is posted
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

// runLane is a channel's sender.
func (n *Notifier) runLane(ctx context.Context, l *lane) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		n.mu.Lock()
		o, wait := n.nextOpLocked(l, time.Now())
		n.mu.Unlock()
		if o != nil {
			n.execute(ctx, l, o)
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

// nextOpLocked picks a lane's next call: store look-ups first, then (paced) first posts,
// proposals' updates and replies, and groups' coalesced updates and thread replies. Without
// one ready it says how long until one is (0: until woken).
func (n *Notifier) nextOpLocked(l *lane, now time.Time) (*op, time.Duration) {
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
	for _, m := range l.msgs {
		if !m.resolve && m.ref.TS == "" {
			return &op{kind: opPost, m: m, content: m.render(n.o.summarizer, n.o.inlineMembers), version: m.version, channel: l.name}, 0
		}
	}
	for _, m := range l.msgs {
		if m.kind != kindProposal || m.resolve {
			continue
		}
		if m.posted < m.version {
			return &op{kind: opUpdate, m: m, content: m.render(n.o.summarizer, n.o.inlineMembers), version: m.version, channel: m.ref.Channel, ts: m.ref.TS}, 0
		}
		if len(m.replies) > 0 {
			r := m.replies[0]
			return &op{kind: opReply, m: m, content: r.content, reply: r, channel: m.ref.Channel, ts: m.ref.TS}, 0
		}
	}
	for _, m := range l.msgs {
		if m.kind != kindGroup {
			continue
		}
		if m.posted < m.version {
			due := m.lastUpdate.Add(n.coalesce(l, now))
			if !now.Before(due) {
				return &op{kind: opUpdate, m: m, content: m.render(n.o.summarizer, n.o.inlineMembers), version: m.version, channel: m.ref.Channel, ts: m.ref.TS}, 0
			}
			consider(due)
		}
		if over := len(m.members) - m.covered; over > 0 {
			due := m.lastReply.Add(n.coalesce(l, now))
			if over >= n.o.threadChunk || !now.Before(due) {
				upto := m.covered + min(over, n.o.threadChunk)
				// Members are numbered among the others (the first is the message itself).
				content := renderMembers(m.members[m.covered:upto], m.covered, len(m.members)-1)
				return &op{kind: opReply, m: m, content: content, upto: upto, channel: m.ref.Channel, ts: m.ref.TS}, 0
			}
			consider(due)
		}
	}
	return wait()
}

// polite reports whether a lane paces its calls (WithChannelInterval) and coalesces group
// updates (WithUpdateInterval): always with WithSteadyPacing, else for WithPaceFor after
// Slack last answered it 429. Until Slack pushes back, calls go out as soon as the previous
// one returned, so a failure is named in Slack within milliseconds; a storm meets its first
// 429 within a call or two and is then folded into a few messages.
func (n *Notifier) polite(l *lane, now time.Time) bool {
	return n.o.paceFor < 0 || now.Before(l.paceUntil)
}

// coalesce is how long a group's updates and thread replies wait after the last one.
func (n *Notifier) coalesce(l *lane, now time.Time) time.Duration {
	if n.polite(l, now) {
		return n.o.updateInterval
	}
	return 0
}

// execute makes an op's call and records its result.
func (n *Notifier) execute(ctx context.Context, l *lane, o *op) {
	if o.kind == opResolve {
		id := o.m.proposal.ID
		ref, ok, err := n.o.store.Get(ctx, id)
		now := time.Now()
		n.mu.Lock()
		defer n.mu.Unlock()
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

	opts := []slack.MsgOption{slack.MsgOptionText(o.content.Text, false)}
	if !o.m.textOnly {
		opts = append(opts, slack.MsgOptionBlocks(o.content.Blocks...))
	}
	var (
		channel, ts string
		err         error
	)
	switch o.kind {
	case opPost:
		channel, ts, err = n.api.PostMessageContext(ctx, o.channel, opts...)
	case opUpdate:
		_, _, _, err = n.api.UpdateMessageContext(ctx, o.channel, o.ts, opts...)
	case opReply:
		channel, ts, err = n.api.PostMessageContext(ctx, o.channel, append(opts, slack.MsgOptionTS(o.ts))...)
	}
	now := time.Now()
	if err != nil && ctx.Err() != nil {
		return // stopping: the op stays for a later Run (or is reported undelivered)
	}

	n.mu.Lock()
	m := o.m
	if err != nil {
		n.failedLocked(l, o, err, now)
		n.mu.Unlock()
		return
	}
	l.fails, l.bare429 = 0, 0
	if n.polite(l, now) {
		l.nextAt = now.Add(n.o.channelInterval)
	}
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
			n.deliverRootLocked(m, now)
		}
	case opUpdate:
		m.posted = max(m.posted, o.version)
		m.lastUpdate = now
		n.deliverRootLocked(m, now)
	case opReply:
		if o.reply != nil {
			m.replies = slices.DeleteFunc(m.replies, func(r *threadReply) bool { return r == o.reply })
			n.deliverLocked(o.reply.pend, now)
		} else {
			ps := make([]pend, 0, o.upto-m.covered)
			for _, mem := range m.members[m.covered:o.upto] {
				ps = append(ps, pend{at: mem.at, typ: finding.NoticeFinding})
			}
			m.covered = o.upto
			m.lastReply = now
			n.deliverLocked(ps, now)
		}
	}
	n.mu.Unlock()
	if store != nil {
		n.putRef(ctx, m.proposal.ID, *store)
		n.mu.Lock()
		n.deliverRootLocked(m, now)
		n.mu.Unlock()
	}
}

// deliverRootLocked counts the notices the posted root version shows as delivered.
func (n *Notifier) deliverRootLocked(m *message, now time.Time) {
	i := 0
	for ; i < len(m.rootPend) && m.rootPend[i].version <= m.posted; i++ {
	}
	n.deliverLocked(m.rootPend[:i], now)
	m.rootPend = slices.Delete(m.rootPend, 0, i)
}

// putRef records a proposal's message, retrying briefly; a failure only costs the update of
// the original message after a restart (a new message is posted then).
func (n *Notifier) putRef(ctx context.Context, id string, ref MessageRef) {
	var err error
	_ = wait.ExponentialBackoffWithContext(ctx, wait.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Steps: 3},
		func(ctx context.Context) (bool, error) {
			err = n.o.store.Put(ctx, id, ref)
			return err == nil, nil
		})
	if err != nil && ctx.Err() == nil {
		n.o.log.Error("slack: recording a proposal's message failed; after a restart its decision is posted anew",
			zap.String("proposal", id), zap.Error(err))
	}
}

// backoff is the wait after the k-th consecutive failure.
func (n *Notifier) backoff(k int) time.Duration { return n.doubled(n.o.backoffInitial, k) }

// doubled is d doubled for each consecutive failure after the first of k, at most the
// maximum backoff.
func (n *Notifier) doubled(d time.Duration, k int) time.Duration {
	return retry.Delay(retry.Exponential(d, n.o.backoffMax), k)
}

// paceLocked makes a rate-limited lane polite for WithPaceFor.
func (n *Notifier) paceLocked(l *lane, now time.Time, log *zap.Logger) {
	if n.o.paceFor < 0 {
		return
	}
	if !now.Before(l.paceUntil) {
		log.Info("slack: rate limited; pacing and coalescing this channel", zap.Duration("for", n.o.paceFor))
	}
	l.paceUntil = now.Add(n.o.paceFor)
}

// Slack errors that say the message (or its thread) is gone.
var goneErrors = []string{"message_not_found", "cant_update_message", "edit_window_closed", "thread_not_found"}

// Slack errors that say the blocks were refused: the text alone is sent instead.
var renderErrors = []string{"invalid_blocks", "invalid_blocks_format", "msg_too_long", "too_many_blocks", "msg_blocks_too_long"}

// failedLocked decides what a failed call means: wait for Retry-After (or a default), back off,
// re-post a message that is gone, or fall back to text.
func (n *Notifier) failedLocked(l *lane, o *op, err error, now time.Time) {
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
		n.paceLocked(l, now, log)
		l.bare429 = 0
		l.nextAt = now.Add(max(rl.RetryAfter, time.Second))
		log.Debug("slack: rate limited", zap.Duration("retry_after", rl.RetryAfter))
	case errors.As(err, &sc) && sc.Code == http.StatusTooManyRequests,
		errors.As(err, &se) && se.Err == "ratelimited":
		n.paceLocked(l, now, log)
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

// countError counts a failed call by method and code.
func (n *Notifier) countError(method string, err error) {
	n.m.apiErrors.WithLabelValues(method, errorCode(err)).Inc()
}

func errorCode(err error) string {
	var (
		rl *slack.RateLimitedError
		sc slack.StatusCodeError
		se slack.SlackErrorResponse
	)
	switch {
	case errors.As(err, &rl):
		return "429"
	case errors.As(err, &sc):
		return strconv.Itoa(sc.Code)
	case errors.As(err, &se):
		return se.Err
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "network"
}

// ephemeral tells one user something in a channel, retrying a rate limit a few times.
func (n *Notifier) ephemeral(ctx context.Context, channel, user, text string) {
	if channel == "" || user == "" {
		return
	}
	for attempt := 0; ; attempt++ {
		_, err := n.api.PostEphemeralContext(ctx, channel, user, slack.MsgOptionText(text, false))
		if err == nil {
			return
		}
		n.countError("chat.postEphemeral", err)
		wait := n.backoff(attempt + 1)
		var rl *slack.RateLimitedError
		if errors.As(err, &rl) {
			wait = rl.RetryAfter
		}
		if attempt >= 2 {
			n.o.log.Warn("slack: ephemeral message failed", zap.String("user", user), zap.Error(err))
			return
		}
		if !retry.Sleep(ctx, wait) {
			return
		}
	}
}
