package rules

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

// TestEveryKindSummarises: each kind podmedic ships says in its own sentence what happened,
// naming the object it is about.
func TestEveryKindSummarises(t *testing.T) {
	reg := NewDefaultRegistry()
	refs := finding.SummaryRefs{Pod: "pod <p>", Container: "container <c> of pod <p>", Object: "<p>"}
	seen := map[string]finding.Kind{}
	for _, k := range reg.Kinds() {
		s, ok := reg.Summary(&finding.Finding{Kind: k, Pod: "p"}, refs)
		require.True(t, ok, "%s has no summary", k)
		assert.Contains(t, s, "<p>", k)
		assert.True(t, strings.HasSuffix(s, "."), "%s: %q is a sentence", k, s)
		assert.NotEqual(t, strings.ToLower(s[:1]), s[:1], "%s: %q starts with a capital", k, s)
		if other, dup := seen[s]; dup {
			t.Errorf("%s and %s say the same: %q", k, other, s)
		}
		seen[s] = k
	}
	_, ok := reg.Summary(&finding.Finding{Kind: "Unknown"}, refs)
	assert.False(t, ok)
}
