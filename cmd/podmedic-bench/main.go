// Command podmedic-bench prints the figures of issue 8 as one JSON object: the memory and cold
// start of `podmedic run` against a real kube-apiserver holding 20,000 Airflow worker pods, the
// throughput of observations through the bus and the rules, and (once the Slack notifier
// exists) notice latency and storm behaviour. `make bench` runs it through hack/bench.sh.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/podmedic/podmedic/internal/bench"
)

func main() { os.Exit(run()) }

func run() int {
	var o bench.Options
	flag.StringVar(&o.Bin, "podmedic", "", "the podmedic binary to measure (required)")
	flag.StringVar(&o.BinDir, "testbins", "", "directory of kube-apiserver and etcd (default: .cache/bin)")
	flag.IntVar(&o.Pods, "pods", 20000, "Airflow worker pods in the cluster")
	flag.IntVar(&o.Observations, "observations", 200000, "observations through the bus for the throughput figure")
	flag.IntVar(&o.Publishers, "publishers", 8, "publishing goroutines of the throughput figure")
	flag.IntVar(&o.Workers, "workers", 4, "rule handler workers of the throughput figure")
	flag.IntVar(&o.AdmissionRate, "admission-rate", 200, "pod creations per second of the admission figure")
	flag.IntVar(&o.Storm, "storm", 500, "pods OOM-killed at once for the latency and storm figures")
	memEnvs := flag.String("memory-env", "GOMEMLIMIT=40MiB,GOGC=50", "comma-separated environment settings to measure the memory with too (empty: none)")
	daemonArgs := flag.String("daemon-args", "", "arguments added to every `podmedic run`, space separated (e.g. \"--workers 16\")")
	skip := flag.String("skip", "", "comma-separated figures not to take: throughput, slack, admission")
	timeout := flag.Duration("timeout", 10*time.Minute, "bound on the whole run")
	flag.Parse()
	if o.Bin == "" {
		fmt.Fprintln(os.Stderr, "podmedic-bench: -podmedic is required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	o.Log = os.Stderr
	o.DaemonArgs = strings.Fields(*daemonArgs)
	if *skip != "" {
		o.Skip = strings.Split(*skip, ",")
	}
	if *memEnvs != "" {
		o.MemoryEnvs = strings.Split(*memEnvs, ",")
	}
	r := bench.Run(ctx, o)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, "podmedic-bench:", err)
		return 1
	}
	if len(r.Errors) > 0 {
		return 1
	}
	return 0
}
