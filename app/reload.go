package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"reflect"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/rules"
)

// reloader re-reads rules.yaml on SIGHUP and when the file's content changes (polled: a
// ConfigMap volume swaps a symlink, which file-event watchers miss). A valid file takes effect
// at once; an invalid one is reported with every problem and the running rules stay.
type reloader struct {
	path     string
	reg      *rules.Registry
	interval time.Duration
	log      *zap.Logger
	// apply installs a new, valid configuration.
	apply func(*config.Config) error
	// current is the configuration in force (to tell which changes need a restart).
	current *config.Config
	last    []byte

	reloads *prometheus.CounterVec
	success prometheus.Gauge
}

func newReloader(path string, cfg *config.Config, reg *rules.Registry, apply func(*config.Config) error,
	log *zap.Logger, metrics prometheus.Registerer) (*reloader, error) {
	data, err := config.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &reloader{path: path, reg: reg, interval: 2 * time.Second, log: log, apply: apply, current: cfg, last: data,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "podmedic_config_reloads_total",
			Help: "Reloads of rules.yaml, by result (success or failure).",
		}, []string{"result"}),
		success: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "podmedic_config_last_reload_successful",
			Help: "1 if the last reload of rules.yaml succeeded (or none was tried), 0 if the running rules are older than the file.",
		}),
	}
	r.success.Set(1)
	r.reloads.WithLabelValues("success")
	r.reloads.WithLabelValues("failure")
	metrics.MustRegister(r.reloads, r.success)
	return r, nil
}

// Run reloads until ctx is done.
func (r *reloader) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
			r.reload(true)
		case <-t.C:
			r.reload(false)
		}
	}
}

// reload loads the file when forced (SIGHUP) or when its content changed, and reports.
func (r *reloader) reload(force bool) {
	data, err := config.ReadFile(r.path)
	if err != nil {
		r.fail(fmt.Errorf("read %s: %w", r.path, err))
		return
	}
	if !force && bytes.Equal(data, r.last) {
		return
	}
	r.last = data
	cfg, err := config.Parse(r.path, data, r.reg)
	if err != nil {
		r.fail(err)
		return
	}
	if fixed := restartOnly(r.current, cfg); len(fixed) > 0 {
		r.log.Warn("rules.yaml changed settings that take effect only after a restart; they keep their running values",
			zap.Strings("fields", fixed))
		keepRestartOnly(r.current, cfg)
	}
	if err := r.apply(cfg); err != nil {
		r.fail(err)
		return
	}
	r.current = cfg
	r.reloads.WithLabelValues("success").Inc()
	r.success.Set(1)
	r.log.Info("rules.yaml reloaded", zap.String("file", r.path), zap.Int("rules", len(cfg.Rules)))
}

func (r *reloader) fail(err error) {
	r.reloads.WithLabelValues("failure").Inc()
	r.success.Set(0)
	var errs config.Errors
	if errors.As(err, &errs) {
		lines := make([]string, len(errs))
		for i, e := range errs {
			lines[i] = e.Error()
		}
		r.log.Error("rules.yaml is invalid; the running rules stay in force", zap.Strings("problems", lines))
		return
	}
	r.log.Error("reloading rules.yaml failed; the running rules stay in force", zap.Error(err))
}

// restartOnly lists the settings that a running podmedic cannot change: the cluster name
// (message ids), the watched namespaces (informers) and the embedded NATS limits.
func restartOnly(old, new *config.Config) []string {
	var out []string
	if old.Cluster != new.Cluster {
		out = append(out, "cluster")
	}
	if !reflect.DeepEqual(old.Namespaces, new.Namespaces) {
		out = append(out, "namespaces")
	}
	if old.NATS.MaxMemory.Cmp(new.NATS.MaxMemory.Quantity) != 0 || old.NATS.MaxStore.Cmp(new.NATS.MaxStore.Quantity) != 0 {
		out = append(out, "nats")
	}
	if old.DryRun != new.DryRun {
		out = append(out, "dry_run") // the executor is chosen once, at start
	}
	if !reflect.DeepEqual(old.Airflow, new.Airflow) {
		out = append(out, "airflow")
	}
	if !reflect.DeepEqual(old.Slack, new.Slack) {
		out = append(out, "slack")
	}
	return out
}

func keepRestartOnly(old, new *config.Config) {
	new.Cluster, new.Namespaces, new.NATS = old.Cluster, old.Namespaces, old.NATS
	new.DryRun, new.Airflow, new.Slack = old.DryRun, old.Airflow, old.Slack
}
