package audit

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/podmedic/podmedic/finding"
)

func TestSubjects(t *testing.T) {
	assert.Equal(t, "podmedic.audit.prod_eu.proposal", Subject("prod.eu", Proposal))
	assert.Equal(t, "podmedic.findings.prod_eu.OOMKilled", FindingSubject("prod.eu", finding.OOMKilled))

	for _, tc := range []struct {
		subject string
		cluster string
		typ     Type
		ok      bool
	}{
		{Subject("prod.eu", Proposal), "prod_eu", Proposal, true},
		{Subject("c", Schedule), "c", Schedule, true},
		{Subject("c", Refusal), "c", Refusal, true},
		{FindingSubject("c", finding.Evicted), "c", Finding, true},
		{"podmedic.audit.c.unknown", "", "", false},
		{"podmedic.obs.c.proposal", "", "", false},
		{"podmedic.audit.c", "", "", false},
	} {
		c, typ, ok := ParseSubject(tc.subject)
		assert.Equal(t, tc.ok, ok, tc.subject)
		assert.Equal(t, tc.cluster, c, tc.subject)
		assert.Equal(t, tc.typ, typ, tc.subject)
	}
}
