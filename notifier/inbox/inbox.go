package inbox

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/podmedic/podmedic/finding"
	"github.com/podmedic/podmedic/internal/httpserve"
	"github.com/podmedic/podmedic/notifier"
)

//go:embed page.html.tmpl
var pageFS embed.FS

var page = template.Must(template.New("page.html.tmpl").Funcs(template.FuncMap{
	"params": notifier.FormatParams,
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}).ParseFS(pageFS, "page.html.tmpl"))

// maxForm bounds the body of a decision (a token and nothing else).
const maxForm = 64 << 10

// Server serves the inbox.
type Server struct {
	lister   notifier.ProposalLister
	decider  notifier.Decider
	user     string
	token    string
	timeouts httpserve.Timeouts
	log      *zap.Logger
	now      func() time.Time
}

// Options configure a Server.
type Options struct {
	Lister  notifier.ProposalLister
	Decider notifier.Decider
	// User names whoever uses the page in decisions ("inbox:<User>"); default the OS user.
	User string
	// Timeouts bound each request (zero values: httpserve's defaults).
	Timeouts httpserve.Timeouts
	Logger   *zap.Logger
}

// New returns an inbox server. Each server has a random token that its page embeds in every
// form: a decision posted without it (from another site, a script guessing the URL) is refused.
func New(o Options) (*Server, error) {
	if o.Lister == nil || o.Decider == nil {
		return nil, errors.New("inbox: Lister and Decider are required")
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	if o.User == "" {
		o.User = "local"
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	return &Server{lister: o.Lister, decider: o.Decider, user: "inbox:" + o.User, token: hex.EncodeToString(b),
		timeouts: o.Timeouts, log: o.Logger, now: time.Now}, nil
}

// Handler returns the inbox's routes: GET / (the page), GET /api/proposals (JSON),
// POST /proposals/{id}/approve and /proposals/{id}/deny, and POST /overrides/{id}/revoke
// (when the Decider also revokes memory overrides, notifier.Revoker). Every request, GETs
// included, must name a loopback host (see loopbackOnly).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /api/proposals", s.api)
	mux.HandleFunc("POST /proposals/{id}/{decision}", s.decide)
	mux.HandleFunc("POST /overrides/{id}/revoke", s.revoke)
	return s.loopbackOnly(mux)
}

// loopbackOnly refuses, before any handler, a request whose Host is not a loopback name
// (localhost, 127.0.0.0/8, ::1). The listener is on loopback already, but a browser sends
// there whatever a page's own name resolves to: with DNS rebinding, evil.example first
// resolves to the attacker and then to 127.0.0.1, and the attacker's page — same origin as
// far as the browser knows, Host and Origin evil.example — could read the page's token and
// post a decision. A rebound request always carries the attacker's name in Host.
func (s *Server) loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			s.log.Warn("inbox: request for a host that is not loopback refused", zap.String("host", r.Host),
				zap.String("remote", r.RemoteAddr), zap.String("path", r.URL.Path))
			http.Error(w, fmt.Sprintf("forbidden: the inbox answers only requests for a loopback host "+
				"(localhost, 127.0.0.1, [::1]), not %q", r.Host), http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header (host or host:port) names the loopback
// interface: localhost, an IPv4 address in 127.0.0.0/8, or ::1.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type view struct {
	Pending, History []finding.Proposal
	Token, User      string
	Flash, Error     string
	Now              time.Time
	// Revokes: the page offers to revoke the memory overrides approvals stored.
	Revokes bool
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	all, err := s.lister.Proposals(r.Context())
	if err != nil {
		http.Error(w, "cannot list proposals: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, revokes := s.decider.(notifier.Revoker)
	v := view{Token: s.token, User: s.user, Flash: r.URL.Query().Get("ok"), Error: r.URL.Query().Get("error"), Now: s.now(), Revokes: revokes}
	for _, p := range all {
		if p.State == finding.StatePending {
			v.Pending = append(v.Pending, p)
		} else {
			v.History = append(v.History, p)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	w.Header().Set("X-Frame-Options", "DENY")
	if err := page.Execute(w, v); err != nil {
		s.log.Warn("rendering the inbox", zap.Error(err))
	}
}

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	all, err := s.lister.Proposals(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if all == nil {
		all = []finding.Proposal{}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(all)
}

// decide applies a decision posted by the page's form, then redirects back to the page with
// the outcome (post/redirect/get).
func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if !s.sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(s.token)) != 1 {
		http.Error(w, "forbidden: this decision did not come from the inbox page", http.StatusForbidden)
		return
	}
	id, decision := r.PathValue("id"), r.PathValue("decision")
	if decision != "approve" && decision != "deny" {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), decideTimeout)
	defer cancel()
	p, err := s.decider.Decide(ctx, id, s.user, decision == "approve")
	q := url.Values{}
	if err != nil {
		s.log.Info("inbox decision refused", zap.String("proposal", id), zap.String("decision", decision), zap.Error(err))
		q.Set("error", err.Error())
	} else {
		s.log.Info("inbox decision", zap.String("proposal", id), zap.String("decision", decision), zap.String("state", string(p.State)))
		q.Set("ok", notifier.RenderDecision(p))
	}
	http.Redirect(w, r, "/?"+q.Encode(), http.StatusSeeOther)
}

// decideTimeout bounds a decision or a revocation once posted: it goes on when the browser
// leaves (an action half taken is worse than a late answer).
const decideTimeout = 30 * time.Second

// revoke ends a memory override from the page's history (the proposal whose approval stored
// it), then redirects back to the page with what was revoked.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if !s.sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(s.token)) != 1 {
		http.Error(w, "forbidden: this revocation did not come from the inbox page", http.StatusForbidden)
		return
	}
	rv, ok := s.decider.(notifier.Revoker)
	if !ok {
		http.Error(w, "memory overrides are off in this podmedic: nothing to revoke", http.StatusNotFound)
		return
	}
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), decideTimeout)
	defer cancel()
	msg, err := rv.RevokeOverride(ctx, id, s.user)
	q := url.Values{}
	if err != nil {
		s.log.Info("inbox revocation refused", zap.String("override", id), zap.Error(err))
		q.Set("error", err.Error())
	} else {
		s.log.Info("inbox revocation", zap.String("override", id), zap.String("by", s.user))
		q.Set("ok", msg)
	}
	http.Redirect(w, r, "/?"+q.Encode(), http.StatusSeeOther)
}

// sameOrigin refuses cross-site posts: the Origin (or, without it, the Referer) must name this
// server's host (a loopback one: see loopbackOnly).
func (s *Server) sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return true // not a browser; the token still has to match
	}
	u, err := url.Parse(src)
	return err == nil && u.Host == r.Host
}

// Serve listens on addr (which must be a loopback address) and serves until ctx is done.
func (s *Server) Serve(ctx context.Context, addr string, ready func(net.Addr)) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("inbox: --inbox-addr must be a loopback address (127.0.0.1:PORT): the inbox has no login")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if ready != nil {
		ready(ln.Addr())
	}
	return httpserve.Serve(ctx, s.timeouts.Server(s.Handler()), ln)
}
