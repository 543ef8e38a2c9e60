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
