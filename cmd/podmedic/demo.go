package main

import (
	"fmt"

	"github.com/spf13/cobra"

	podmedic "github.com/podmedic/podmedic"
	"github.com/podmedic/podmedic/internal/demo"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var config, inbox string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Play a scripted night of Airflow/Spark incidents through the whole pipeline",
		Long: "demo runs podmedic's real pipeline (informers, embedded NATS JetStream, rules engine, notifier)\n" +
			"against a simulated cluster that plays a night of Airflow and Spark incidents, prints each\n" +
			"finding and proposal, then a summary. It needs nothing but this binary.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("log-level") {
				g.logLevel = "warn" // the console is the demo's output; logs only when something is wrong
			}
			log, err := g.logger(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			cfg, err := loadConfig(config)
			if err != nil {
				return configError(err)
			}
			name := config
			if name == "" {
				name = podmedic.DefaultRulesFile
			}
			_, err = demo.Run(cmd.Context(), demo.Options{Config: cfg, ConfigName: name, Out: cmd.OutOrStdout(), Logger: log,
				Inbox: inbox, InboxReady: func(addr string) {
					fmt.Fprintf(cmd.OutOrStdout(), "\nLocal inbox: http://%s/ (approve or deny the proposals there)\n", addr)
				}})
			return err
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "rules.yaml (default: the embedded default rules)")
	cmd.Flags().StringVar(&inbox, "inbox", "", "after the night, keep running and serve the local inbox here (e.g. 127.0.0.1:8089) to approve or deny the proposals")
	return cmd
}
