package airflow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/sync/singleflight"
)

// tokenSource fetches Airflow 3 JWTs (POST /auth/token with the username and password) and
// keeps the current one until shortly before it expires or Airflow refuses it. Concurrent
// callers share one fetch (singleflight).
type tokenSource struct {
	c   *Client
	now func() time.Time

	mu      sync.Mutex
	token   string
	refresh time.Time // fetch a new one from then on (zero: only after a 401)
	flight  singleflight.Group
}

// fetchTimeout bounds one token fetch; it does not end with the caller that started it
// (others may be waiting for the same fetch).
const fetchTimeout = 30 * time.Second

// get returns a token that is not known to be expired, fetching one when needed.
func (s *tokenSource) get(ctx context.Context) (string, error) {
	if tok := s.current(); tok != "" {
		return tok, nil
	}
	ch := s.flight.DoChan("token", func() (any, error) {
		if tok := s.current(); tok != "" {
			return tok, nil // fetched while this caller waited to start
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		return s.fetch(fctx)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return "", res.Err
		}
		return res.Val.(string), nil
	case <-ctx.Done():
		return "", context.Cause(ctx)
	}
}

func (s *tokenSource) current() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && (s.refresh.IsZero() || s.now().Before(s.refresh)) {
		return s.token
	}
	return ""
}

// invalidate forgets tok after Airflow refused it (unless a newer one replaced it already).
func (s *tokenSource) invalidate(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == tok {
		s.token = ""
	}
}

// fetch asks POST /auth/token for a token. Airflow 3's auth managers (simple, FAB, Keycloak)
// take {"username", "password"} and answer {"access_token"} (201; 200 accepted too).
func (s *tokenSource) fetch(ctx context.Context) (string, error) {
	c := s.c
	body, _ := json.Marshal(map[string]string{"username": c.creds.Username, "password": c.creds.Password})
	endpoint := c.base + "/auth/token"
	req, err := newRequest(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("airflow POST %s: %w", endpoint, redactURLError(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", &CredentialsError{Who: "user " + c.creds.Username, Status: resp.StatusCode, Detail: problemDetail(data)}
	case resp.StatusCode/100 != 2:
		return "", &APIError{Method: http.MethodPost, Endpoint: endpoint, Status: resp.StatusCode, Detail: problemDetail(data)}
	}
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(data, &out); err != nil || out.AccessToken == "" {
		return "", fmt.Errorf("airflow POST %s: no access_token in the answer", endpoint)
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token, s.refresh = out.AccessToken, refreshAt(out.AccessToken, now)
	return out.AccessToken, nil
}

// refreshAt is when to fetch the next token: a minute (at most a tenth of its life) before
// its exp claim. The token is not verified (podmedic has no key, and needs none to read
// when it ends); without a readable exp it is kept until Airflow refuses it.
func refreshAt(tok string, now time.Time) time.Time {
	var claims jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &claims); err != nil || claims.ExpiresAt == nil {
		return time.Time{}
	}
	exp := claims.ExpiresAt.Time
	issued := now
	if claims.IssuedAt != nil && claims.IssuedAt.Before(now) {
		issued = claims.IssuedAt.Time
	}
	margin := min(time.Minute, exp.Sub(issued)/10)
	return exp.Add(-margin)
}
