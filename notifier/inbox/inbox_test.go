package inbox

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/podmedic/podmedic/finding"
)

// fakeActions is an in-memory proposal store with the state machine's rules.
type fakeActions struct {
	mu    sync.Mutex
	props map[string]*finding.Proposal
	calls []string
}

func (f *fakeActions) Proposals(context.Context) ([]finding.Proposal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []finding.Proposal
	for _, p := range f.props {
		out = append(out, *p)
	}
	return out, nil
}

func (f *fakeActions) Decide(_ context.Context, id, user string, approve bool) (*finding.Proposal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, id+" "+user)
	p, ok := f.props[id]
	if !ok {
		return nil, errors.New("unknown proposal " + id)
	}
	if p.State != finding.StatePending {
		return nil, errors.New("proposal " + id + " is already " + string(p.State))
	}
	p.DecidedBy, p.DecidedAt = user, time.Date(2026, 11, 20, 3, 12, 0, 0, time.UTC)
	if approve {
		p.State, p.Outcome = finding.StateExecuted, &finding.Outcome{Result: finding.ResultExecuted, Message: "pod deleted"}
	} else {
		p.State = finding.StateDenied
	}
	return p, nil
}

func proposal(id string) *finding.Proposal {
	return &finding.Proposal{ID: id, State: finding.StatePending,
		Finding: finding.Finding{Kind: finding.InitStuck, Rule: "init-stuck", Severity: finding.SeverityWarning,
			Namespace: "spark", Pod: "nightly-agg-driver", Evidence: []string{"init container wait-for-history not complete after 19m (Init:0/1)"},
			Spark: &finding.SparkApp{AppName: "nightly-agg", Role: "driver"}},
		Action:    finding.Action{Type: finding.ActionDeletePod, Mode: finding.ModeApprove, Params: map[string]string{}},
		ExpiresAt: time.Date(2026, 11, 20, 3, 30, 0, 0, time.UTC)}
}

func setup(t *testing.T) (*fakeActions, *httptest.Server, *http.Client) {
	fa := &fakeActions{props: map[string]*finding.Proposal{"p1": proposal("p1"), "p2": proposal("p2")}}
	s, err := New(Options{Lister: fa, Decider: fa, User: "alice"})
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return fa, srv, &http.Client{Jar: jar}
}

func get(t *testing.T, c *http.Client, u string) string {
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

var tokenRE = regexp.MustCompile(`name="token" value="([0-9a-f]+)"`)

func TestInboxListsAndDecides(t *testing.T) {
	fa, srv, c := setup(t)
	body := get(t, c, srv.URL+"/")
	require.Contains(t, body, "Pending (2)")
	require.Contains(t, body, `id="approve-p1"`)
	require.Contains(t, body, "InitStuck</span> spark/nightly-agg-driver")
	require.Contains(t, body, "Spark: app <b>nightly-agg</b>")
	token := tokenRE.FindStringSubmatch(body)[1]

	resp, err := c.PostForm(srv.URL+"/proposals/p1/approve", url.Values{"token": {token}})
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "redirected back to the page")
	require.Contains(t, string(b), "executed by inbox:alice at 03:12Z -&gt; pod deleted")
	require.Contains(t, string(b), "Pending (1)")
	require.Contains(t, string(b), `id="history-p1"`)
	require.Equal(t, []string{"p1 inbox:alice"}, fa.calls)

	// Deciding again is refused with the reason, shown on the page.
	resp, err = c.PostForm(srv.URL+"/proposals/p1/deny", url.Values{"token": {token}})
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), "proposal p1 is already executed")
	require.Equal(t, finding.StateExecuted, fa.props["p1"].State)
}

func TestInboxRefusesForgedDecisions(t *testing.T) {
	fa, srv, c := setup(t)
	token := tokenRE.FindStringSubmatch(get(t, c, srv.URL+"/"))[1]
	for name, req := range map[string]*http.Request{
		"no token":    form(t, srv.URL+"/proposals/p1/approve", "", ""),
		"wrong token": form(t, srv.URL+"/proposals/p1/approve", strings.Repeat("0", 32), ""),
		"other site":  form(t, srv.URL+"/proposals/p1/approve", token, "https://evil.example"),
	} {
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, name)
	}
	require.Empty(t, fa.calls, "nothing was decided")
	require.Equal(t, finding.StatePending, fa.props["p1"].State)
}

// TestInboxRefusesForeignHosts: a DNS-rebinding page (Host and Origin evil.example, resolved
// to 127.0.0.1) can neither read the page nor post a decision, even with the right token;
// the loopback names are served.
func TestInboxRefusesForeignHosts(t *testing.T) {
	fa, srv, c := setup(t)
	token := tokenRE.FindStringSubmatch(get(t, c, srv.URL+"/"))[1]
	_, port, err := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	require.NoError(t, err)

	for _, host := range []string{"evil.example:" + port, "evil.example", "127.0.0.1.evil.example:" + port, "10.0.0.1:" + port, ""} {
		for _, req := range []*http.Request{
			mustRequest(t, http.MethodGet, srv.URL+"/", nil),
			mustRequest(t, http.MethodGet, srv.URL+"/api/proposals", nil),
			form(t, srv.URL+"/proposals/p1/approve", token, "http://"+host),
		} {
			req.Host = host
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if host == "" {
				// Go's client fills in the URL's host: that is a loopback one.
				continue
			}
			assert.Equal(t, http.StatusForbidden, resp.StatusCode, "%s %s for Host %q", req.Method, req.URL.Path, host)
			assert.Contains(t, string(b), "the inbox answers only requests for a loopback host")
			assert.NotContains(t, string(b), token, "the page's token leaked")
		}
	}
	require.Empty(t, fa.calls, "nothing was decided")
	require.Equal(t, finding.StatePending, fa.props["p1"].State)

	for _, host := range []string{"localhost:" + port, "LOCALHOST:" + port, "127.0.0.1:" + port, "127.1.2.3:" + port, "[::1]:" + port} {
		req := mustRequest(t, http.MethodGet, srv.URL+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode, host)
	}
}

func mustRequest(t *testing.T, method, u string, body io.Reader) *http.Request {
	req, err := http.NewRequest(method, u, body)
	require.NoError(t, err)
	return req
}

func form(t *testing.T, u, token, origin string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(url.Values{"token": {token}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return req
}

func TestInboxServesOnlyLoopback(t *testing.T) {
	fa := &fakeActions{props: map[string]*finding.Proposal{}}
	s, err := New(Options{Lister: fa, Decider: fa})
	require.NoError(t, err)
	err = s.Serve(context.Background(), "0.0.0.0:0", nil)
	require.ErrorContains(t, err, "must be a loopback address")
}

func TestInboxAPI(t *testing.T) {
	_, srv, c := setup(t)
	body := get(t, c, srv.URL+"/api/proposals")
	require.Contains(t, body, `"id":"p1"`)
	require.Contains(t, body, `"state":"pending"`)
}

// revokingActions also revokes memory overrides (notifier.Revoker), as the actions stage does.
type revokingActions struct {
	*fakeActions
	revoked []string
}

func (r *revokingActions) RevokeOverride(_ context.Context, id, user string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != "o-1" {
		return "", errors.New("no memory override " + id)
	}
	r.revoked = append(r.revoked, id+" "+user)
	return "override " + id + " revoked", nil
}

func TestInboxRevokesOverrides(t *testing.T) {
	fa := &fakeActions{props: map[string]*finding.Proposal{"p1": proposal("p1")}}
	p := fa.props["p1"]
	p.State, p.DecidedBy = finding.StateExecuted, "U1"
	p.Outcome = &finding.Outcome{Result: finding.ResultExecuted, Message: "memory override o-1 stored", Override: "o-1"}
	ra := &revokingActions{fakeActions: fa}
	s, err := New(Options{Lister: ra, Decider: ra, User: "alice"})
	require.NoError(t, err)
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	c := &http.Client{}

	body := get(t, c, srv.URL+"/")
	require.Contains(t, body, `id="revoke-o-1"`, "the history offers to revoke the override")
	token := tokenRE.FindStringSubmatch(body)[1]

	for name, req := range map[string]*http.Request{
		"no token":   form(t, srv.URL+"/overrides/o-1/revoke", "", ""),
		"other site": form(t, srv.URL+"/overrides/o-1/revoke", token, "https://evil.example"),
	} {
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, name)
	}
	require.Empty(t, ra.revoked, "nothing was revoked")

	resp, err := c.PostForm(srv.URL+"/overrides/o-1/revoke", url.Values{"token": {token}})
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `<p class="flash" id="flash">override o-1 revoked</p>`)
	require.Equal(t, []string{"o-1 inbox:alice"}, ra.revoked)

	resp, err = c.PostForm(srv.URL+"/overrides/o-2/revoke", url.Values{"token": {token}})
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(b), `<p class="error" id="error">no memory override o-2</p>`)
}

func TestInboxWithoutOverrides(t *testing.T) {
	fa, srv, c := setup(t)
	p := fa.props["p1"]
	p.State, p.Outcome = finding.StateExecuted, &finding.Outcome{Result: finding.ResultExecuted, Message: "stored", Override: "o-1"}
	body := get(t, c, srv.URL+"/")
	require.NotContains(t, body, "revoke-o-1", "no revoke button where overrides are off")
	token := tokenRE.FindStringSubmatch(body)[1]
	resp, err := http.DefaultClient.Do(form(t, srv.URL+"/overrides/o-1/revoke", token, ""))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Contains(t, string(b), "memory overrides are off")
}
