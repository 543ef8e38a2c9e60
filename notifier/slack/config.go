package slack

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/podmedic/podmedic/config"
	"github.com/podmedic/podmedic/finding"
)

// DefaultAPIURL is Slack's Web API.
const DefaultAPIURL = "https://slack.com/api/"

// Config connects a Notifier to a Slack workspace. app fills it from rules.yaml's slack
// section and the environment (secrets).
type Config struct {
	// APIURL of Slack's Web API, with a trailing slash. Default DefaultAPIURL.
	APIURL string
	// DefaultChannel receives notices no route claims. Required.
	DefaultChannel string
	// SocketMode receives interactions over Socket Mode (Secrets.AppToken required); otherwise
	// they arrive at InteractionHandler (Secrets.SigningSecret required).
	SocketMode bool
	// Approvers may approve or deny proposals; empty means nobody may (clicks are refused with
	// a message that says how to set them).
	Approvers Approvers
	// TeamIDs are the workspaces whose members may decide; empty: the bot token's own.
	TeamIDs []string
	// Routes map a finding's route name to a channel by severity and namespace.
	Routes []Route
	// Secrets are the tokens; they are never logged.
	Secrets Secrets
}

// Approvers and Route are rules.yaml's slack.approvers and slack.routes.
type (
	Approvers = config.Approvers
	Route     = config.Route
)

// Secrets are the Slack credentials. They print and marshal as "[redacted]".
type Secrets struct {
	// BotToken (xoxb-…) calls the Web API. Required.
	BotToken string `json:"-"`
	// AppToken (xapp-…) opens Socket Mode connections.
	AppToken string `json:"-"`
	// SigningSecret verifies POST /slack/interactions.
	SigningSecret string `json:"-"`
}

// String implements fmt.Stringer without revealing anything.
func (Secrets) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer without revealing anything.
func (Secrets) GoString() string { return "slack.Secrets{[redacted]}" }

// MarshalJSON hides the secrets from loggers that marshal values.
func (Secrets) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }

// Validate reports every problem of the config at once.
func (c *Config) Validate() error {
	var errs []error
	if c.DefaultChannel == "" {
		errs = append(errs, errors.New("slack: default channel is required"))
	}
	if c.Secrets.BotToken == "" {
		errs = append(errs, errors.New("slack: bot token is required (SLACK_BOT_TOKEN)"))
	}
	if c.SocketMode && c.Secrets.AppToken == "" {
		errs = append(errs, errors.New("slack: socket mode needs an app-level token (SLACK_APP_TOKEN)"))
	}
	if c.SocketMode && c.Secrets.AppToken != "" && !strings.HasPrefix(c.Secrets.AppToken, "xapp-") {
		errs = append(errs, errors.New("slack: the app-level token must start with xapp-"))
	}
	if !c.SocketMode && c.Secrets.SigningSecret == "" {
		errs = append(errs, errors.New("slack: HTTP interactions need the signing secret (SLACK_SIGNING_SECRET)"))
	}
	if c.APIURL != "" && !strings.HasSuffix(c.APIURL, "/") {
		errs = append(errs, fmt.Errorf("slack: api url %q must end with /", c.APIURL))
	}
	for i, r := range c.Routes {
		if r.Name == "" || r.Channel == "" {
			errs = append(errs, fmt.Errorf("slack: route %d needs a name and a channel", i))
		}
	}
	return errors.Join(errs...)
}

// ChannelFor is where a finding's notices go: the channel of the first route named f.Route
// whose severities and namespaces (when set) match f; else f.Route itself when it is a literal
// channel ("#name", or a channel id such as C0123ABCD: a rule's fixed notify.channel); else
// DefaultChannel.
func (c *Config) ChannelFor(f *finding.Finding) string {
	if f == nil || f.Route == "" {
		return c.DefaultChannel
	}
	for _, r := range c.Routes {
		if r.Name != f.Route {
			continue
		}
		if len(r.Severities) > 0 && !slices.Contains(r.Severities, f.Severity) {
			continue
		}
		if len(r.Namespaces) > 0 && !slices.Contains(r.Namespaces, f.Namespace) {
			continue
		}
		return r.Channel
	}
	if IsChannel(f.Route) {
		return f.Route
	}
	return c.DefaultChannel
}

// ChannelForRoute is where a report routed to route goes (a scheduled job's notify block): the
// channel of the first route with that name, whatever its severities and namespaces (a report
// is about all of them); else route itself when it is a literal channel; else DefaultChannel.
func (c *Config) ChannelForRoute(route string) string {
	for _, r := range c.Routes {
		if route != "" && r.Name == route {
			return r.Channel
		}
	}
	if IsChannel(route) {
		return route
	}
	return c.DefaultChannel
}

// IsChannel reports whether s names a channel literally: "#name", or a channel id (C or G
// followed by at least eight upper-case letters and digits).
func IsChannel(s string) bool {
	if strings.HasPrefix(s, "#") {
		return len(s) > 1
	}
	if len(s) < 9 || (s[0] != 'C' && s[0] != 'G') {
		return false
	}
	for _, r := range s[1:] {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// options are a Notifier's tunables.
type options struct {
	log              *zap.Logger
	reg              prometheus.Registerer
	store            MessageStore
	summarizer       Summarizer
	httpClient       *http.Client
	dialer           *websocket.Dialer
	groupWindow      time.Duration
	updateInterval   time.Duration
	channelInterval  time.Duration
	paceFor          time.Duration
	queueSize        int
	retryAfter       time.Duration
	backoffInitial   time.Duration
	backoffMax       time.Duration
	approverRefresh  time.Duration
	approverMaxStale time.Duration
	replayClaims     ReplayClaimer
	inlineMembers    int
	threadChunk      int
}

func defaultOptions() options {
	return options{
		log:             zap.NewNop(),
		groupWindow:     10 * time.Minute,
		updateInterval:  5 * time.Second,
		channelInterval: time.Second,
		paceFor:         time.Minute,
		queueSize:       5000,
		retryAfter:      time.Second,
		backoffInitial:  time.Second,
		backoffMax:      time.Minute,
		approverRefresh: 5 * time.Minute,
		inlineMembers:   10,
		threadChunk:     200,
	}
}

// Option configures a Notifier.
type Option func(*options)

// WithLogger logs to l (default: nowhere). Secrets are never logged.
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the notifier's metrics with reg (default: not registered).
func WithRegisterer(reg prometheus.Registerer) Option { return func(o *options) { o.reg = reg } }

// WithMessageStore keeps where each proposal's message is (channel and ts) in s, so that a
// decision after a restart still updates the original message. Default: an in-memory store.
func WithMessageStore(s MessageStore) Option { return func(o *options) { o.store = s } }

// WithSummarizer says what each kind of finding is about in the message's first sentence
// (rules.Registry); without it a message says "<kind> on <object>".
func WithSummarizer(s Summarizer) Option { return func(o *options) { o.summarizer = s } }

// WithHTTPClient makes Web API calls with c (a proxy, a test server's in-memory network).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.httpClient = c } }

// WithWebsocketDialer dials Socket Mode connections with d.
func WithWebsocketDialer(d *websocket.Dialer) Option { return func(o *options) { o.dialer = d } }

// WithGroupWindow sets how long after a group's first message later failures of the same group
// are folded into it (default 10m). After it a new message starts the group again.
func WithGroupWindow(d time.Duration) Option { return func(o *options) { o.groupWindow = d } }

// WithUpdateInterval sets the minimum time between two updates of a group's message, and
// between two partial thread replies listing its members (default 5s).
func WithUpdateInterval(d time.Duration) Option { return func(o *options) { o.updateInterval = d } }

// WithPaceFor sets how long a channel stays paced and coalesced after Slack answered it 429
// (default one minute); WithSteadyPacing paces and coalesces always, as if rate limited.
func WithPaceFor(d time.Duration) Option { return func(o *options) { o.paceFor = max(d, 0) } }

// WithSteadyPacing paces every channel (WithChannelInterval) and coalesces every group's
// updates (WithUpdateInterval) from the start, not only after Slack's first 429.
func WithSteadyPacing() Option { return func(o *options) { o.paceFor = -1 } }

// WithChannelInterval sets the minimum time between two chat.postMessage/chat.update calls to
// one channel (default 1s, Slack's limit); 0 leaves pacing to Slack's 429s.
func WithChannelInterval(d time.Duration) Option {
	return func(o *options) { o.channelInterval = d }
}

// WithQueueSize bounds the notices accepted but not yet delivered (default 5000); when it is
// reached Notify returns ErrQueueFull.
func WithQueueSize(n int) Option { return func(o *options) { o.queueSize = n } }

// WithRetryAfter sets the wait after a 429 that has no Retry-After header (default 1s,
// doubling while 429s without the header continue, up to the backoff maximum).
func WithRetryAfter(d time.Duration) Option { return func(o *options) { o.retryAfter = d } }

// WithBackoff sets the exponential backoff after 5xx answers, network errors and errors Slack
// may recover from (default 1s doubling up to 1m).
func WithBackoff(initial, maximum time.Duration) Option {
	return func(o *options) { o.backoffInitial, o.backoffMax = initial, maximum }
}

// WithApproverRefresh sets how long user group memberships are cached (default 5m).
func WithApproverRefresh(d time.Duration) Option { return func(o *options) { o.approverRefresh = d } }

// WithReplayClaims makes the replay check of HTTP interactions shared by the replicas (the
// bus's claims); without it each replica remembers the requests it accepted itself.
func WithReplayClaims(c ReplayClaimer) Option { return func(o *options) { o.replayClaims = c } }

// WithApproverMaxStale sets how long cached approver group members are trusted while Slack's
// usergroups API fails (default DefaultApproverMaxStale); past it, group members are refused.
func WithApproverMaxStale(d time.Duration) Option { return func(o *options) { o.approverMaxStale = d } }
