package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/podmedic/podmedic/overrides"
)

// defaultNATSURL is where `podmedic run --nats-listen 127.0.0.1:4222` (the chart's setting)
// exposes its embedded server: `kubectl exec` into the pod and run the command there.
const defaultNATSURL = "nats://127.0.0.1:4222"

func newOverridesCmd() *cobra.Command {
	var natsURL string
	cmd := &cobra.Command{
		Use:   "overrides list|revoke",
		Short: "List or revoke memory overrides (approved memory raises of Airflow tasks)",
		Long: "Memory overrides live in podmedic's NATS KV bucket " + overrides.Bucket + ". These commands talk to the\n" +
			"running podmedic's NATS: its embedded server when run with --nats-listen (the chart exposes it on\n" +
			"127.0.0.1:4222 inside the pod: kubectl exec deploy/podmedic -- podmedic overrides list), or the\n" +
			"external NATS given to it with --nats-url.",
	}
	cmd.PersistentFlags().StringVar(&natsURL, "nats-url", defaultNATSURL, "NATS server of the running podmedic")

	var output string
	list := &cobra.Command{
		Use:   "list [--output text|json]",
		Short: "List the overrides: active, expired and revoked",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("--output: unknown format %q (want text or json)", output)
			}
			return withStore(cmd.Context(), natsURL, func(ctx context.Context, s *overrides.Store) error {
				all, err := s.List(ctx)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if output == "json" {
					if all == nil {
						all = []overrides.Override{}
					}
					enc := json.NewEncoder(out)
					enc.SetIndent("", "  ")
					return enc.Encode(all)
				}
				now := time.Now()
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTATE\tNAMESPACE\tTASK\tCONTAINER\tLIMIT\tREQUEST\tEXPIRES\tPROPOSAL\tAPPROVED BY")
				for _, o := range all {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s.%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.State(now), o.Task.Namespace, o.Task.DagID,
						o.Task.TaskID, o.Task.Column(), o.Limit, dash(o.Request), o.ExpiresAt.UTC().Format(time.RFC3339), o.ProposalID, o.ApprovedBy)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				_, err = fmt.Fprintf(out, "%d override(s)\n", len(all))
				return err
			})
		},
	}
	list.Flags().StringVar(&output, "output", "text", "text or json")

	var by string
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "End an override now: pods created from then on get the memory their task asks for",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if by == "" {
				by = "cli"
				if u, err := user.Current(); err == nil && u.Username != "" {
					by = "cli:" + u.Username
				}
			}
			return withStore(cmd.Context(), natsURL, func(ctx context.Context, s *overrides.Store) error {
				o, err := s.Revoke(ctx, args[0], by)
				if errors.Is(err, overrides.ErrAudit) && o != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", err) // revoked; only the record is missing
					err = nil
				}
				if errors.Is(err, overrides.ErrNotFound) {
					return fmt.Errorf("%w (podmedic overrides list shows the ids)", err)
				}
				if err != nil {
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "override %s of %s.%s (%s) revoked by %s at %s\n", o.ID, o.Task.DagID,
					o.Task.TaskID, o.Task.Of(), o.RevokedBy, o.RevokedAt.UTC().Format(time.RFC3339))
				return err
			})
		},
	}
	revoke.Flags().StringVar(&by, "by", "", "who revokes (default: cli:<your user>)")
	cmd.AddCommand(list, revoke)
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// withStore connects to the running podmedic's NATS and opens the overrides bucket (which it
// does not create: no podmedic with overrides, nothing to list).
func withStore(ctx context.Context, url string, f func(context.Context, *overrides.Store) error) error {
	nc, err := nats.Connect(url, nats.Name("podmedic-overrides-cli"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect to podmedic's NATS at %s: %w (is podmedic running with --nats-listen?)", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, overrides.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("no overrides at %s: podmedic has not run with its webhook (--webhook-addr) there", url)
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", overrides.Bucket, err)
	}
	return f(ctx, overrides.NewStore(kv, nil).WithAudit(jsPublisher{js}))
}

// jsPublisher writes audit records with a plain JetStream context (the CLI opens no bus).
type jsPublisher struct{ js jetstream.JetStream }

func (p jsPublisher) PublishJSON(ctx context.Context, subject, msgID string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	_, err = p.js.Publish(ctx, subject, b, opts...)
	return err
}
