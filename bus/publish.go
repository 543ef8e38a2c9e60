package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/util/wait"
)

// PublishObservation publishes o on o.Subject() with Nats-Msg-Id = o.MsgID() and the headers
// HeaderType, HeaderKind and HeaderReason (when set). The version is set to EnvelopeVersion
// when zero. An observation that DecodeObservation would refuse is not published (the error
// wraps ErrMalformed). A duplicate (the same MsgID within DuplicateWindow, e.g. from another watcher
// replica) is not an error; it is counted.
func (b *Bus) PublishObservation(ctx context.Context, o *Observation) error {
	m, msgID, err := prepareObservation(o)
	if err != nil {
		b.metrics.publishError()
		return err
	}
	return b.publish(ctx, m, StreamObservations, msgID)
}

// prepareObservation encodes and checks o and returns the message to publish and its
// Nats-Msg-Id.
func prepareObservation(o *Observation) (*nats.Msg, string, error) {
	if o.Version == 0 {
		c := *o
		c.Version = EnvelopeVersion
		o = &c
	}
	data, err := o.Encode()
	if err != nil {
		return nil, "", fmt.Errorf("encode observation %s: %w", o.MsgID(), err)
	}
	// Refuse here what every consumer would terminate as malformed. The encoding above has
	// validated the object's JSON (and compacted it, so its first byte is the first one that is
	// not a space): the decoded envelope would carry the same values, so checking them is what
	// DecodeObservation(data) would do, without parsing the envelope again.
	if err := o.check(); err != nil {
		return nil, "", fmt.Errorf("publish observation %s: %w", o.MsgID(), err)
	}
	m := &nats.Msg{Subject: o.Subject(), Data: data, Header: nats.Header{}}
	m.Header.Set(HeaderType, string(o.Type))
	m.Header.Set(HeaderKind, o.Kind)
	if o.Reason != "" {
		m.Header.Set(HeaderReason, o.Reason)
	}
	return m, o.MsgID(), nil
}

// PublishJSON publishes v as JSON on subject, which must be under SubjectFindings or
// SubjectAudit, with msgID as Nats-Msg-Id for dedup (empty: none).
func (b *Bus) PublishJSON(ctx context.Context, subject, msgID string, v any) error {
	if !strings.HasPrefix(subject, SubjectFindings+".") && !strings.HasPrefix(subject, SubjectAudit+".") {
		return fmt.Errorf("publish: subject %q is not under %s or %s", subject, SubjectFindings, SubjectAudit)
	}
	data, err := json.Marshal(v)
	if err != nil {
		b.metrics.publishError()
		return fmt.Errorf("publish %s: encode: %w", subject, err)
	}
	return b.publish(ctx, &nats.Msg{Subject: subject, Data: data}, StreamAudit, msgID)
}

// errCodeDuplicateInProcess is JetStream's answer to a message whose Nats-Msg-Id another
// publisher's message (another watcher replica's) is being stored under right now, in a
// replicated stream: not stored, not refused either.
const errCodeDuplicateInProcess = 10158

// duplicateInProcess reports whether err is that answer.
func duplicateInProcess(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeDuplicateInProcess
}

// inProcessBackoff spaces the publishes of a message whose twin is being stored: the twin is
// stored (our retry is then a duplicate) or refused (our retry stores it) within milliseconds.
func inProcessBackoff() wait.Backoff {
	return wait.Backoff{Duration: 10 * time.Millisecond, Factor: 1.2, Steps: 20} // 1.5 s in all
}

func (b *Bus) publish(ctx context.Context, m *nats.Msg, stream, msgID string) error {
	opts := []jetstream.PublishOpt{jetstream.WithExpectStream(stream)}
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	var (
		ack *jetstream.PubAck
		err error
	)
	werr := wait.ExponentialBackoffWithContext(ctx, inProcessBackoff(), func(ctx context.Context) (bool, error) {
		ack, err = b.js.PublishMsg(ctx, m, opts...)
		return !duplicateInProcess(err), nil
	})
	if werr != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return b.publishFailed(m.Subject, stream, err)
	}
	b.metrics.acked(ack)
	return nil
}

// publishFailed counts a failed publish on subject to stream and returns its error.
func (b *Bus) publishFailed(subject, stream string, err error) error {
	b.metrics.publishError()
	if errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("publish %s: no stream %s answered: %w", subject, stream, err)
	}
	return fmt.Errorf("publish %s: %w", subject, err)
}

// PublishObservations publishes several observations at once and waits for every
// acknowledgement (or ctx): they go out in frames (see HeaderFrame) of up to
// MaxFrameObservations, asynchronously, one round trip for the lot. A lone observation goes out
// as PublishObservation sends it. It returns one error per observation, nil when it was stored
// or was a duplicate (also of another observation of obs); an observation that
// PublishObservation would refuse is refused alone.
func (b *Bus) PublishObservations(ctx context.Context, obs []*Observation) []error {
	errs := make([]error, len(obs))
	var frames []*frame
	cur := &frame{}
	seen := make(map[string]bool, len(obs))
	for i, o := range obs {
		m, id, err := prepareObservation(o)
		if err != nil {
			b.metrics.publishError()
			errs[i] = err
			continue
		}
		if seen[id] {
			// JetStream would drop it as a duplicate on its own, but not inside a frame.
			b.metrics.duplicate()
			continue
		}
		seen[id] = true
		if !cur.fits(o.Cluster, m) {
			frames = append(frames, cur)
			cur = &frame{}
		}
		cur.add(i, o.Cluster, id, m)
	}
	if len(cur.members) > 0 {
		frames = append(frames, cur)
	}

	futures := make([]jetstream.PubAckFuture, len(frames))
	for k, f := range frames {
		m, id := f.msg()
		fut, err := b.js.PublishMsgAsync(m, jetstream.WithExpectStream(StreamObservations), jetstream.WithMsgID(id))
		if err != nil {
			b.metrics.publishError()
			f.fail(errs, fmt.Errorf("publish %s: %w", m.Subject, err))
			continue
		}
		futures[k] = fut
	}
	for k, fut := range futures {
		if fut == nil {
			continue
		}
		select {
		case ack := <-fut.Ok():
			b.metrics.acked(ack)
		case err := <-fut.Err():
			if duplicateInProcess(err) {
				// Another replica's twin is being stored: publish again until it is settled.
				if err := b.publish(ctx, fut.Msg(), StreamObservations, fut.Msg().Header.Get(jetstream.MsgIDHeader)); err != nil {
					frames[k].fail(errs, err)
				}
				continue
			}
			frames[k].fail(errs, b.publishFailed(fut.Msg().Subject, StreamObservations, err))
		case <-ctx.Done():
			frames[k].fail(errs, ctx.Err())
		}
	}
	return errs
}

// ObservationBacklog is how many published messages (a frame counts once) the rules consumer
// has not acked yet (pending plus in flight), over all replicas. Publishers of bulk work (resync passes) wait
// while it is high, so that the stream does not hold thousands of messages (in the store's
// memory cache, and ahead of the next real change in the work queue).
func (b *Bus) ObservationBacklog(ctx context.Context) (int, error) {
	info, err := b.rules.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", ConsumerRules, err)
	}
	return int(info.NumPending) + info.NumAckPending, nil
}
