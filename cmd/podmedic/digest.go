package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/podmedic/podmedic/app"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/rules"
	"github.com/podmedic/podmedic/schedule"
)

func newDigestCmd() *cobra.Command {
	var (
		since, natsURL, dataDir, configPath, cluster, output string
		top                                                  int
	)
	cmd := &cobra.Command{
		Use:   "digest --since 24h [--nats-url URL | --data-dir D] [--cluster NAME] [--output text|json]",
		Short: "Print the on-call digest of a window, read from the audit stream",
		Long: "Print the on-call digest (incidents by kind and namespace, the Airflow tasks that failed most, actions\n" +
			"taken and refused, pending approvals, proposals that expired, sweeps) of the last --since, read from\n" +
			"podmedic's audit stream: on the NATS server at --nats-url, or in the embedded store in --data-dir of\n" +
			"`podmedic run` (a copy of it is read, so podmedic may be running). Nothing is changed.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			window, err := config.ParseDuration(since)
			if err != nil || window.Duration <= 0 {
				return fmt.Errorf("--since: %q is not a duration such as 24h or 7d", since)
			}
			if output != "text" && output != "json" {
				return fmt.Errorf("--output: unknown format %q (want text or json)", output)
			}
			if natsURL != "" && cmd.Flags().Changed("data-dir") {
				return errors.New("give --nats-url or --data-dir, not both")
			}
			if configPath != "" {
				cfg, err := config.Load(configPath, rules.NewDefaultRegistry())
				if err != nil {
					return configError(err)
				}
				if !cmd.Flags().Changed("cluster") {
					cluster = cfg.Cluster
				}
			}
			if natsURL != "" {
				dataDir = ""
			}
			a, err := app.OpenAudit(cmd.Context(), natsURL, dataDir)
			if err != nil {
				return err
			}
			defer a.Close()
			g := &schedule.Digester{Source: a.Source}
			if a.Proposals != nil {
				g.Proposals = a.Proposals
			}
			d, err := g.Build(cmd.Context(), cluster, time.Now().UTC(), window.Duration, top)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(d)
			}
			_, err = fmt.Fprintf(out, "%s\n\n%s", d.Title(), d.Text())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "24h", "how far back the digest looks (e.g. 24h, 7d)")
	f.StringVar(&natsURL, "nats-url", "", "NATS server of podmedic's audit stream")
	f.StringVar(&dataDir, "data-dir", "data", "the embedded store of `podmedic run` (its --data-dir; read from a copy)")
	f.StringVar(&configPath, "config", "", "rules.yaml, for the cluster name")
	f.StringVar(&cluster, "cluster", "", "only this cluster's records (default: rules.yaml's cluster with --config, else all)")
	f.IntVar(&top, "top", config.DefaultDigestTop, "how many Airflow tasks, namespaces and proposals to list")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
