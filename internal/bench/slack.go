package bench

// slackPending returns why the latency and storm figures cannot be taken yet, or "" once
// podmedic has a Slack notifier to measure through.
func slackPending() string {
	return "pending: podmedic has no Slack notifier yet (notifier/slack is being built); the latency and storm figures are measured through it against internal/testenv/slackenv once app uses it when SLACK_BOT_TOKEN is set"
}
