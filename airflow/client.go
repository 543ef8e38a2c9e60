package airflow

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/podmedic/podmedic/internal/retry"
	"k8s.io/apimachinery/pkg/util/wait"
)

// API versions.
const (
	V1 = "v1" // Airflow 2's stable REST API
	V2 = "v2" // Airflow 3's public API
)

// Client calls Airflow's REST API. It is safe for concurrent use.
type Client struct {
	base    string
	version string
	http    *http.Client
	creds   Credentials
	tokens  *tokenSource // v2 with a username and password
	backoff wait.Backoff
}

// New returns a client of the API at baseURL (the webserver or API server, e.g.
// http://airflow-webserver.airflow:8080) in apiVersion v1 or v2 ("" is v1); timeout bounds
// one HTTP call (default 10s). A URL with credentials in it is refused: they would be in
// every error.
func New(baseURL, apiVersion string, timeout time.Duration, creds Credentials) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("airflow url is not an http(s) URL with a host")
	}
	if u.User != nil {
		return nil, errors.New("airflow url carries credentials; set AIRFLOW_USERNAME and AIRFLOW_PASSWORD, or AIRFLOW_TOKEN, instead")
	}
	if apiVersion == "" {
		apiVersion = V1
	}
	if apiVersion != V1 && apiVersion != V2 {
		return nil, fmt.Errorf("airflow api_version %q: want v1 or v2", apiVersion)
	}
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	c := &Client{base: strings.TrimRight(baseURL, "/"), version: apiVersion, http: &http.Client{Timeout: timeout},
		creds: creds, backoff: retry.Exponential(250*time.Millisecond, 5*time.Second)}
	if apiVersion == V2 && creds.Token == "" && creds.Username != "" {
		c.tokens = &tokenSource{c: c, now: time.Now}
	}
	return c, nil
}

// Version is the API version the client speaks (v1 or v2).
func (c *Client) Version() string { return c.version }

// APIError is an answer of Airflow's other than success: the call, the HTTP status and what
// Airflow said.
type APIError struct {
	Method   string
	Endpoint string // without the base URL's credentials (it has none) or query
	Status   int
	Detail   string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("airflow %s %s: %d %s", e.Method, e.Endpoint, e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Transient reports whether the failure may pass: a 5xx or a 429.
func (e *APIError) Transient() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// CredentialsError says Airflow refused podmedic's credentials: retrying does not help.
type CredentialsError struct {
	Who    string // "user <name>", "the token in AIRFLOW_TOKEN"
	Status int
	Detail string
}

func (e *CredentialsError) Error() string {
	s := fmt.Sprintf("Airflow refused the credentials for %s (%d %s", e.Who, e.Status, http.StatusText(e.Status))
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s + ")"
}

// IsFinal reports whether err is an answer of Airflow's that another try would get again (a
// 4xx other than 429, refused credentials).
func IsFinal(err error) bool {
	var ce *CredentialsError
	var ae *APIError
	return errors.As(err, &ce) || (errors.As(err, &ae) && !ae.Transient())
}

// request is one API call.
type request struct {
	method string
	path   string // below /api/{version}
	query  url.Values
	body   any
	out    any
}

// do makes a call, retrying transient failures until ctx ends; a 401 with a fetched token
// fetches a new one once.
func (c *Client) do(ctx context.Context, r request) error {
	var payload []byte
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return err
		}
		payload = b
	}
	endpoint := c.base + "/api/" + c.version + r.path
	var last error
	refreshed := false
	for attempt := 1; ; attempt++ {
		wait, err := c.once(ctx, r, endpoint, payload)
		if err == nil {
			return nil
		}
		var stale *staleTokenError
		if errors.As(err, &stale) {
			if refreshed {
				return stale.err
			}
			refreshed = true
			c.tokens.invalidate(stale.token)
			attempt--
			continue
		}
		if IsFinal(err) {
			return err
		}
		last = err
		d := retry.Delay(c.backoff, attempt)
		if wait > d {
			d = wait
		}
		if !retry.Sleep(ctx, d) {
			return fmt.Errorf("%w (tried %d times; gave up: %v)", last, attempt, context.Cause(ctx))
		}
	}
}

// staleTokenError is a 401 to a request made with a fetched token.
type staleTokenError struct {
	token string
	err   error
}

func (e *staleTokenError) Error() string { return e.err.Error() }

// once makes one attempt and says how long Airflow asked to wait (Retry-After) on a 429/503.
func (c *Client) once(ctx context.Context, r request, endpoint string, payload []byte) (time.Duration, error) {
	u := endpoint
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := newRequest(ctx, r.method, u, body)
	if err != nil {
		return 0, err
	}
	var token string
	switch {
	case c.creds.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.creds.Token)
	case c.tokens != nil:
		token, err = c.tokens.get(ctx)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
	case c.creds.Username != "":
		req.SetBasicAuth(c.creds.Username, c.creds.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("airflow %s %s: %w", r.method, endpoint, redactURLError(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode/100 == 2 {
		if r.out == nil {
			return 0, nil
		}
		if err := json.Unmarshal(data, r.out); err != nil {
			return 0, fmt.Errorf("airflow %s %s: decode the answer: %w", r.method, endpoint, err)
		}
		return 0, nil
	}
	detail := problemDetail(data)
	if resp.StatusCode == http.StatusUnauthorized {
		switch {
		case token != "":
			return 0, &staleTokenError{token: token, err: &CredentialsError{Who: "user " + c.creds.Username + " (a token it was issued)", Status: resp.StatusCode, Detail: detail}}
		case c.creds.Token != "":
			return 0, &CredentialsError{Who: "the token in AIRFLOW_TOKEN (expired? set AIRFLOW_USERNAME/AIRFLOW_PASSWORD to have podmedic fetch tokens)", Status: resp.StatusCode, Detail: detail}
		case c.creds.Username != "":
			return 0, &CredentialsError{Who: "user " + c.creds.Username, Status: resp.StatusCode, Detail: detail}
		default:
			return 0, &CredentialsError{Who: "podmedic, which sent none (set AIRFLOW_USERNAME/AIRFLOW_PASSWORD or AIRFLOW_TOKEN)", Status: resp.StatusCode, Detail: detail}
		}
	}
	return retryAfter(resp.Header.Get("Retry-After")), &APIError{Method: r.method, Endpoint: endpoint, Status: resp.StatusCode, Detail: detail}
}

// newRequest is a request to Airflow's API with the headers every call sends (a JSON body
// when body is not nil).
func newRequest(ctx context.Context, method, url string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "podmedic")
	return req, nil
}

// retryAfter reads a Retry-After header in seconds (the form Airflow's proxies send); 0 when
// absent or in another form.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, time.Minute)
}

// problemDetail extracts what an Airflow error body says (an RFC 7807 problem in Airflow 2,
// FastAPI's {"detail": ...} in Airflow 3), clipped.
func problemDetail(data []byte) string {
	var p struct {
		Title  string `json:"title"`
		Detail any    `json:"detail"`
	}
	if json.Unmarshal(data, &p) != nil {
		return ""
	}
	var s string
	switch d := p.Detail.(type) {
	case string:
		s = d
	case nil:
		s = p.Title
	case []any:
		// FastAPI's validation errors: [{"loc": [...], "msg": "..."}].
		var parts []string
		for _, e := range d {
			m, _ := e.(map[string]any)
			loc, _ := m["loc"].([]any)
			var path []string
			for _, l := range loc {
				path = append(path, fmt.Sprint(l))
			}
			parts = append(parts, fmt.Sprintf("%s: %v", strings.Join(path, "."), m["msg"]))
		}
		s = strings.Join(parts, "; ")
	default:
		b, _ := json.Marshal(d)
		s = string(b)
	}
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// redactURLError drops user info a URL in err might carry.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.User != nil {
			u.User = nil
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// PlainHTTPOutsideCluster reports whether an Airflow URL sends credentials unencrypted to a
// host outside the cluster: http:// to a public IP address, or to a name that does not read
// as a Kubernetes service (service, service.namespace, or a name ending in .svc or
// .cluster.local; the cluster's DNS search path resolves the short forms).
func PlainHTTPOutsideCluster(baseURL string) bool {
	u, err := url.Parse(baseURL)
	if err != nil || u.Scheme != "http" {
		return false
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		return !ip.IsLoopback() && !ip.IsPrivate()
	}
	return host != "localhost" && strings.Count(host, ".") >= 2 &&
		!strings.HasSuffix(host, ".svc") && !strings.HasSuffix(host, ".cluster.local")
}
