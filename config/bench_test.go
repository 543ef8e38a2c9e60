package config

import (
	"strings"
	"testing"
)

// BenchmarkParseAliasBomb: a 200 KB rules file whose aliases would expand into 2*10^8 nodes
// (every one of 20,000 rules is the first, with 10,000 excluded namespaces) is refused; the
// figures are the time and memory that costs.
func BenchmarkParseAliasBomb(b *testing.B) {
	var doc strings.Builder
	doc.WriteString("version: 1\nnamespaces:\n  exclude: &ns [&s kube-system" + strings.Repeat(", *s", 10_000-1) + "]\n")
	doc.WriteString("rules:\n  - &r {name: a, detect: {kind: OOMKilled}, match: {namespaces: {exclude: *ns}}}\n")
	doc.WriteString(strings.Repeat("  - *r\n", 20_000-1))
	data := []byte(doc.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bomb.yaml", data, testRegistry()); err == nil {
			b.Fatal("accepted")
		}
	}
}
