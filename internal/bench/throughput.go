package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/audit"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/internal/bench/podgen"
	"github.com/podmedic/podmedic/rules"
	"github.com/podmedic/podmedic/watchers"
)

// Throughput is the figure of one pipeline run.
type Throughput struct {
	Observations int     `json:"observations"`
	Seconds      float64 `json:"seconds"`
	PerSecond    float64 `json:"obs_per_s"`
	// AllocsPerObs and BytesPerObs are the heap allocations of the whole process (publishers,
	// embedded NATS server, consumer, rules) divided by the observations.
	AllocsPerObs float64 `json:"allocs_per_obs"`
	BytesPerObs  float64 `json:"bytes_per_obs"`
	Publishers   int     `json:"publishers,omitempty"`
	// Batch is how many observations a publisher sends per round trip (PublishObservations, as
	// the watchers' resync passes do); 0: one at a time (PublishObservation, as their change
	// queue does).
	Batch    int   `json:"batch,omitempty"`
	Workers  int   `json:"workers"`
	Findings int64 `json:"findings"`
}

// Corpus is a set of distinct realistic observations' objects: trimmed Airflow worker pods as
// the watchers publish them, one in failEvery OOM-killed.
type Corpus struct {
	Pods [][]byte
	View *rules.StaticView
}

// NewCorpus builds n distinct trimmed pod objects.
func NewCorpus(n, failEvery int) (*Corpus, error) {
	c := &Corpus{Pods: make([][]byte, n)}
	var pods []*corev1.Pod
	for i := range n {
		p := watchers.TrimPod(podgen.Stored("airflow", i, failEvery > 0 && i%failEvery == 0))
		raw, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		c.Pods[i] = raw
		pods = append(pods, p)
	}
	c.View = rules.NewStaticView(pods, nil, nil)
	return c, nil
}

// Observation returns the i-th observation of a run: the corpus's pods in turn, each a new
// change (uid and resourceVersion make its message id unique).
func (c *Corpus) Observation(i int) *bus.Observation {
	k := i % len(c.Pods)
	return &bus.Observation{
		Version: bus.EnvelopeVersion, Cluster: "bench", Type: bus.Updated, Kind: bus.KindPod,
		Namespace: "airflow", Name: podgen.Name(k), UID: fmt.Sprintf("uid-%d", k),
		ResourceVersion: fmt.Sprint(1000000 + i), ObservedAt: podgen.Epoch, Object: c.Pods[k],
	}
}

// DefaultEngine is the engine of the embedded default rules.yaml.
func DefaultEngine() (*rules.Engine, error) {
	reg := rules.NewDefaultRegistry()
	cfg, err := config.Parse(podmedic.DefaultRulesFile, podmedic.DefaultRules(), reg)
	if err != nil {
		return nil, err
	}
	return rules.NewEngine(cfg, reg, actions.MemoryPlanner{})
}

// Store is what the rule handler needs to report a finding once (the bus, or a stand-in).
type Store interface {
	Claim(ctx context.Context, key string, ttl time.Duration) (bool, error)
	PublishJSON(ctx context.Context, subject, msgID string, v any) error
}

// Handler is the daemon's rule handler for pod observations (app's pipeline.handle, which is
// not exported): decode the object, evaluate the rules, claim each finding's key, record it on
// the audit stream. Notification is left out (the console writes one line per finding).
func Handler(e *rules.Engine, view rules.View, store Store, now time.Time, findings *atomic.Int64) bus.Handler {
	return func(ctx context.Context, o *bus.Observation) error {
		if o.Kind != bus.KindPod || o.Type == bus.Deleted {
			return nil
		}
		pod, err := rules.DecodePod(o.Object)
		if err != nil {
			return fmt.Errorf("%w: %v", bus.ErrPermanent, err)
		}
		for _, f := range e.EvaluatePod(pod, view, now) {
			key := f.Key()
			won, err := store.Claim(ctx, "finding."+key, 7*24*time.Hour)
			if err != nil {
				return err
			}
			if !won {
				continue
			}
			if err := store.PublishJSON(ctx, audit.FindingSubject("bench", f.Kind), key, &f); err != nil {
				return err
			}
			findings.Add(1)
		}
		return nil
	}
}

// RulesOnly runs the rule handler's work without NATS on workers goroutines: decode the
// envelope as a consumer does, decode the object, evaluate. Findings are counted, not claimed.
func RulesOnly(c *Corpus, e *rules.Engine, n, workers int) (Throughput, error) {
	envelopes := make([][]byte, len(c.Pods))
	for i := range envelopes {
		data, err := c.Observation(i).Encode()
		if err != nil {
			return Throughput{}, err
		}
		envelopes[i] = data
	}
	var found atomic.Int64
	before := memStats()
	start := time.Now()
	err := eachIndex(n, workers, func(i int) error {
		o, err := bus.DecodeObservation(envelopes[i%len(envelopes)])
		if err != nil {
			return err
		}
		pod, err := rules.DecodePod(o.Object)
		if err != nil {
			return err
		}
		found.Add(int64(len(e.EvaluatePod(pod, c.View, podgen.Epoch))))
		return nil
	})
	elapsed := time.Since(start)
	after := memStats()
	return Throughput{Observations: n, Seconds: elapsed.Seconds(), PerSecond: float64(n) / elapsed.Seconds(),
		AllocsPerObs: float64(after.Mallocs-before.Mallocs) / float64(n),
		BytesPerObs:  float64(after.TotalAlloc-before.TotalAlloc) / float64(n),
		Workers:      workers, Findings: found.Load()}, err
}

// Pipeline publishes n observations with publishers goroutines through an embedded NATS
// JetStream bus in dataDir (as the watchers' workers do: one at a time, or batch at a time)
// and consumes them with the rule handler on workers goroutines (as the daemon does), and
// reports the rate from the first publish to the last ack.
func Pipeline(ctx context.Context, dataDir string, c *Corpus, e *rules.Engine, n, publishers, batch, workers int) (Throughput, error) {
	b, err := bus.Open(ctx, bus.Options{DataDir: dataDir, Name: "podmedic-bench", Metrics: bus.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		return Throughput{}, err
	}
	defer b.Close()

	var handled, findings atomic.Int64
	all := make(chan struct{})
	h := Handler(e, c.View, b, podgen.Epoch, &findings)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	consumed := make(chan error, 1)
	go func() {
		consumed <- b.Consume(cctx, workers, func(ctx context.Context, o *bus.Observation) error {
			err := h(ctx, o)
			if err == nil && handled.Add(1) == int64(n) {
				close(all)
			}
			return err
		})
	}()

	before := memStats()
	start := time.Now()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		pubErr   error
		pubOnce  sync.Once
		deadline = time.After(3 * time.Minute)
	)
	step := max(batch, 1)
	for range publishers {
		wg.Go(func() {
			obs := make([]*bus.Observation, 0, step)
			for {
				from := int(next.Add(int64(step))) - step
				if from >= n {
					return
				}
				var err error
				if batch == 0 {
					err = b.PublishObservation(ctx, c.Observation(from))
				} else {
					obs = obs[:0]
					for i := from; i < min(from+step, n); i++ {
						obs = append(obs, c.Observation(i))
					}
					err = errors.Join(b.PublishObservations(ctx, obs)...)
				}
				if err != nil {
					pubOnce.Do(func() { pubErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	if pubErr != nil {
		return Throughput{}, pubErr
	}
	select {
	case <-all:
	case <-deadline:
		return Throughput{}, fmt.Errorf("pipeline: %d of %d observations handled after 3m", handled.Load(), n)
	case <-ctx.Done():
		return Throughput{}, ctx.Err()
	}
	elapsed := time.Since(start)
	after := memStats()
	cancel()
	if err := <-consumed; err != nil {
		return Throughput{}, err
	}
	return Throughput{Observations: n, Seconds: elapsed.Seconds(), PerSecond: float64(n) / elapsed.Seconds(),
		AllocsPerObs: float64(after.Mallocs-before.Mallocs) / float64(n),
		BytesPerObs:  float64(after.TotalAlloc-before.TotalAlloc) / float64(n),
		Publishers:   publishers, Batch: batch, Workers: workers, Findings: findings.Load()}, nil
}

func memStats() runtime.MemStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

var _ Store = (*bus.Bus)(nil)
