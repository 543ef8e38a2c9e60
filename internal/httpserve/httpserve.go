// Package httpserve holds what podmedic's HTTP servers (health, metrics and Slack
// interactions; the local inbox) share: their timeouts, and serving until ctx ends with a
// graceful shutdown.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Timeouts bound how long a client may take over a request: a client that trickles its
// headers or body, or never reads the answer, is cut off instead of holding a connection and a
// goroutine forever.
type Timeouts struct {
	// ReadHeader bounds reading the request line and headers; default 10s.
	ReadHeader time.Duration
	// Read bounds reading the whole request, body included; default 30s.
	Read time.Duration
	// Write bounds writing the answer, from the end of the headers; default 30s.
	Write time.Duration
	// Idle bounds how long a kept-alive connection waits for its next request; default 60s.
	Idle time.Duration
}

// Defaults of Timeouts.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
)

// Server returns an http.Server for h with the timeouts (zero values take the defaults).
func (t Timeouts) Server(h http.Handler) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	return &http.Server{Handler: h,
		ReadHeaderTimeout: or(t.ReadHeader, DefaultReadHeaderTimeout),
		ReadTimeout:       or(t.Read, DefaultReadTimeout),
		WriteTimeout:      or(t.Write, DefaultWriteTimeout),
		IdleTimeout:       or(t.Idle, DefaultIdleTimeout),
	}
}

// Serve serves srv on ln until ctx ends, then shuts it down, giving requests in flight 5
// seconds; an error is returned only when the server fails before that.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("http server: %w", err)
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

// DefaultMaxInFlight is Limit's default bound.
const DefaultMaxInFlight = 64

// Limit serves at most n requests of h at a time (n <= 0: DefaultMaxInFlight) and answers
// the others 503 with Retry-After at once. It guards handlers that must read a body before
// they can tell who is asking (a signed Slack request): a flood of slow or forged requests
// then holds at most n goroutines and buffers, and costs nothing else. A buffered channel is
// all the semaphore this needs (no weights, no waiting).
func Limit(h http.Handler, n int) http.Handler {
	if n <= 0 {
		n = DefaultMaxInFlight
	}
	slots := make(chan struct{}, n)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
			h.ServeHTTP(w, r)
		default:
			w.Header().Set("Retry-After", "1")
			http.Error(w, fmt.Sprintf("too many requests in flight (at most %d); try again", n), http.StatusServiceUnavailable)
		}
	})
}
