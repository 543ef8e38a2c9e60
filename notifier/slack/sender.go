package slack

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podmedic/podmedic/internal/retry"
	"github.com/podmedic/podmedic/notifier"
)

// laneLocked returns the lane of a channel, made on first use; Run starts its sender.
func (n *Notifier) laneLocked(channel string) *lane {
	l, ok := n.lanes[channel]
	if !ok {
		l = newLane(n, channel)
		n.lanes[channel] = l
		// Run starts its sender (under Run's context: none is kept here).
		n.unstarted = append(n.unstarted, l)
		select {
		case n.laneAdded <- struct{}{}:
		default:
		}
	}
	return l
}

// Run delivers accepted notices until ctx ends, runs Socket Mode when configured, applies
// Approve/Deny clicks with d (nil: clicks are answered, ephemerally, that approvals are not
// enabled), and returns nil after a clean stop (notices still undelivered then are logged,
// and lost with the process; see Flush). It may be called once.
func (n *Notifier) Run(ctx context.Context, d notifier.Decider) error {
	n.mu.Lock()
	if n.running || n.stopped {
		n.mu.Unlock()
		return errors.New("slack: Run called twice")
	}
	n.running = true
	n.decider = d
	n.mu.Unlock()

	if n.cfg.SocketMode {
		n.workers.Go(func() { n.runSocketMode(ctx) })
	}
	n.workers.Go(func() { n.janitor(ctx) })
	// Each channel's sender, as channels appear.
	for ctx.Err() == nil {
		n.mu.Lock()
		fresh := n.unstarted
		n.unstarted = nil
		n.mu.Unlock()
		for _, l := range fresh {
			n.workers.Go(func() { l.run(ctx) })
		}
		select {
		case <-ctx.Done():
		case <-n.laneAdded:
		}
	}
	n.workers.Wait()
	n.mu.Lock()
	n.stopping = true
	n.mu.Unlock()
	n.async.Wait()

	n.mu.Lock()
	n.stopped = true
	n.mu.Unlock()
	left := n.backlog.count()
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

// pruneLocked forgets old finding keys, and delivered messages that are done: groups past
// their window, refusals and reports, proposals decided or expired an hour ago.
func (n *Notifier) pruneLocked(now time.Time) {
	for k, t := range n.seen {
		if now.Sub(t) > keepSeen {
			delete(n.seen, k)
		}
	}
	for _, l := range n.lanes {
		for _, m := range l.prune(now) {
			delete(n.msgs, m.key)
			if m.kind == kindGroup && n.groups[m.gkey] == m {
				delete(n.groups, m.gkey)
			}
		}
	}
}

// call makes an op's Web API call: chat.postMessage (a root, or a reply in ts's thread) or
// chat.update.
func (n *Notifier) call(ctx context.Context, o *op) (channel, ts string, err error) {
	opts := []slack.MsgOption{slack.MsgOptionText(o.content.Text, false)}
	if !o.text {
		opts = append(opts, slack.MsgOptionBlocks(o.content.Blocks...))
	}
	switch o.kind {
	case opPost:
		return n.api.PostMessageContext(ctx, o.channel, opts...)
	case opUpdate:
		_, _, _, err = n.api.UpdateMessageContext(ctx, o.channel, o.ts, opts...)
		return "", "", err
	case opReply:
		return n.api.PostMessageContext(ctx, o.channel, append(opts, slack.MsgOptionTS(o.ts))...)
	}
	return "", "", errors.New("slack: unknown call")
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
