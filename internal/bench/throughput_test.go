package bench

import (
	"context"
	"testing"

	"github.com/podmedic/podmedic/rules"
)

// corpusAndEngine are the observations and the rules the benchmarks handle.
func corpusAndEngine(b *testing.B) (*Corpus, *rules.Engine) {
	b.Helper()
	c, err := NewCorpus(1000, 50)
	if err != nil {
		b.Fatal(err)
	}
	e, err := DefaultEngine()
	if err != nil {
		b.Fatal(err)
	}
	return c, e
}

// BenchmarkPipeline is item 2 of issue 8 as a Go benchmark: observations through an embedded
// JetStream bus and the rule handler, published one at a time by 8 goroutines (the watchers'
// change queue) or 256 at a time by 2 (their resync passes).
func BenchmarkPipeline(b *testing.B) {
	c, e := corpusAndEngine(b)
	for _, m := range []struct {
		name              string
		publishers, batch int
	}{{"one-at-a-time", 8, 0}, {"batched", 2, 256}} {
		b.Run(m.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			t, err := Pipeline(context.Background(), b.TempDir(), c, e, max(b.N, 1000), m.publishers, m.batch, 4)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(t.PerSecond, "obs/s")
			b.ReportMetric(t.AllocsPerObs, "allocs/obs")
		})
	}
}

// BenchmarkRulesOnly is the consumer side without NATS: envelope decode, object decode, rules.
func BenchmarkRulesOnly(b *testing.B) {
	c, e := corpusAndEngine(b)
	b.ReportAllocs()
	b.ResetTimer()
	t, err := RulesOnly(c, e, max(b.N, 1000), 2)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(t.PerSecond, "obs/s")
	b.ReportMetric(t.AllocsPerObs, "allocs/obs")
}
