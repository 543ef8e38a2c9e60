package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/podmedic/podmedic/bus"
)

// Reader reads the audit stream (PODMEDIC_AUDIT) with an ordered consumer: ephemeral and
// read-only, so it changes nothing on the stream.
type Reader struct{ JS jetstream.JetStream }

var _ Source = Reader{}

// fetchWait bounds the wait for a batch when the consumer has nothing left to deliver.
const fetchWait = time.Second

// Records implements Source.
func (a Reader) Records(ctx context.Context, cluster string, since time.Time) ([]Record, error) {
	tok := "*"
	if cluster != "" {
		tok = bus.Token(cluster)
	}
	cons, err := a.JS.OrderedConsumer(ctx, bus.StreamAudit, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{bus.SubjectFindings + "." + tok + ".>", bus.SubjectAudit + "." + tok + ".>"},
		DeliverPolicy:  jetstream.DeliverByStartTimePolicy, OptStartTime: &since,
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", bus.StreamAudit, err)
	}
	var out []Record
	for {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(fetchWait))
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", bus.StreamAudit, err)
		}
		n, last := 0, false
		for m := range batch.Messages() {
			n++
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			if c, t, ok := ParseSubject(m.Subject()); ok {
				out = append(out, Record{Cluster: c, Type: t, Time: meta.Timestamp, Data: m.Data()})
			}
			last = meta.NumPending == 0
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("read stream %s: %w", bus.StreamAudit, err)
		}
		if n == 0 || last {
			return out, ctx.Err()
		}
	}
}
