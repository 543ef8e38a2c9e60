package bus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/podmedic/podmedic/internal/retry"
)

// Handler handles one observation. Returning nil acks it. Returning an error wrapping
// ErrPermanent terminates it (Term: never redelivered) and counts it. Any other error naks it
// with a delay that grows with the delivery count (RetryDelay doubled per delivery, at most
// MaxRetryDelay); on the last delivery (MaxDeliver) it is terminated instead.
//
// The context is not cancelled when Consume is asked to stop: in-flight work finishes and is
// acked. It is cancelled only when the drain deadline (Options.DrainTimeout) passes.
type Handler func(ctx context.Context, o *Observation) error

// ErrPermanent marks a handler error that retrying cannot fix.
var ErrPermanent = errors.New("permanent failure")

const (
	// handlerGrace is how long Consume waits, past the drain deadline, for handlers whose
	// context it cancelled.
	handlerGrace = 5 * time.Second
	// progressEvery is how often a running handler's message is marked in progress, so that
	// the server does not redeliver it after AckWait.
	progressEvery = AckWait / 3
	// pullExpiry and pullHeartbeat tune the pull requests of Consume (see there).
	pullExpiry    = 10 * time.Second
	pullHeartbeat = time.Second
	// maxTermReason bounds the reason sent with Term (it ends up in an advisory).
	maxTermReason = 200
)

// Consume runs the durable work-queue consumer ConsumerRules with workers goroutines until
// ctx is done. A message that fails DecodeObservation is terminated and counted: never
// retried, never fatal. A panicking handler is a retryable failure.
//
// When ctx is done Consume stops fetching, drains the messages already fetched into the
// workers, lets in-flight handlers finish and ack, waits on the consumer's Closed(), and
// returns nil. All of that is bounded by Options.DrainTimeout; past it, messages not yet handed
// to a worker are naked (redelivered at once elsewhere), handler contexts are cancelled, and
// Consume returns an error if handlers still run handlerGrace later.
//
// Consume returns an error before ctx is done only when consuming cannot go on (the consumer
// was deleted, the connection closed).
func (b *Bus) Consume(ctx context.Context, workers int, h Handler) error {
	if h == nil {
		return errors.New("bus: Consume needs a handler")
	}
	workers = max(workers, 1)
	log := b.log.With(zap.String("consumer", ConsumerRules))

	// Handlers outlive ctx until the drain deadline.
	hctx, hcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer hcancel()

	work := make(chan jetstream.Msg)
	abandon := make(chan struct{}) // closed past the drain deadline: hand messages back
	quit := make(chan struct{})    // closed when no message will be dispatched any more
	closeAbandon := sync.OnceFunc(func() { close(abandon) })
	closeQuit := sync.OnceFunc(func() { close(quit) })
	defer closeAbandon()
	defer closeQuit()

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			k := newKeeper()
			defer k.stop()
			for {
				select {
				case m := <-work:
					b.handle(hctx, log, m, h, k)
				case <-quit:
					return
				}
			}
		})
	}
	workersDone := make(chan struct{})
	go func() { wg.Wait(); close(workersDone) }()

	var (
		errMu   sync.Mutex
		lastErr error
	)
	cc, err := b.rules.Consume(
		func(m jetstream.Msg) {
			select {
			case work <- m:
			case <-abandon:
				_ = m.Nak()
			}
		},
		jetstream.PullMaxMessages(consumeBuffer(workers)),
		// nats.go v1.55.0 can skip the follow-up pull request when the client's buffer falls
		// below the threshold while the previous request is still being sent (checkPending
		// returns early on fetchInProgress and nothing retries): the server then has no
		// waiting request and the consumer stalls until the missed-heartbeat check re-pulls
		// (2 x heartbeat, 30s with the defaults). A short heartbeat bounds such a stall to
		// about 2s; the idle cost is one heartbeat per second.
		jetstream.PullExpiry(pullExpiry),
		jetstream.PullHeartbeat(pullHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				// Recovered by a new pull request (see above); expected now and then.
				log.Debug("consume: missed heartbeat; pulling again", zap.Error(err))
				return
			}
			errMu.Lock()
			lastErr = err
			errMu.Unlock()
			log.Warn("consume", zap.Error(err))
		}),
	)
	if err != nil {
		closeQuit()
		<-workersDone
		return fmt.Errorf("consume %s on %s: %w", ConsumerRules, StreamObservations, err)
	}

	var result error
	select {
	case <-ctx.Done():
	case <-cc.Closed():
		errMu.Lock()
		result = fmt.Errorf("consumer %s stopped unexpectedly (last error: %v)", ConsumerRules, lastErr)
		errMu.Unlock()
	}

	// Stop fetching; what is already fetched goes to the workers.
	cc.Drain()
	deadline := time.NewTimer(b.opts.DrainTimeout)
	defer deadline.Stop()
	select {
	case <-cc.Closed():
		// Nothing more will be dispatched: idle workers leave, busy ones finish and ack.
		closeQuit()
		select {
		case <-workersDone:
			return result
		case <-deadline.C:
		}
	case <-deadline.C:
	}

	log.Warn("drain deadline passed; cancelling in-flight handlers", zap.Duration("drainTimeout", b.opts.DrainTimeout))
	closeAbandon()
	hcancel()
	grace, cancelGrace := context.WithTimeout(context.Background(), handlerGrace)
	defer cancelGrace()
	select {
	case <-cc.Closed():
	case <-grace.Done():
	}
	closeQuit()
	select {
	case <-workersDone:
		return result
	case <-grace.Done():
		return errors.Join(result, fmt.Errorf("consumer %s: handlers still running %s after the drain deadline", ConsumerRules, handlerGrace))
	}
}

// consumeBuffer is how many messages the client fetches ahead. Fetched messages wait in the
// client while their AckWait runs (about buffer/workers handler runs), so the buffer is a
// few dozen messages per worker at most: rule handlers take milliseconds. A larger buffer
// also makes the nats.go stall described in Consume rarer.
func consumeBuffer(workers int) int {
	return min(max(16*workers, 64), 512)
}

// handle runs h on one message and settles it: ack, nak with delay, or term.
func (b *Bus) handle(ctx context.Context, log *zap.Logger, m jetstream.Msg, h Handler, k *keeper) {
	if m.Headers().Get(HeaderFrame) != "" {
		b.handleFrame(ctx, log, m, h, k)
		return
	}
	o, err := DecodeObservation(m.Data())
	if err != nil {
		b.termMalformed(log, m, "observation", err)
		return
	}

	delivered := deliveries(m)

	k.start(m)
	err = runHandler(ctx, h, o)
	k.done()

	var settle error
	switch {
	case err == nil:
		b.metrics.handled(OutcomeAck)
		settle = m.Ack()
	case errors.Is(err, ErrPermanent):
		b.metrics.handled(OutcomeTerm)
		log.Warn("handler failed permanently; terminating observation",
			zap.String("msgID", o.MsgID()), zap.Uint64("delivered", delivered), zap.Error(err))
		settle = m.TermWithReason(termReason(err))
	case delivered >= MaxDeliver:
		b.metrics.handled(OutcomeTerm)
		log.Error("handler failed on the last delivery; terminating observation",
			zap.String("msgID", o.MsgID()), zap.Uint64("delivered", delivered), zap.Error(err))
		settle = m.TermWithReason(termReason(fmt.Errorf("gave up after %d deliveries: %w", delivered, err)))
	default:
		b.metrics.handled(OutcomeNak)
		delay := retryDelay(b.opts.RetryDelay, delivered)
		log.Info("handler failed; retrying observation later",
			zap.String("msgID", o.MsgID()), zap.Uint64("delivered", delivered), zap.Duration("delay", delay), zap.Error(err))
		settle = m.NakWithDelay(delay)
	}
	if settle != nil {
		// The server redelivers after AckWait.
		log.Warn("settling observation", zap.String("msgID", o.MsgID()), zap.Error(settle))
	}
}

// handleFrame runs h on each observation of a frame, then acks the frame. An observation whose
// handler fails and may succeed later is published again on its own (with its own message id,
// retried and finally terminated like any single observation), so the others are not handled
// twice; only when that publish fails is the whole frame naked (handlers are idempotent: a
// finding is claimed once). Malformed members and permanent failures are terminated alone:
// counted and logged.
func (b *Bus) handleFrame(ctx context.Context, log *zap.Logger, m jetstream.Msg, h Handler, k *keeper) {
	obs, errs, err := DecodeFrame(m.Data())
	if err != nil {
		b.termMalformed(log, m, "frame", err)
		return
	}
	k.start(m)
	var retry []*Observation
	for i, o := range obs {
		if errs[i] != nil {
			b.metrics.malformed()
			b.metrics.handled(OutcomeTerm)
			log.Warn("terminating malformed observation of a frame", zap.Int("member", i), zap.Error(errs[i]))
			continue
		}
		switch err := runHandler(ctx, h, o); {
		case err == nil:
			b.metrics.handled(OutcomeAck)
		case errors.Is(err, ErrPermanent):
			b.metrics.handled(OutcomeTerm)
			log.Warn("handler failed permanently; terminating observation", zap.String("msgID", o.MsgID()), zap.Error(err))
		default:
			b.metrics.handled(OutcomeNak)
			log.Info("handler failed; retrying observation on its own", zap.String("msgID", o.MsgID()), zap.Error(err))
			retry = append(retry, o)
		}
	}
	for i, o := range retry {
		if err := b.PublishObservation(ctx, o); err != nil {
			k.done()
			delivered := deliveries(m)
			var settle error
			if delivered >= MaxDeliver {
				log.Error("could not publish failed observations of a frame on their own; terminating the frame",
					zap.Int("failed", len(retry)-i), zap.Uint64("delivered", delivered), zap.Error(err))
				settle = m.TermWithReason(termReason(err))
			} else {
				delay := retryDelay(b.opts.RetryDelay, delivered)
				log.Warn("could not publish a failed observation of a frame on its own; retrying the frame",
					zap.Int("failed", len(retry)-i), zap.Duration("delay", delay), zap.Error(err))
				settle = m.NakWithDelay(delay)
			}
			if settle != nil {
				log.Warn("settling frame", zap.String("subject", m.Subject()), zap.Error(settle))
			}
			return
		}
	}
	k.done()
	if err := m.Ack(); err != nil {
		log.Warn("settling frame", zap.String("subject", m.Subject()), zap.Error(err))
	}
}

// termMalformed terminates a message that cannot be decoded (what: observation or frame):
// counted, logged, never retried.
func (b *Bus) termMalformed(log *zap.Logger, m jetstream.Msg, what string, err error) {
	b.metrics.malformed()
	b.metrics.handled(OutcomeTerm)
	log.Warn("terminating malformed "+what, zap.String("subject", m.Subject()), zap.Error(err))
	if err := m.TermWithReason(termReason(err)); err != nil {
		log.Warn("term", zap.String("subject", m.Subject()), zap.Error(err))
	}
}

// deliveries is how many times the server has delivered m (1 when it cannot tell).
func deliveries(m jetstream.Msg) uint64 {
	if md, err := m.Metadata(); err == nil {
		return md.NumDelivered
	}
	return 1
}

// runHandler calls h, turning a panic into a (retryable) error.
func runHandler(ctx context.Context, h Handler, o *Observation) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panic: %v", r)
		}
	}()
	return h(ctx, o)
}

// retryDelay is the Nak delay after the delivered-th failed delivery: base doubled per
// delivery, capped at MaxRetryDelay, with ±20% jitter so that failures of one cause do not come
// back in lockstep.
func retryDelay(base time.Duration, delivered uint64) time.Duration {
	d := MaxRetryDelay
	if delivered >= 1 && base > 0 {
		d = retry.Delay(retry.Exponential(base, MaxRetryDelay), int(min(delivered, 64)))
	}
	jitter := time.Duration(rand.Int64N(int64(d)/5*2+1)) - d/5
	return min(d+jitter, MaxRetryDelay)
}

func termReason(err error) string {
	s := err.Error()
	if len(s) > maxTermReason {
		s = s[:maxTermReason]
	}
	return s
}

// keeper marks the message a worker is handling as in progress every progressEvery, so that a
// slow handler does not see its message redelivered to another worker after AckWait. One
// keeper per worker; no allocation per message.
type keeper struct {
	mu  sync.Mutex
	msg jetstream.Msg
	t   *time.Timer
}

func newKeeper() *keeper {
	k := &keeper{}
	k.mu.Lock()
	k.t = time.AfterFunc(time.Hour, k.tick)
	k.t.Stop()
	k.mu.Unlock()
	return k
}

func (k *keeper) start(m jetstream.Msg) {
	k.mu.Lock()
	k.msg = m
	k.t.Reset(progressEvery)
	k.mu.Unlock()
}

func (k *keeper) done() {
	k.mu.Lock()
	k.msg = nil
	k.t.Stop()
	k.mu.Unlock()
}

func (k *keeper) tick() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.msg == nil {
		return
	}
	_ = k.msg.InProgress()
	k.t.Reset(progressEvery)
}

func (k *keeper) stop() {
	k.mu.Lock()
	k.msg = nil
	k.t.Stop()
	k.mu.Unlock()
}
