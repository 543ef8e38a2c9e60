package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/rules"
)

func newCheckCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "check [--config] rules.yaml",
		Short: "Validate a rules.yaml; print every problem as FILE:LINE:COL: field.path: message",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if configPath != "" && configPath != args[0] {
					return errors.New("give the file either as --config or as an argument, not both")
				}
				configPath = args[0]
			}
			if configPath == "" {
				return errors.New("no file to check: podmedic check --config rules.yaml")
			}
			cfg, err := config.Load(configPath, rules.NewDefaultRegistry())
			if err != nil {
				var errs config.Errors
				if !errors.As(err, &errs) {
					return err
				}
				for _, e := range errs {
					fmt.Fprintln(cmd.ErrOrStderr(), e.Error())
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d problem(s)\n", configPath, len(errs))
				return exitError{code: 1}
			}
			enabled := 0
			for _, r := range cfg.Rules {
				if !r.Disabled {
					enabled++
				}
			}
			msg := fmt.Sprintf("%s: ok (%d rules, %d enabled", configPath, len(cfg.Rules), enabled)
			if len(cfg.Schedules) > 0 {
				on := 0
				for _, s := range cfg.Schedules {
					if !s.Disabled {
						on++
					}
				}
				msg += fmt.Sprintf("; %d schedules, %d enabled", len(cfg.Schedules), on)
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg+")")
			if a := cfg.Slack.Approvers; len(a.Users) == 0 && len(a.Groups) == 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: warning: slack.approvers is empty: approvals from Slack are refused until "+
					"slack.approvers.users or slack.approvers.groups is set (the local inbox is unaffected)\n", configPath)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "rules.yaml to validate")
	return cmd
}
