package main

import (
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/podmedic/podmedic/app"
	"github.com/podmedic/podmedic/internal/httpserve"
)

func newRunCmd(g *globalFlags) *cobra.Command {
	var (
		o          app.Options
		config     string
		namespaces []string
	)
	cmd := &cobra.Command{
		Use:   "run --config rules.yaml [--kubeconfig F] [--context C] [--nats-url URL] [--data-dir D] [--dry-run]",
		Short: "Run the daemon: watch the cluster, detect failures, act within bounds, notify",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			if o.Config, err = loadConfig(config); err != nil {
				return configError(err)
			}
			if len(namespaces) > 0 {
				o.Config.Namespaces.Include = namespaces
			}
			o.ConfigPath = config
			o.Logger, o.Out = log, cmd.OutOrStdout()
			log.Info("starting podmedic", zap.String("config", config), zap.Bool("embedded_nats", o.NATSURL == ""))
			return app.Run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&config, "config", "", "rules.yaml (default: the embedded default rules)")
	f.StringVar(&o.Kubeconfig, "kubeconfig", "", "path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	f.StringVar(&o.Context, "context", "", "kubeconfig context to use")
	f.StringSliceVarP(&namespaces, "namespace", "n", nil, "watch only these namespaces (repeatable or comma separated; overrides namespaces.include)")
	f.StringVar(&o.NATSURL, "nats-url", "", "external NATS server URL(s), comma separated (default: embedded server)")
	f.StringVar(&o.NATSListen, "nats-listen", "", "expose the embedded NATS server to clients here, e.g. 127.0.0.1:4222 (for `podmedic overrides`; empty: in-process only)")
	f.IntVar(&o.NATSReplicas, "nats-replicas", 1, "replicas of podmedic's streams and KV buckets on an external NATS cluster (3 for HA)")
	f.StringVar(&o.DataDir, "data-dir", "data", "directory of the embedded NATS server's JetStream store")
	f.BoolVar(&o.DryRun, "dry-run", false, "propose and report every action, execute none (overrides rules.yaml)")
	f.StringVar(&o.HTTPAddr, "http-addr", ":8080", "address of /healthz, /readyz and /metrics (empty disables)")
	f.DurationVar(&o.HTTPTimeouts.ReadHeader, "http-read-header-timeout", httpserve.DefaultReadHeaderTimeout, "time a client has to send a request's headers (HTTP server and inbox)")
	f.DurationVar(&o.HTTPTimeouts.Read, "http-read-timeout", httpserve.DefaultReadTimeout, "time a client has to send a whole request, body included")
	f.DurationVar(&o.HTTPTimeouts.Write, "http-write-timeout", httpserve.DefaultWriteTimeout, "time to write an answer")
	f.DurationVar(&o.HTTPTimeouts.Idle, "http-idle-timeout", httpserve.DefaultIdleTimeout, "time a kept-alive connection may wait for its next request")
	f.IntVar(&o.HTTPMaxInteractions, "http-max-interactions", httpserve.DefaultMaxInFlight, "Slack interaction requests served at once (over it: 503)")
	f.StringVar(&o.Webhook.Addr, "webhook-addr", "", "serve the admission webhook that applies memory overrides over HTTPS here, e.g. :8443 (empty: off; memory proposals of Airflow tasks stay advice)")
	f.StringVar(&o.Webhook.Secret, "webhook-secret", app.DefaultWebhookSecret, "Secret in podmedic's namespace that holds the webhook's CA and certificate (podmedic fills it)")
	f.StringVar(&o.Webhook.Config, "webhook-config", app.DefaultWebhookConfig, "MutatingWebhookConfiguration whose caBundle podmedic keeps")
	f.StringSliceVar(&o.Webhook.Hosts, "webhook-host", nil, "DNS name or IP the webhook's certificate is for (repeatable; default podmedic.<namespace>.svc)")
	f.StringVar(&o.InboxAddr, "inbox-addr", "127.0.0.1:8089", "loopback address of the local inbox, used when Slack is not configured (empty disables)")
	f.StringVar(&o.ConsoleFormat, "console-format", "text", "console notices: text or json")
	f.IntVar(&o.Workers, "workers", 16, "observations handled concurrently (their handling waits mostly on NATS and the API server)")
	f.DurationVar(&o.Resync, "resync", 0, "re-evaluate every pod and PVC this often (default 1m)")
	f.BoolVar(&o.PatchSparkApplications, "patch-spark-applications", false, "execute approved memory proposals for Spark drivers and executors as patches of their SparkApplication (needs RBAC to patch sparkapplications; off: they are advice)")
	f.DurationVar(&o.DiscoveryInterval, "discovery-interval", 0, "look for the SparkApplication CRD this often while it is not installed (default 1m)")
	return cmd
}
