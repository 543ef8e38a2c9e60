package rules_test

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/bench/podgen"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/rules"
	"github.com/podmedic/podmedic/watchers"
)

// benchStore is an in-memory Store: claims are won once.
type benchStore struct {
	mu     sync.Mutex
	claims map[string]bool
}

func (s *benchStore) ClaimFor(_ context.Context, key, _ string, _ time.Duration) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claims[key] {
		return false, nil
	}
	s.claims[key] = true
	return true, nil
}
func (s *benchStore) Settle(context.Context, string, string, time.Duration) error { return nil }
func (s *benchStore) Release(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.claims, key)
	return nil
}
func (s *benchStore) PublishJSON(context.Context, string, string, any) error { return nil }

// BenchmarkHandle is the rule handler on one pod observation as the watchers publish it (a
// trimmed Airflow worker, envelope decoded): decode, evaluate the default rules, and for the
// OOM-killed pod claim and report the finding (to a console writing nowhere). The OOM-killed
// pod's finding is claimed once; later iterations are repeats, as on a resync.
func BenchmarkHandle(b *testing.B) {
	cfg, err := config.Parse(podmedic.DefaultRulesFile, podmedic.DefaultRules(), rules.NewDefaultRegistry())
	if err != nil {
		b.Fatal(err)
	}
	e, err := rules.NewEngine(cfg, rules.NewDefaultRegistry(), actions.MemoryPlanner{})
	if err != nil {
		b.Fatal(err)
	}
	console, err := notifier.NewConsole(io.Discard, notifier.FormatJSON)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		oom  bool
	}{{"healthy", false}, {"oomkilled", true}} {
		b.Run(c.name, func(b *testing.B) {
			pod := watchers.TrimPod(podgen.Stored("airflow", 7, c.oom))
			raw, err := json.Marshal(pod)
			if err != nil {
				b.Fatal(err)
			}
			data, err := (&bus.Observation{Version: bus.EnvelopeVersion, Cluster: "bench", Type: bus.Updated, Kind: bus.KindPod,
				Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), ResourceVersion: pod.ResourceVersion,
				ObservedAt: podgen.Epoch, Object: raw}).Encode()
			if err != nil {
				b.Fatal(err)
			}
			live := rules.NewLive(e, rules.NewStaticView([]*corev1.Pod{pod}, nil, nil), func() time.Time { return podgen.Epoch })
			stage := rules.StageFunc(func(ctx context.Context, f *finding.Finding) error {
				return console.Notify(ctx, &finding.Notice{Type: finding.NoticeFinding, Finding: f})
			})
			p := rules.NewHandler(rules.HandlerOptions{Live: live, Claims: &benchStore{claims: map[string]bool{}}, Stage: stage,
				Logger: zap.NewNop(), Registerer: prometheus.NewRegistry()})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				o, err := bus.DecodeObservation(data)
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Handle(ctx, o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
