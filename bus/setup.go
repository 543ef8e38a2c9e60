package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Settings of the JetStream assets. They are part of the bus contract: changing retention or
// storage of an existing stream is refused by the server.
const (
	// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id.
	DuplicateWindow = 2 * time.Minute
	// ObservationMaxAge bounds how long an unhandled observation is kept.
	ObservationMaxAge = 24 * time.Hour
	// AuditMaxAge is how long findings and audit records are kept.
	AuditMaxAge = 7 * 24 * time.Hour
	// AckWait is how long the server waits for an ack before redelivering. Consume extends it
	// (InProgress) while a handler runs.
	AckWait = 30 * time.Second
	// MaxDeliver is how many times an observation is delivered at most. Consume terminates a
	// message whose handler still fails on the last delivery (see handle).
	MaxDeliver = 10
	// MaxAckPending bounds the observations delivered and not yet acked, over all replicas.
	MaxAckPending = 1024
	// MaxRetryDelay caps the Nak delay.
	MaxRetryDelay = 30 * time.Second
	// ProposalHistory is the history kept per proposal key.
	ProposalHistory = 5
	// DedupMarkerTTL is how long the dedup bucket keeps the marker left by an expired key.
	DedupMarkerTTL = time.Minute
)

// setup creates or updates the streams, the consumer and the buckets.
func (b *Bus) setup(ctx context.Context) error {
	// Shares of MaxStore, below it in sum: a server refuses reservations beyond its limit.
	// Every replica computes the same limits, so CreateOrUpdate does not flap between them.
	obsBytes, auditBytes, bucketBytes := b.opts.MaxStore/2, b.opts.MaxStore/4, b.opts.MaxStore/16
	replicas := b.opts.Replicas

	if _, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamObservations,
		Description: "podmedic observations of Pods, PVCs and Events (work queue of the rules consumer)",
		Subjects:    []string{SubjectObservations + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  DuplicateWindow,
		MaxAge:      ObservationMaxAge,
		MaxBytes:    obsBytes,
		MaxMsgs:     -1,
		Discard:     jetstream.DiscardOld,
		Replicas:    replicas,
	}); err != nil {
		return fmt.Errorf("create or update stream %s: %w", StreamObservations, err)
	}

	rules, err := b.js.CreateOrUpdateConsumer(ctx, StreamObservations, jetstream.ConsumerConfig{
		Durable:       ConsumerRules,
		Description:   "podmedic rule handlers",
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		// MaxDeliver is a backstop: Consume terminates (Term, counted, logged) a message whose
		// handler still fails on delivery MaxDeliver, so the message leaves the work queue
		// instead of staying in the stream un-deliverable until MaxAge. Only a message whose
		// handler never returns within AckWait on every delivery (a hung or crashing process)
		// reaches the server's limit; the server then stops delivering it, publishes a
		// MAX_DELIVERIES advisory, and MaxAge removes it within a day. Observations are
		// snapshots: the next change of the object brings a fresh one.
		MaxDeliver:    MaxDeliver,
		MaxAckPending: MaxAckPending,
		FilterSubject: SubjectObservations + ".>",
		Replicas:      replicas,
	})
	if err != nil {
		return fmt.Errorf("create or update consumer %s on %s: %w", ConsumerRules, StreamObservations, err)
	}
	b.rules = rules

	if _, err := b.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamAudit,
		Description: "podmedic findings and audit records",
		Subjects:    []string{SubjectFindings + ".>", SubjectAudit + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  DuplicateWindow,
		MaxAge:      AuditMaxAge,
		MaxBytes:    auditBytes,
		MaxMsgs:     -1,
		Discard:     jetstream.DiscardOld,
		Replicas:    replicas,
	}); err != nil {
		return fmt.Errorf("create or update stream %s: %w", StreamAudit, err)
	}

	if b.proposals, err = b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketProposals,
		Description: "podmedic proposals and approvals (compare-and-set)",
		History:     ProposalHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxBytes:    bucketBytes,
	}); err != nil {
		return fmt.Errorf("create or update KV bucket %s: %w", BucketProposals, err)
	}

	if b.dedup, err = b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      BucketDedup,
		Description: "podmedic cooldowns and notice dedup (per-key TTL)",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxBytes:    bucketBytes,
		// Per-key TTLs (Claim) need the server's per-message TTL, which LimitMarkerTTL turns
		// on. Keys have no default TTL.
		LimitMarkerTTL: DedupMarkerTTL,
	}); err != nil {
		return fmt.Errorf("create or update KV bucket %s: %w", BucketDedup, err)
	}
	return nil
}
