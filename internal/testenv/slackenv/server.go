package slackenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Default credentials and identities of a Server.
const (
	DefaultBotToken = "xoxb-slackenv-bot-token"
	DefaultAppToken = "xapp-slackenv-app-token"
	BotUserID       = "U0PODMEDIC"
	TeamID          = "T0SLACKENV"
	// tsBase is the seconds part of every message timestamp; the microseconds count messages.
	tsBase = 1767225600
)

// Call is one Web API call as the server saw and answered it.
type Call struct {
	Seq    int
	Method string // e.g. "chat.postMessage"
	// Channel is the resolved channel id; ChannelArg the channel as sent ("#alerts" or an id).
	Channel    string
	ChannelArg string
	// TS is the message's timestamp: the one chat.postMessage created (when it succeeded) or
	// the one chat.update named.
	TS        string
	ThreadTS  string
	Text      string
	Blocks    json.RawMessage // as sent; nil when none
	User      string          // chat.postEphemeral's user
	UserGroup string          // usergroups.users.list's usergroup
	// Status is the HTTP status answered, Error the Slack error ("" when ok), RetryAfter the
	// Retry-After header of a 429 ("" when left out).
	Status     int
	Error      string
	RetryAfter string
	At         time.Time
}

// OK reports whether the call succeeded.
func (c Call) OK() bool { return c.Status == http.StatusOK && c.Error == "" }

// Message is a message as it stands now in a channel.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // parent's ts for a thread reply
	Text     string
	Blocks   json.RawMessage
	Updates  int      // successful chat.update calls
	Replies  []string // ts of thread replies, in order
	Posted   time.Time
}

// Ack is a Socket Mode acknowledgement the client sent back.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage
	At         time.Time
}

// Server is a Slack-compatible server. Create it with Start or StartInMemory.
type Server struct {
	botToken, appToken string
	pingInterval       time.Duration
	validate           bool

	srv      *http.Server
	mem      *pipeListener
	base     string // http://host
	upgrader websocket.Upgrader

	mu       sync.Mutex
	changed  chan struct{}
	seq      int
	msgSeq   int
	envSeq   int
	calls    []Call
	channels map[string]string // name (without #) -> id
	messages map[string]*Message
	order    []string // message keys in posting order
	groups   map[string][]string
	acks     []Ack
	conns    []*wsConn
	hellos   int

	// rate limiting and failures
	rateInterval time.Duration
	rateBurst    int
	buckets      map[string]*bucket
	noHeaderN    int
	n429         int
	failUntil    time.Time
	failStatus   int
	failNext     int
	errNext      map[string][]string // method -> Slack errors to answer, in order
	closed       bool
	wg           sync.WaitGroup
}

// Option configures a Server.
type Option func(*Server)

// WithBotToken sets the bot token the Web API accepts (default DefaultBotToken).
func WithBotToken(tok string) Option { return func(s *Server) { s.botToken = tok } }

// WithAppToken sets the app-level token apps.connections.open accepts (default DefaultAppToken).
func WithAppToken(tok string) Option { return func(s *Server) { s.appToken = tok } }

// WithChannel makes "#name" resolve to id. Unknown names get ids C0000001, C0000002, ...
func WithChannel(name, id string) Option {
	return func(s *Server) { s.channels[strings.TrimPrefix(name, "#")] = id }
}

// WithUserGroup sets a user group's members, as usergroups.users.list answers them.
func WithUserGroup(id string, users ...string) Option {
	return func(s *Server) { s.groups[id] = slices.Clone(users) }
}

// WithRateLimit enforces Slack's per-channel limit on chat.postMessage and chat.update
// together: at most burst calls at once, refilled at one per interval. Calls over it are
// answered 429 with Retry-After (whole seconds, at least 1).
func WithRateLimit(interval time.Duration, burst int) Option {
	return func(s *Server) { s.rateInterval, s.rateBurst = interval, max(burst, 1) }
}

// WithoutRetryAfterEvery leaves the Retry-After header out of every nth 429 (n > 0).
func WithoutRetryAfterEvery(n int) Option { return func(s *Server) { s.noHeaderN = n } }

// WithPingInterval sets how often the Socket Mode websocket is pinged (default 2s). slack-go's
// client reconnects when it is not pinged for 30s.
func WithPingInterval(d time.Duration) Option { return func(s *Server) { s.pingInterval = d } }

// WithoutBlockValidation accepts blocks Slack would refuse (by default too many blocks, too
// long texts and the like are answered invalid_blocks, as Slack does).
func WithoutBlockValidation() Option { return func(s *Server) { s.validate = false } }

func newServer(opts []Option) *Server {
	s := &Server{
		botToken:     DefaultBotToken,
		appToken:     DefaultAppToken,
		pingInterval: 2 * time.Second,
		validate:     true,
		changed:      make(chan struct{}),
		channels:     map[string]string{},
		messages:     map[string]*Message{},
		groups:       map[string][]string{},
		buckets:      map[string]*bucket{},
		errNext:      map[string][]string{},
	}
	for _, o := range opts {
		o(s)
	}
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return s
}

func (s *Server) mux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("/api/{method}", s.serveAPI)
	m.HandleFunc("/socket", s.serveSocket)
	return m
}

// Start starts a server on 127.0.0.1 and closes it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := newServer(opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("slackenv: listen: %v", err)
	}
	s.base = "http://" + l.Addr().String()
	s.serve(l)
	t.Cleanup(s.Close)
	return s
}

// StartInMemory starts a server on an in-memory network (see HTTPClient and Dialer) and
// closes it when the test ends. Inside a testing/synctest bubble the server, the client and
// every timer involved then run on the bubble's fake clock.
func StartInMemory(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := newServer(opts)
	s.mem = newPipeListener()
	s.base = "http://slackenv.test"
	s.serve(s.mem)
	t.Cleanup(s.Close)
	return s
}

func (s *Server) serve(l net.Listener) {
	s.srv = &http.Server{Handler: s.mux(), ReadHeaderTimeout: 10 * time.Second}
	s.wg.Go(func() { _ = s.srv.Serve(l) })
}

// URL is the Web API's base URL with its trailing slash, for slack.OptionAPIURL.
func (s *Server) URL() string { return s.base + "/api/" }

// HTTPClient returns a client that reaches the server (over the in-memory network for
// StartInMemory).
func (s *Server) HTTPClient() *http.Client {
	if s.mem == nil {
		return &http.Client{Timeout: 30 * time.Second}
	}
	return &http.Client{Transport: &http.Transport{DialContext: s.mem.DialContext}}
}

// Dialer returns a websocket dialer that reaches the server's Socket Mode endpoint.
func (s *Server) Dialer() *websocket.Dialer {
	if s.mem == nil {
		return &websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	}
	return &websocket.Dialer{NetDialContext: s.mem.DialContext, HandshakeTimeout: 10 * time.Second}
}

// Close stops the server and closes its websockets.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	_ = s.srv.Close()
	s.wg.Wait()
}

// SetRateLimit changes the rate limit (see WithRateLimit); interval 0 turns it off.
func (s *Server) SetRateLimit(interval time.Duration, burst int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rateInterval, s.rateBurst = interval, max(burst, 1)
	clear(s.buckets)
}

// FailFor answers every Web API call with status (e.g. 503) for the next d.
func (s *Server) FailFor(d time.Duration, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failUntil, s.failStatus = time.Now().Add(d), status
}

// FailNext answers the next n Web API calls with status.
func (s *Server) FailNext(n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failStatus = n, status
}

// FailNextWith answers the next n calls of method with {"ok":false,"error":slackErr} (e.g.
// invalid_blocks, not_in_channel, message_not_found), after authentication and rate limiting.
func (s *Server) FailNextWith(method string, n int, slackErr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.errNext[method] = append(s.errNext[method], slackErr)
	}
}

// SetUserGroup replaces a user group's members.
func (s *Server) SetUserGroup(id string, users ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = slices.Clone(users)
}

// Calls returns every call so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls of one method, in order.
func (s *Server) CallsTo(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Messages returns every message posted (thread replies included), in posting order, as they
// stand now.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, 0, len(s.order))
	for _, k := range s.order {
		out = append(out, s.messages[k].clone())
	}
	return out
}

// Message returns a message as it stands now.
func (s *Server) Message(channel, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[channel+"/"+ts]
	if !ok {
		return Message{}, false
	}
	return m.clone(), true
}

// Replies returns the thread replies of a message, in order.
func (s *Server) Replies(channel, ts string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.messages[channel+"/"+ts]
	if !ok {
		return nil
	}
	out := make([]Message, 0, len(m.Replies))
	for _, r := range m.Replies {
		out = append(out, s.messages[channel+"/"+r].clone())
	}
	return out
}

// ChannelID returns the id "#name" resolves to ("" when never seen).
func (s *Server) ChannelID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channels[strings.TrimPrefix(name, "#")]
}

// Wait blocks until cond holds (it is checked after every change of the server's state) or
// ctx ends.
func (s *Server) Wait(ctx context.Context, cond func(s *Server) bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond(s) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("slackenv: condition not met: %w", context.Cause(ctx))
		}
	}
}

// notifyLocked wakes Wait; s.mu is held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (m *Message) clone() Message {
	c := *m
	c.Replies = slices.Clone(m.Replies)
	return c
}

type obj = map[string]any

// reply is an HTTP answer, computed under the lock and written after it is released (a pipe
// write may block until the client reads).
type reply struct {
	status     int
	retryAfter string
	html       bool
	body       []byte
}

func jsonReply(v obj) reply {
	b, _ := json.Marshal(v)
	return reply{status: http.StatusOK, body: b}
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	args := url.Values{}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		var m map[string]any
		if len(body) > 0 && json.Unmarshal(body, &m) == nil {
			for k, v := range m {
				switch v := v.(type) {
				case string:
					args.Set(k, v)
				default:
					b, _ := json.Marshal(v)
					args.Set(k, string(b))
				}
			}
		}
	} else if args, err = url.ParseQuery(string(body)); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token == "" {
		token = args.Get("token")
	}

	rep := s.answer(method, token, args)
	if rep.retryAfter != "" {
		w.Header().Set("Retry-After", rep.retryAfter)
	}
	if rep.html {
		w.Header().Set("Content-Type", "text/html")
	} else {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}

// answer records the call and decides its answer.
func (s *Server) answer(method, token string, args url.Values) reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	s.seq++
	c := Call{
		Seq: s.seq, Method: method, ChannelArg: args.Get("channel"), TS: args.Get("ts"),
		ThreadTS: args.Get("thread_ts"), Text: args.Get("text"), User: args.Get("user"),
		UserGroup: args.Get("usergroup"), Status: http.StatusOK, At: now,
	}
	if b := args.Get("blocks"); b != "" {
		c.Blocks = json.RawMessage(b)
	}
	if c.ChannelArg != "" {
		c.Channel = s.resolveLocked(c.ChannelArg)
	}
	defer func() {
		s.calls = append(s.calls, c)
		s.notifyLocked()
	}()

	// Injected failures come first: a Slack having a bad time answers before looking at
	// anything.
	if s.failNext > 0 || now.Before(s.failUntil) {
		if s.failNext > 0 {
			s.failNext--
		}
		c.Status = s.failStatus
		return reply{status: c.Status, html: true, body: []byte("<html><body>slackenv: injected failure</body></html>")}
	}
	wantToken := s.botToken
	if method == "apps.connections.open" {
		wantToken = s.appToken
	}
	if token != wantToken {
		c.Error = "invalid_auth"
		return jsonReply(obj{"ok": false, "error": c.Error})
	}
	if (method == "chat.postMessage" || method == "chat.update") && c.Channel != "" {
		if wait, limited := s.limitLocked(c.Channel, now); limited {
			s.n429++
			c.Status = http.StatusTooManyRequests
			if s.noHeaderN == 0 || s.n429%s.noHeaderN != 0 {
				c.RetryAfter = strconv.Itoa(int(max(1, (wait+time.Second-1)/time.Second)))
			}
			return reply{status: c.Status, retryAfter: c.RetryAfter, body: []byte(`{"ok":false,"error":"ratelimited"}`)}
		}
	}
	if errs := s.errNext[method]; len(errs) > 0 {
		c.Error, s.errNext[method] = errs[0], errs[1:]
		return jsonReply(obj{"ok": false, "error": c.Error})
	}
	var resp obj
	resp, c.Error = s.handleLocked(method, args, &c, now)
	if c.Error != "" {
		return jsonReply(obj{"ok": false, "error": c.Error})
	}
	resp["ok"] = true
	return jsonReply(resp)
}

// resolveLocked maps "#name" (or a bare name) to a channel id; ids pass through.
func (s *Server) resolveLocked(ch string) string {
	if isID(ch) {
		return ch
	}
	name := strings.TrimPrefix(ch, "#")
	id, ok := s.channels[name]
	if !ok {
		id = fmt.Sprintf("C%07d", len(s.channels)+1)
		s.channels[name] = id
	}
	return id
}

func isID(ch string) bool {
	if len(ch) < 2 || !strings.ContainsRune("CGD", rune(ch[0])) {
		return false
	}
	for _, r := range ch[1:] {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func (s *Server) handleLocked(method string, args url.Values, c *Call, now time.Time) (obj, string) {
	switch method {
	case "auth.test":
		return obj{"url": "https://slackenv.test/", "team": "slackenv", "user": "podmedic",
			"team_id": TeamID, "user_id": BotUserID, "bot_id": "B0PODMEDIC"}, ""
	case "apps.connections.open":
		u := strings.Replace(s.base, "http://", "ws://", 1) + "/socket"
		return obj{"url": u}, ""
	case "usergroups.users.list":
		users, ok := s.groups[c.UserGroup]
		if !ok {
			return nil, "no_such_subteam"
		}
		return obj{"users": slices.Clone(users)}, ""
	case "chat.postMessage", "chat.postEphemeral", "chat.update":
	default:
		return nil, "unknown_method"
	}
	if c.Channel == "" {
		return nil, "channel_not_found"
	}
	if c.Text == "" && c.Blocks == nil {
		return nil, "no_text"
	}
	if len(c.Text) > 40000 {
		return nil, "msg_too_long"
	}
	if c.Blocks != nil {
		if err := validateBlocks(c.Blocks, s.validate); err != "" {
			return nil, err
		}
	}
	switch method {
	case "chat.postEphemeral":
		if c.User == "" {
			return nil, "user_not_found"
		}
		return obj{"message_ts": s.nextTSLocked()}, ""
	case "chat.update":
		m, ok := s.messages[c.Channel+"/"+c.TS]
		if !ok {
			return nil, "message_not_found"
		}
		if c.Text != "" || c.Blocks != nil {
			m.Text = c.Text
		}
		if c.Blocks != nil {
			m.Blocks = c.Blocks
		}
		m.Updates++
		return obj{"channel": c.Channel, "ts": c.TS, "text": m.Text}, ""
	}
	// chat.postMessage
	var parent *Message
	if c.ThreadTS != "" {
		var ok bool
		if parent, ok = s.messages[c.Channel+"/"+c.ThreadTS]; !ok || parent.ThreadTS != "" {
			return nil, "thread_not_found"
		}
	}
	c.TS = s.nextTSLocked()
	m := &Message{Channel: c.Channel, TS: c.TS, ThreadTS: c.ThreadTS, Text: c.Text, Blocks: c.Blocks, Posted: now}
	s.messages[c.Channel+"/"+c.TS] = m
	s.order = append(s.order, c.Channel+"/"+c.TS)
	if parent != nil {
		parent.Replies = append(parent.Replies, c.TS)
	}
	return obj{"channel": c.Channel, "ts": c.TS,
		"message": obj{"type": "message", "user": BotUserID, "text": c.Text, "ts": c.TS, "thread_ts": c.ThreadTS}}, ""
}

func (s *Server) nextTSLocked() string {
	s.msgSeq++
	return fmt.Sprintf("%d.%06d", tsBase+s.msgSeq/1000000, s.msgSeq%1000000)
}

// bucket is a token bucket of one channel.
type bucket struct {
	tokens float64
	at     time.Time
}

// limitLocked takes a token of channel's bucket, or says how long until one is there.
func (s *Server) limitLocked(channel string, now time.Time) (time.Duration, bool) {
	if s.rateInterval <= 0 {
		return 0, false
	}
	b, ok := s.buckets[channel]
	if !ok {
		b = &bucket{tokens: float64(s.rateBurst), at: now}
		s.buckets[channel] = b
	}
	b.tokens = min(float64(s.rateBurst), b.tokens+float64(now.Sub(b.at))/float64(s.rateInterval))
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, false
	}
	return time.Duration((1 - b.tokens) * float64(s.rateInterval)), true
}

// validateBlocks checks the limits Slack enforces on blocks and answers Slack's error for a
// violation ("" when fine). Without strict, only the JSON shape is checked.
func validateBlocks(raw json.RawMessage, strict bool) string {
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return "invalid_blocks_format"
	}
	if !strict {
		return ""
	}
	if len(blocks) > 50 {
		return "invalid_blocks"
	}
	text := func(v any) string {
		m, _ := v.(map[string]any)
		s, _ := m["text"].(string)
		return s
	}
	for _, b := range blocks {
		if id, _ := b["block_id"].(string); len(id) > 255 {
			return "invalid_blocks"
		}
		switch b["type"] {
		case "header":
			if t := text(b["text"]); t == "" || len([]rune(t)) > 150 {
				return "invalid_blocks"
			}
		case "section":
			if len([]rune(text(b["text"]))) > 3000 {
				return "invalid_blocks"
			}
			fields, _ := b["fields"].([]any)
			if len(fields) > 10 {
				return "invalid_blocks"
			}
			for _, f := range fields {
				if len([]rune(text(f))) > 2000 {
					return "invalid_blocks"
				}
			}
			if b["text"] == nil && len(fields) == 0 {
				return "invalid_blocks"
			}
		case "context":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > 10 {
				return "invalid_blocks"
			}
			for _, e := range els {
				if len([]rune(text(e))) > 3000 {
					return "invalid_blocks"
				}
			}
		case "actions":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > 25 {
				return "invalid_blocks"
			}
			for _, e := range els {
				m, _ := e.(map[string]any)
				if v, _ := m["value"].(string); len(v) > 2000 {
					return "invalid_blocks"
				}
				if len([]rune(text(m["text"]))) > 75 {
					return "invalid_blocks"
				}
			}
		case "divider", "rich_text", "image":
		default:
			return "invalid_blocks"
		}
	}
	return ""
}
