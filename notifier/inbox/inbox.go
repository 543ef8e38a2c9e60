package inbox

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"net"
	"net/http"
	"net/url"
	"time"

	"go.uber.org/zap"

	"github.com/podmedic/podmedic/finding"
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

// Server serves the inbox.
type Server struct {
	lister  notifier.ProposalLister
	decider notifier.Decider
	user    string
	token   string
	log     *zap.Logger
	now     func() time.Time
}

// Options configure a Server.
type Options struct {
	Lister  notifier.ProposalLister
	Decider notifier.Decider
	// User names whoever uses the page in decisions ("inbox:<User>"); default the OS user.
	User   string
	Logger *zap.Logger
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
		log: o.Logger, now: time.Now}, nil
}

// Handler returns the inbox's routes: GET / (the page), GET /api/proposals (JSON),
// POST /proposals/{id}/approve and /proposals/{id}/deny.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.page)
	mux.HandleFunc("GET /api/proposals", s.api)
	mux.HandleFunc("POST /proposals/{id}/{decision}", s.decide)
	return mux
}

type view struct {
	Pending, History []finding.Proposal
	Token, User      string
	Flash, Error     string
	Now              time.Time
}

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	all, err := s.lister.Proposals(r.Context())
	if err != nil {
		http.Error(w, "cannot list proposals: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	v := view{Token: s.token, User: s.user, Flash: r.URL.Query().Get("ok"), Error: r.URL.Query().Get("error"), Now: s.now()}
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
	if !s.sameOrigin(r) || subtle.ConstantTimeCompare([]byte(r.PostFormValue("token")), []byte(s.token)) != 1 {
		http.Error(w, "forbidden: this decision did not come from the inbox page", http.StatusForbidden)
		return
	}
	id, decision := r.PathValue("id"), r.PathValue("decision")
	if decision != "approve" && decision != "deny" {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
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

// sameOrigin refuses cross-site posts: the Origin (or, without it, the Referer) must name this
// server's host.
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
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			// A client (a browser's keep-alive, a slow scrape) still holds a connection after
			// the grace period: close it; stopping is not a failure.
			_ = srv.Close()
		}
		return nil
	}
}
