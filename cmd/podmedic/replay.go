package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/podmedic/podmedic/actions"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/rules"
	"github.com/podmedic/podmedic/watchers"
)

func newReplayCmd() *cobra.Command {
	var (
		config, now, output string
		inputs              []string
	)
	cmd := &cobra.Command{
		Use:   "replay --input DUMP.json [--input ...] [--config rules.yaml] [--now RFC3339] [--output json|text]",
		Short: "Run the detectors over `kubectl get pods,pvc,events -A -o json` dumps; never touches a cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(inputs) == 0 {
				return errors.New("no input: podmedic replay --input dump.json (from kubectl get pods,pvc,events -A -o json)")
			}
			if output != "json" && output != "text" {
				return fmt.Errorf("--output: unknown format %q (want json or text)", output)
			}
			cfg, err := loadConfig(config)
			if err != nil {
				return configError(err)
			}
			engine, err := rules.NewEngine(cfg, rules.NewDefaultRegistry(), actions.MemoryPlanner{})
			if err != nil {
				return err
			}
			// Trimmed as the daemon's informers trim: the same findings, a fraction of the memory.
			d := &rules.Dump{Trim: rules.Trimmer{Pod: watchers.TrimPod, PVC: watchers.TrimPVC, Event: watchers.TrimEvent}}
			for _, in := range inputs {
				if err := readDump(d, in); err != nil {
					return err
				}
			}
			at := d.Newest()
			if now != "" {
				if at, err = time.Parse(time.RFC3339, now); err != nil {
					return fmt.Errorf("--now: %q is not an RFC 3339 time (e.g. 2026-11-20T03:00:00Z)", now)
				}
			}
			found := rules.Replay(engine, d, at)
			w := cmd.OutOrStdout()
			for i := range found {
				if output == "json" {
					b, err := json.Marshal(&found[i])
					if err != nil {
						return err
					}
					fmt.Fprintf(w, "%s\n", b)
				} else {
					fmt.Fprintln(w, notifier.RenderText(&found[i]))
				}
			}
			if output == "text" {
				fmt.Fprintf(w, "%d finding(s) in %d pods, %d PVCs, %d events at %s\n", len(found), len(d.Pods), len(d.PVCs),
					len(d.Events), at.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "", "rules.yaml (default: the embedded default rules)")
	cmd.Flags().StringArrayVar(&inputs, "input", nil, "dump file from kubectl get pods,pvc,events -A -o json (repeatable; - for stdin)")
	cmd.Flags().StringVar(&now, "now", "", "evaluate at this time (RFC 3339); default: the newest timestamp in the dumps")
	cmd.Flags().StringVar(&output, "output", "json", "output format: json (one finding per line) or text")
	return cmd
}

func readDump(d *rules.Dump, path string) error {
	if path == "-" {
		if err := d.ReadDump(os.Stdin); err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := d.ReadDump(f); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
