package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Defaults of Options.
const (
	DefaultMaxMemory      int64 = 64 << 20
	DefaultMaxStore       int64 = 1 << 30
	DefaultConnectTimeout       = 5 * time.Second
	DefaultDrainTimeout         = 10 * time.Second
	DefaultRetryDelay           = time.Second
)

// Options configure Open.
type Options struct {
	// URL is the external NATS URL, or several comma separated; empty starts an embedded server.
	URL string
	// DataDir is the embedded server's JetStream store (DataDir/jetstream); required when URL
	// is empty.
	DataDir string
	// ListenAddr is the embedded server's client listener: "" for none at all (podmedic itself
	// always connects in-process), or e.g. "127.0.0.1:4222" to expose it (port 0: any free port).
	ListenAddr string
	// MaxMemory is the embedded JetStream memory limit in bytes; default 64 MiB.
	MaxMemory int64
	// MaxStore is the embedded JetStream file store limit in bytes; default 1 GiB. With an
	// external server too, the streams and buckets are bounded by shares of it (observations
	// 1/2, audit 1/4, each bucket 1/16), so that every replica declares the same limits.
	MaxStore int64
	// Replicas of the streams and buckets: 1 for the embedded server (the default), 3 for an
	// external cluster.
	Replicas int
	// Name is the connection name, e.g. "podmedic-<hostname>"; also the embedded server's name.
	Name string
	// ConnectTimeout bounds the initial connect; default 5s. There is no retry of the initial
	// connect: an unreachable server is an error of Open.
	ConnectTimeout time.Duration
	// DrainTimeout bounds a graceful stop: the drain of a consumer in Consume (in-flight handlers
	// included) and the drain of the connection in Close; default 10s.
	DrainTimeout time.Duration
	// RetryDelay is the Nak delay after a handler's first retryable failure; it doubles with
	// every delivery, up to 30s. Default 1s.
	RetryDelay time.Duration

	// Logger is used as is (the caller names it, e.g. log.Named("bus")); nil logs nothing.
	Logger  *zap.Logger
	Metrics *Metrics // may be nil
}

func (o *Options) setDefaults() {
	if o.MaxMemory <= 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	if o.MaxStore <= 0 {
		o.MaxStore = DefaultMaxStore
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.DrainTimeout <= 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
}

// Bus is a connection to NATS JetStream with podmedic's streams, consumer and buckets set up.
// It is safe for concurrent use.
type Bus struct {
	log     *zap.Logger
	metrics *Metrics
	opts    Options

	srv *server.Server // the embedded server; nil with an external URL
	nc  *nats.Conn
	js  jetstream.JetStream

	rules     jetstream.Consumer
	proposals jetstream.KeyValue
	dedup     jetstream.KeyValue

	connClosed chan struct{} // closed by the connection's ClosedHandler
	closeOnce  sync.Once
	closeErr   error
}

// Open connects to NATS (starting the embedded server when o.URL is empty) and creates or
// updates the streams, the rules consumer and the KV buckets. It is idempotent: several
// replicas, or a restart, open the same assets.
func Open(ctx context.Context, o Options) (*Bus, error) {
	o.setDefaults()
	b := &Bus{
		log:        o.Logger,
		metrics:    o.Metrics,
		opts:       o,
		connClosed: make(chan struct{}),
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var err error
	if o.URL == "" {
		if o.DataDir == "" {
			return nil, errors.New("bus: DataDir is required for the embedded NATS server")
		}
		if o.Replicas != 1 {
			return nil, fmt.Errorf("bus: the embedded NATS server is a single node; Replicas must be 1, not %d", o.Replicas)
		}
		if b.srv, err = startEmbedded(o, b.log); err != nil {
			return nil, err
		}
		// podmedic's own connection is in-process even when the server also listens.
		b.nc, err = nats.Connect("", b.connOptions(ctx, nats.InProcessServer(b.srv))...)
		if err != nil {
			b.shutdownServer()
			return nil, fmt.Errorf("connect to the embedded NATS server: %w", err)
		}
		b.log.Info("started embedded NATS server", zap.String("storeDir", o.DataDir), zap.String("clientURL", b.ClientURL()))
	} else {
		d := &recordingDialer{d: net.Dialer{Timeout: b.connectTimeout(ctx)}}
		d.recording.Store(true)
		b.nc, err = nats.Connect(o.URL, b.connOptions(ctx, nats.SetCustomDialer(d))...)
		d.recording.Store(false)
		if err != nil {
			if errors.Is(err, nats.ErrNoServers) {
				// nats.go reports a refused connection only as "no servers available".
				if dialErr := d.err(); dialErr != nil {
					err = dialErr
				}
			}
			return nil, fmt.Errorf("connect to NATS at %s: %w", redactURLs(o.URL), err)
		}
		b.log.Info("connected to NATS", zap.String("url", redactURLs(b.nc.ConnectedUrl())))
	}

	if b.js, err = jetstream.New(b.nc); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if err := b.setup(ctx); err != nil {
		_ = b.Close()
		return nil, err
	}
	return b, nil
}

// connectTimeout is ConnectTimeout, or less when ctx ends sooner.
func (b *Bus) connectTimeout(ctx context.Context) time.Duration {
	timeout := b.opts.ConnectTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	return timeout
}

func (b *Bus) connOptions(ctx context.Context, extra ...nats.Option) []nats.Option {
	log := b.log
	return append([]nats.Option{
		nats.Name(b.opts.Name),
		nats.Timeout(b.connectTimeout(ctx)),
		nats.RetryOnFailedConnect(false),
		nats.MaxReconnects(-1),
		nats.DrainTimeout(b.opts.DrainTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", zap.Error(err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", zap.String("url", redactURLs(nc.ConnectedUrl())))
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			fields := []zap.Field{zap.Error(err)}
			if sub != nil {
				fields = append(fields, zap.String("subject", sub.Subject))
			}
			log.Warn("NATS async error", fields...)
		}),
		nats.ClosedHandler(func(*nats.Conn) { close(b.connClosed) }),
	}, extra...)
}

// Close drains the connection (bounded by DrainTimeout: pending publishes and acks are
// flushed, subscriptions finish), then shuts the embedded server down and waits for it.
// Close is idempotent. Stop Consume (cancel its context) before calling Close.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		if b.nc != nil {
			if err := b.nc.Drain(); err != nil {
				b.nc.Close()
				if !errors.Is(err, nats.ErrConnectionClosed) {
					b.closeErr = fmt.Errorf("drain NATS connection: %w", err)
				}
			}
			t := time.NewTimer(b.opts.DrainTimeout + time.Second)
			select {
			case <-b.connClosed:
			case <-t.C:
				b.nc.Close()
				b.closeErr = errors.Join(b.closeErr, fmt.Errorf("drain NATS connection: not closed after %s", b.opts.DrainTimeout))
			}
			t.Stop()
		}
		b.shutdownServer()
	})
	return b.closeErr
}

func (b *Bus) shutdownServer() {
	if b.srv == nil {
		return
	}
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
}

// Ready reports whether the connection is up and JetStream answers.
func (b *Bus) Ready(ctx context.Context) error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("NATS connection is %s", st)
	}
	if _, err := b.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream account info: %w", err)
	}
	return nil
}

// JetStream is the context-first JetStream API on the bus's connection.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Conn is the underlying connection.
func (b *Bus) Conn() *nats.Conn { return b.nc }

// ClientURL is the embedded server's client URL when it listens (Options.ListenAddr), else "".
func (b *Bus) ClientURL() string {
	if b.srv == nil || b.opts.ListenAddr == "" {
		return ""
	}
	return b.srv.ClientURL()
}

// recordingDialer dials TCP and, while recording, remembers the dial errors, so that Open can
// say why the initial connect failed.
type recordingDialer struct {
	d         net.Dialer
	recording atomic.Bool

	mu   sync.Mutex
	errs []error
}

func (r *recordingDialer) Dial(network, address string) (net.Conn, error) {
	c, err := r.d.Dial(network, address)
	if err != nil && r.recording.Load() {
		r.mu.Lock()
		if len(r.errs) < 8 {
			r.errs = append(r.errs, err)
		}
		r.mu.Unlock()
	}
	return c, err
}

// err is the recorded dial errors, or nil.
func (r *recordingDialer) err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch len(r.errs) {
	case 0:
		return nil
	case 1:
		return r.errs[0]
	}
	return dialErrors(slices.Clone(r.errs))
}

// dialErrors are the dial errors of several servers.
type dialErrors []error

func (e dialErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e dialErrors) Unwrap() []error { return e }

// redactURLs hides the user info (user, password or token) of each comma separated URL.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil {
			// Do not echo what might be a credential inside an unparsable URL.
			if strings.Contains(p, "@") {
				p = "<unparsable URL>"
			}
			parts[i] = p
			continue
		}
		if u.User != nil {
			u.User = url.User("redacted")
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
