// Package bus is podmedic's message bus on NATS JetStream: the connection (to an embedded
// server by default, or an external URL), the observation stream and its durable work-queue
// consumer, the audit stream, the KV buckets for proposals and dedup, the subjects, and the
// versioned observation envelope that watchers publish and rule handlers consume.
package bus
