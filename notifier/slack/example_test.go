package slack_test

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/notifier"
	"github.com/podmedic/podmedic/notifier/slack"
)

// kvStore stands for app's MessageStore on a NATS KV bucket.
type kvStore struct{ *slack.MemoryStore }

// Example shows how app wires the Slack notifier: config from rules.yaml's slack section,
// secrets from the environment, the message store on NATS KV, the actions stage as Decider,
// Run under the errgroup, and /slack/interactions when Socket Mode is off.
func Example() {
	var stage notifier.Decider // the actions stage, created after the notifier (it notifies through it)
	cfg := slack.Config{
		APIURL:         "https://slack.com/api/", // rules.yaml slack.api_url
		DefaultChannel: "#data-platform-alerts",  // slack.default_channel
		SocketMode:     true,                     // slack.socket_mode (default true)
		Approvers:      slack.Approvers{Users: []string{"U012AB3CD"}, Groups: []string{"S0614TZR7"}},
		Routes: []slack.Route{{Name: "oncall", Channel: "#data-oncall",
			Severities: []finding.Severity{finding.SeverityCritical, finding.SeverityWarning}}},
		Secrets: slack.Secrets{
			BotToken:      os.Getenv("SLACK_BOT_TOKEN"),
			AppToken:      os.Getenv("SLACK_APP_TOKEN"),
			SigningSecret: os.Getenv("SLACK_SIGNING_SECRET"),
		},
	}
	n, err := slack.New(cfg,
		slack.WithLogger(zap.NewNop()),
		slack.WithRegisterer(prometheus.NewRegistry()),
		slack.WithMessageStore(kvStore{slack.NewMemoryStore()}),
	)
	if err != nil {
		return // a config error: report it and exit 1
	}
	ctx := context.Background()
	if err := n.Check(ctx); err != nil {
		return // the bot token does not work
	}
	g, ctx := errgroup.WithContext(ctx)
	// Clicks on Approve/Deny are decided by the actions stage.
	decider := notifier.DeciderFunc(func(ctx context.Context, id, user string, approve bool) (*finding.Proposal, error) {
		return stage.Decide(ctx, id, user, approve)
	})
	g.Go(func() error { return n.Run(ctx, decider) })
	if !cfg.SocketMode {
		mux := http.NewServeMux()
		mux.Handle("POST /slack/interactions", n.InteractionHandler())
	}
	// At shutdown, give undelivered notices a moment before Run's context ends.
	flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.Flush(flush)
}
