package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/podmedic/podmedic/internal/bench/podgen"
	"github.com/podmedic/podmedic/internal/testenv/kubeenv"
	"github.com/podmedic/podmedic/overrides"
)

// Admission is the admission figure: Airflow worker pods created at a steady rate through the
// real API server, into a namespace podmedic's webhook is not called for and into one it is
// (every pod there of the task with a memory override, so every one is raised).
type Admission struct {
	PodsPerSecond int `json:"pods_per_s"`
	// Pods created per phase; Mutated of the pods with the webhook got the override.
	Pods    int `json:"pods_per_phase"`
	Mutated int `json:"mutated"`
	// The API server's answer time to each create, without and with the webhook.
	WithoutP50ms float64 `json:"without_webhook_p50_ms"`
	WithoutP99ms float64 `json:"without_webhook_p99_ms"`
	WithP50ms    float64 `json:"with_webhook_p50_ms"`
	WithP99ms    float64 `json:"with_webhook_p99_ms"`
	AddedP99ms   float64 `json:"added_p99_ms"`
	TargetMs     float64 `json:"target_added_p99_ms"`
	// CPU seconds the podmedic process used during each phase (its informers, bus and rules
	// handle the pods of both; the webhook's calls only the second).
	PodmedicCPUWithout float64 `json:"podmedic_cpu_s_without"`
	PodmedicCPUWith    float64 `json:"podmedic_cpu_s_with"`
	// RSS of the podmedic process before the pods were created and after, once it handled them.
	RSSBeforeMB float64 `json:"rss_before_mb"`
	RSSAfterMB  float64 `json:"rss_after_mb"`
	Note        string  `json:"note"`
}

// admission takes the admission figure with a podmedic daemon serving the webhook.
func admission(ctx context.Context, o Options, env *kubeenv.Env, client kubernetes.Interface, dir string) (*Admission, error) {
	const own, plain, hooked, config = "podmedic-bench", "admission-plain", "admission-hooked", "podmedic-bench"
	for _, ns := range []string{own, plain, hooked} {
		if err := EnsureNamespace(ctx, client, ns); err != nil {
			return nil, err
		}
	}
	if _, err := client.CoreV1().Secrets(own).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "podmedic-webhook-tls"}}, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	natsAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	mwc := kubeenv.WebhookConfig(config, "https://"+addr+"/mutate/pods", hooked)
	if _, err := client.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mwc, metav1.CreateOptions{}); err != nil {
		return nil, err
	}
	d, err := StartDaemon(DaemonOptions{Bin: o.Bin, Kubeconfig: env.Kubeconfig, DataDir: dir, Env: []string{"POD_NAMESPACE=" + own},
		Args: append([]string{"--webhook-addr", addr, "--webhook-host", "127.0.0.1", "--webhook-config", config, "--nats-listen", natsAddr}, o.DaemonArgs...)})
	if err != nil {
		return nil, err
	}
	defer d.Stop()
	if _, err := d.WaitReady(ctx, 3*time.Minute); err != nil {
		return nil, err
	}
	if err := putOverride(ctx, natsAddr); err != nil {
		return nil, err
	}
	// Warm up (TLS connections, the caBundle and the cache): until a pod is raised.
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the webhook did not raise a pod within a minute\n%s", d.Log())
		}
		got, err := client.CoreV1().Pods(hooked).Create(ctx, overridden(hooked, 1_000_000+i), metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		if got.Annotations[overrides.AnnotationOverride] != "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	before, err := ProcMemory(d.Pid())
	if err != nil {
		return nil, err
	}

	const seconds = 10
	rate := o.AdmissionRate
	out := &Admission{PodsPerSecond: rate, Pods: rate * seconds, TargetMs: 5,
		Note: "answer time of each pod create at a steady rate (32 clients), the API server, etcd and podmedic on the same 2 cores; the webhook's own time is BenchmarkAdmit"}
	cpu := func() float64 {
		d, _ := ProcCPU(d.Pid())
		return d.Seconds()
	}
	c0 := cpu()
	without, _, err := paced(ctx, client, plain, rate, seconds)
	if err != nil {
		return nil, err
	}
	c1 := cpu()
	with, mutated, err := paced(ctx, client, hooked, rate, seconds)
	if err != nil {
		return nil, err
	}
	out.PodmedicCPUWithout, out.PodmedicCPUWith = c1-c0, cpu()-c1
	out.Mutated = mutated
	out.WithoutP50ms, out.WithoutP99ms = without.p(50), without.p(99)
	out.WithP50ms, out.WithP99ms = with.p(50), with.p(99)
	out.AddedP99ms = out.WithP99ms - out.WithoutP99ms
	handled := `podmedic_bus_handled_total{outcome="ack"}`
	base := d.Metrics(ctx)[handled]
	_ = d.WaitMetric(ctx, time.Minute, func(m map[string]float64) bool { return m[handled] >= base+float64(2*out.Pods)*0.9 })
	after, err := ProcMemory(d.Pid())
	if err != nil {
		return nil, err
	}
	out.RSSBeforeMB, out.RSSAfterMB = kib(before.RSSKiB), kib(after.RSSKiB)
	if mutated != out.Pods {
		return out, fmt.Errorf("the webhook raised %d of %d pods", mutated, out.Pods)
	}
	return out, nil
}

// paced creates rate pods a second for seconds into namespace from 32 clients and returns
// each create's answer time and how many pods came back with a memory override.
func paced(ctx context.Context, c kubernetes.Interface, namespace string, rate, seconds int) (millis, int, error) {
	n := rate * seconds
	interval := time.Second / time.Duration(rate)
	times := make(millis, n)
	var (
		mu      sync.Mutex
		mutated int
	)
	start := time.Now()
	err := eachIndex(n, 32, func(i int) error {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		t := time.Now()
		got, err := c.CoreV1().Pods(namespace).Create(ctx, overridden(namespace, i), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		times[i] = ms(time.Since(t))
		if got.Annotations[overrides.AnnotationOverride] != "" {
			mu.Lock()
			mutated++
			mu.Unlock()
		}
		return nil
	})
	return times, mutated, err
}

// overridden is the i-th worker pod of the task the bench's override raises.
func overridden(namespace string, i int) *corev1.Pod {
	p := podgen.AirflowWorker(namespace, i)
	p.ResourceVersion, p.UID = "", ""
	p.Labels["dag_id"], p.Labels["task_id"] = "bench_dag", "load"
	p.Annotations["dag_id"], p.Annotations["task_id"] = "bench_dag", "load"
	return p
}

// putOverride stores the override of bench_dag.load in the daemon's NATS, as an approval by
// another replica does.
func putOverride(ctx context.Context, natsAddr string) error {
	nc, err := nats.Connect("nats://" + natsAddr)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	kv, err := js.KeyValue(ctx, overrides.Bucket)
	if err != nil {
		return err
	}
	now := time.Now()
	// The default rules.yaml's cluster.
	tk := overrides.Task{Cluster: "default", Namespace: "admission-hooked", DagID: "bench_dag", TaskID: "load", Container: "base"}
	_, err = overrides.NewStore(kv, nil).Put(ctx, &overrides.Override{ID: tk.ID(), Task: tk, Limit: "3Gi", Request: "2Gi",
		ProposalID: "p-bench", ApprovedBy: "bench", CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)})
	if errors.Is(err, overrides.ErrAudit) {
		err = nil
	}
	return err
}
