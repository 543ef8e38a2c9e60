package bench

import (
	"context"
	"testing"
)

// BenchmarkPipeline is item 2 of issue 8 as a Go benchmark: observations through an embedded
// JetStream bus and the rule handler.
func BenchmarkPipeline(b *testing.B) {
	c, err := NewCorpus(1000, 50)
	if err != nil {
		b.Fatal(err)
	}
	e, err := DefaultEngine()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	t, err := Pipeline(context.Background(), b.TempDir(), c, e, max(b.N, 1000), 8, 4)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(t.PerSecond, "obs/s")
	b.ReportMetric(t.AllocsPerObs, "allocs/obs")
}

// BenchmarkRulesOnly is the consumer side without NATS: envelope decode, object decode, rules.
func BenchmarkRulesOnly(b *testing.B) {
	c, err := NewCorpus(1000, 50)
	if err != nil {
		b.Fatal(err)
	}
	e, err := DefaultEngine()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	t, err := RulesOnly(c, e, max(b.N, 1000), 2)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(t.PerSecond, "obs/s")
	b.ReportMetric(t.AllocsPerObs, "allocs/obs")
}
