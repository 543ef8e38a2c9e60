package audit

import (
	"context"
	"strings"
	"time"

	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/finding"
)

// Type is the type of an audit record: the last token of its subject, or Finding for
// podmedic.findings.<cluster>.<kind>.
type Type string

// Record types.
const (
	// Finding: a finding, as the rule handler recorded it (a finding.Finding).
	Finding Type = "finding"
	// Proposal: a proposal in one of its states (a finding.Proposal).
	Proposal Type = "proposal"
	// Schedule: a scheduled job's run (the schedule package's Report).
	Schedule Type = "schedule"
	// Refusal: a refusal notice of the actions stage (a Refusal).
	Refusal Type = "refusal"
	// Override: a change of a memory override (the overrides package's Change).
	Override Type = "override"
)

// Subject is the subject records of type t are written on: podmedic.audit.<cluster>.<t>, or
// for findings podmedic.findings.<cluster>.<kind> (see FindingSubject).
func Subject(cluster string, t Type) string {
	return bus.SubjectAudit + "." + bus.Token(cluster) + "." + string(t)
}

// FindingSubject is the subject of a finding of kind k: podmedic.findings.<cluster>.<kind>.
func FindingSubject(cluster string, k finding.Kind) string {
	return bus.SubjectFindings + "." + bus.Token(cluster) + "." + string(k)
}

// Record is one message of the audit stream.
type Record struct {
	// Cluster is the cluster token of the subject.
	Cluster string
	Type    Type
	// Time is when the stream stored it.
	Time time.Time
	// Data is the record's JSON.
	Data []byte
}

// Source reads the audit stream: every record of a cluster ("" for all) stored at or after
// since, oldest first.
type Source interface {
	Records(ctx context.Context, cluster string, since time.Time) ([]Record, error)
}

// ParseSubject reads a record's cluster and type from its subject; false for a subject that
// is not an audit record's.
func ParseSubject(subject string) (cluster string, t Type, ok bool) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 {
		return "", "", false
	}
	switch {
	case parts[0]+"."+parts[1] == bus.SubjectFindings:
		return parts[2], Finding, true
	case parts[0]+"."+parts[1] != bus.SubjectAudit:
		return "", "", false
	}
	switch t := Type(parts[3]); t {
	case Proposal, Schedule, Refusal, Override:
		return parts[2], t, true
	}
	return "", "", false
}

// RefusalRecord is the record of one refusal notice: Count actions of Rule refused for Reason
// between First and Last (the digest counts them).
type RefusalRecord struct {
	Rule    string             `json:"rule"`
	Reason  finding.Reason     `json:"reason"`
	Action  finding.ActionType `json:"action"`
	Count   int                `json:"count"`
	First   time.Time          `json:"first"`
	Last    time.Time          `json:"last"`
	Message string             `json:"message"`
}
