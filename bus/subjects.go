package bus

// Subjects and names of the JetStream assets podmedic uses.
const (
	// SubjectObservations prefixes observation subjects.
	SubjectObservations = "podmedic.obs"
	// SubjectFindings prefixes finding subjects: podmedic.findings.<cluster>.<kind>.
	SubjectFindings = "podmedic.findings"
	// SubjectAudit prefixes audit subjects (proposal transitions, action outcomes).
	SubjectAudit = "podmedic.audit"

	StreamObservations = "PODMEDIC_OBS"
	StreamAudit        = "PODMEDIC_AUDIT"
	ConsumerRules      = "rules"
	BucketProposals    = "podmedic-proposals"
	BucketDedup        = "podmedic-dedup"

	// HeaderType carries the observation type, HeaderReason an event's reason.
	HeaderType   = "Podmedic-Type"
	HeaderReason = "Podmedic-Reason"
	HeaderKind   = "Podmedic-Kind"
)
