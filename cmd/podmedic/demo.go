package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Play a scripted night of Airflow/Spark incidents through the whole pipeline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("demo: not built yet")
		},
	}
}
