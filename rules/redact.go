package rules

import (
	"regexp"
	"strings"
)

// Redacted replaces what a redaction pattern matched.
const Redacted = "[redacted]"

// defaultRedactions are the secret shapes every evidence line is cleaned of before it leaves
// podmedic (Slack, the audit trail, Events): container logs and termination messages are
// written by anyone's code and often print their configuration.
var defaultRedactions = []struct {
	re   *regexp.Regexp
	with string
}{
	// password=..., "api_key": "...", SECRET_TOKEN: ... (the key is kept, the value goes).
	{regexp.MustCompile(`(?i)([\w.-]*(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credentials?)[\w.-]*"?\s*[=:]\s*)("[^"]*"|'[^']*'|[^\s,;&"']+)`), "${1}" + Redacted},
	// Authorization: Bearer eyJ..., Basic dXNlcjpwYXNz.
	{regexp.MustCompile(`(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}`), "${1} " + Redacted},
	// AWS access key ids.
	{regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`), Redacted},
	// URLs with user information: scheme://user:password@host.
	{regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@`), "${1}" + Redacted + "@"},
	// A private key inside one text (a termination message).
	{regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`), Redacted + " private key"},
}

// Redactor cleans evidence of secrets: the default shapes (key=value for passwords, tokens,
// secrets and keys; bearer and basic credentials; AWS access key ids; URLs with user
// information; private key blocks) and rules.yaml's evidence.redact patterns. The zero value
// applies the defaults only.
type Redactor struct {
	extra []*regexp.Regexp
}

// NewRedactor returns a Redactor with extra patterns (RE2 syntax, validated by config).
func NewRedactor(patterns []string) (*Redactor, error) {
	r := &Redactor{}
	for _, p := range patterns {
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, err
		}
		r.extra = append(r.extra, re)
	}
	return r, nil
}

// Redact returns s with every secret replaced.
func (r *Redactor) Redact(s string) string {
	for _, d := range defaultRedactions {
		s = d.re.ReplaceAllString(s, d.with)
	}
	if r != nil {
		for _, re := range r.extra {
			s = re.ReplaceAllString(s, Redacted)
		}
	}
	return s
}

// RedactLines redacts each line, and every line of a private key block that spans lines (from
// its BEGIN line to its END line, or to the last line).
func (r *Redactor) RedactLines(lines []string) []string {
	out := make([]string, len(lines))
	inKey := false
	for i, l := range lines {
		switch {
		case inKey:
			out[i] = Redacted
			inKey = !strings.Contains(l, "PRIVATE KEY-----") || !strings.Contains(l, "-----END")
		case strings.Contains(l, "-----BEGIN") && strings.Contains(l, "PRIVATE KEY-----") && !strings.Contains(l, "-----END"):
			out[i] = Redacted + " private key"
			inKey = true
		default:
			out[i] = r.Redact(l)
		}
	}
	return out
}
