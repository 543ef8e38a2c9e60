package bus

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPublishConsume publishes b.N observations carrying a ~1 KB object (4 publishers)
// while 4 workers consume them with an acking handler, and reports end-to-end msgs/s.
func BenchmarkPublishConsume(b *testing.B) {
	bus := testBus(b, b.TempDir(), func(o *Options) { o.Logger = nil })
	object := json.RawMessage(`{"metadata":{"name":"etl-load","annotations":{"pad":"` + strings.Repeat("x", 1000) + `"}}}`)

	var handled atomic.Int64
	all := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	consumed := make(chan error, 1)
	go func() {
		consumed <- bus.Consume(ctx, 4, func(context.Context, *Observation) error {
			if handled.Add(1) == int64(b.N) {
				close(all)
			}
			return nil
		})
	}()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := p; i < b.N; i += 4 {
				o := podObs(i)
				o.Object = object
				if err := bus.PublishObservation(ctx, o); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		b.Fatalf("handled %d of %d", handled.Load(), b.N)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")

	cancel()
	if err := <-consumed; err != nil {
		b.Fatal(err)
	}
}
