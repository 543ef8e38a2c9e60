package app

import (
	"context"
	"errors"
	"fmt"

	slackapi "github.com/slack-go/slack"

	"net"
	"net/http"
	"os"
	"os/user"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/podmedic/podmedic/bus"
	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/notifier/inbox"
	"github.com/podmedic/podmedic/notifier/slack"
	"github.com/podmedic/podmedic/rules"
)

// BucketSlackMessages maps proposal ids to the Slack message that shows them, so a decision
// updates the right message after a restart or on another replica.
const BucketSlackMessages = "podmedic-slack-messages"

// notifiers is the notification side of podmedic: the console always, plus Slack when a bot
// token is configured; without Slack, proposals are decided in the local inbox.
type notifiers struct {
	chain notifier.Notifier
	slack *slack.Notifier
	// posting leases the pending proposals on their way to Slack (see slack.Posting).
	posting *slack.Posting
}

// proposals is what decides proposals and lists them: the actions stage. It notifies through
// the notifiers' chain, so it is created after them and handed to run.
type proposals interface {
	notifier.Decider
	notifier.ProposalLister
}

// newNotifiers builds the console (o.Notifier replaces it) and, when SLACK_BOT_TOKEN or
// SLACK_BOT_TOKEN_FILE is set, the Slack notifier with its message store on NATS KV.
func newNotifiers(ctx context.Context, o Options, cfg *config.Config, detectors *rules.Registry, b *bus.Bus, log *zap.Logger, reg prometheus.Registerer) (*notifiers, error) {
	ns := &notifiers{}
	console := o.Notifier
	if console == nil {
		out := o.Out
		if out == nil {
			out = os.Stdout
		}
		format := o.ConsoleFormat
		if format == "" {
			format = notifier.FormatText
		}
		c, err := notifier.NewConsole(out, format)
		if err != nil {
			return nil, err
		}
		console = c
	}
	ns.chain = console
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	bot, err := secret(getenv, "SLACK_BOT_TOKEN")
	if err != nil {
		return nil, err
	}
	if bot == "" {
		return ns, nil
	}
	appToken, err := secret(getenv, "SLACK_APP_TOKEN")
	if err != nil {
		return nil, err
	}
	signing, err := secret(getenv, "SLACK_SIGNING_SECRET")
	if err != nil {
		return nil, err
	}
	sc := slack.Config{
		APIURL: cfg.Slack.APIURL, DefaultChannel: cfg.Slack.DefaultChannel,
		SocketMode: cfg.Slack.SocketMode == nil || *cfg.Slack.SocketMode,
		Approvers:  cfg.Slack.Approvers, TeamIDs: cfg.Slack.TeamIDs, Routes: cfg.Slack.Routes,
		Secrets: slack.Secrets{BotToken: bot, AppToken: appToken, SigningSecret: signing},
	}
	kv, err := slackMessages(ctx, b, o.NATSReplicas, cfg.Proposals.TTL.Duration)
	if err != nil {
		return nil, err
	}
	store := &slack.KVMessageStore{KV: kv}
	sn, err := slack.New(sc, slack.WithLogger(log.Named("slack")), slack.WithRegisterer(reg), slack.WithSummarizer(detectors), slack.WithReplayClaims(b),
		slack.WithMessageStore(store))
	if err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	if err := sn.Check(ctx); err != nil {
		if isAuthError(err) {
			return nil, fmt.Errorf("%w (check SLACK_BOT_TOKEN)", err)
		}
		// Slack unreachable: keep detecting; notices queue and are retried until it answers.
		log.Warn("Slack does not answer yet; notices will be retried", zap.Error(err))
	}
	ns.slack = sn
	ns.posting = slack.NewPosting(sn, b, store, log.Named("slack"))
	store.OnPut = ns.posting.Posted
	ns.chain = notifier.Fanout{console, ns.posting}
	return ns, nil
}

// isAuthError reports whether Slack refused the bot token itself (as opposed to being
// unreachable): auth.test answers ok=false with one of these error codes.
func isAuthError(err error) bool {
	var se slackapi.SlackErrorResponse
	if !errors.As(err, &se) {
		return false
	}
	switch se.Err {
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired":
		return true
	}
	return false
}

// run starts what the notifiers need under g: Slack's senders and Socket Mode (stopped only
// after a last flush, so notices accepted during shutdown still go out), or the inbox; both
// take decisions to ps.
func (ns *notifiers) run(gctx context.Context, g *errgroup.Group, o Options, ps proposals, log *zap.Logger) error {
	if ns.slack != nil {
		sctx, stop := context.WithCancel(context.WithoutCancel(gctx))
		g.Go(func() error { return ns.slack.Run(sctx, ps) })
		g.Go(func() error { ns.posting.Run(gctx, ps); return nil })
		g.Go(func() error {
			<-gctx.Done()
			fctx, cancel := context.WithTimeout(sctx, 5*time.Second)
			defer cancel()
			if err := ns.slack.Flush(fctx); err != nil {
				log.Warn("notices not yet in Slack at shutdown", zap.Int("pending", ns.slack.Pending()), zap.Error(err))
			}
			stop()
			return nil
		})
		return nil
	}
	if o.InboxAddr == "" {
		return nil
	}
	name := "local"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	srv, err := inbox.New(inbox.Options{Lister: ps, Decider: ps, User: name,
		Timeouts: o.HTTPTimeouts, Logger: log.Named("inbox")})
	if err != nil {
		return err
	}
	ready := make(chan string, 1)
	g.Go(func() error {
		return srv.Serve(gctx, o.InboxAddr, func(a net.Addr) { ready <- a.String() })
	})
	select {
	case addr := <-ready:
		log.Info("local inbox: approve or deny proposals at http://"+addr+"/", zap.String("addr", addr))
		if o.InboxReady != nil {
			o.InboxReady(addr)
		}
	case <-time.After(5 * time.Second):
	}
	return nil
}

// interactions returns the /slack/interactions handler when Slack runs without Socket Mode.
func (ns *notifiers) interactions(cfg *config.Config) http.Handler {
	if ns.slack == nil || cfg.Slack.SocketMode == nil || *cfg.Slack.SocketMode {
		return nil
	}
	return ns.slack.InteractionHandler()
}

// slackMessages creates (or opens) the bucket of the Slack message of each proposal.
func slackMessages(ctx context.Context, b *bus.Bus, replicas int, ttl time.Duration) (jetstream.KeyValue, error) {
	if replicas <= 0 {
		replicas = 1
	}
	// Keep references well past a proposal's life: a late decision still updates its message.
	keep := max(7*24*time.Hour, 4*ttl)
	kv, err := b.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketSlackMessages, Description: "Slack message (channel, ts) of each proposal",
		History: 1, TTL: keep, Storage: jetstream.FileStorage, Replicas: replicas, MaxBytes: 64 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("create KV bucket %s: %w", BucketSlackMessages, err)
	}
	return kv, nil
}
