package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/podmedic/podmedic/bus"
)

// Conn is a read-only connection to a podmedic's audit stream (and its proposals bucket),
// opened by Open for `podmedic digest`.
type Conn struct {
	JS    jetstream.JetStream
	close func()
}

// Close disconnects (and stops the embedded server Open started).
func (c *Conn) Close() { c.close() }

// Open opens a podmedic's audit stream read-only: on the NATS server at natsURL, or, with an
// empty natsURL, in the embedded server's store in dataDir, of which it serves a copy
// in-process (so it works while podmedic runs, and never changes the store).
func Open(ctx context.Context, natsURL, dataDir string) (*Conn, error) {
	var (
		nc      *nats.Conn
		srv     *server.Server
		err     error
		cleanup = func() {}
	)
	switch {
	case natsURL != "":
		if nc, err = nats.Connect(natsURL, nats.Name("podmedic-digest"), nats.Timeout(5*time.Second)); err != nil {
			return nil, fmt.Errorf("connect to NATS at %s: %w", natsURL, err)
		}
	case dataDir != "":
		// A copy of the audit stream and the proposals bucket is served, never the store
		// itself: a running podmedic may be writing it, and a second server on the same files
		// would corrupt them.
		tmp, err := copyStore(dataDir)
		if err != nil {
			return nil, err
		}
		cleanup = func() { _ = os.RemoveAll(tmp) }
		srv, err = server.NewServer(&server.Options{ServerName: "podmedic-digest", JetStream: true, StoreDir: tmp,
			DontListen: true, NoSigs: true, NoLog: true})
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("open the store in %s: %w", dataDir, err)
		}
		srv.Start()
		if !srv.ReadyForConnections(10*time.Second) || !srv.JetStreamEnabled() {
			srv.Shutdown()
			cleanup()
			return nil, fmt.Errorf("open the store in %s: the embedded NATS server did not start", dataDir)
		}
		if nc, err = nats.Connect("", nats.InProcessServer(srv), nats.Name("podmedic-digest")); err != nil {
			srv.Shutdown()
			cleanup()
			return nil, err
		}
	default:
		return nil, errors.New("--nats-url or --data-dir is needed to read the audit stream")
	}
	closeAll := func() {
		nc.Close()
		if srv != nil {
			srv.Shutdown()
			srv.WaitForShutdown()
		}
		cleanup()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		closeAll()
		return nil, err
	}
	if _, err := js.Stream(ctx, bus.StreamAudit); err != nil {
		closeAll()
		return nil, fmt.Errorf("no audit stream %s: %w", bus.StreamAudit, err)
	}
	return &Conn{JS: js, close: closeAll}, nil
}

// copyStore copies the audit stream and the proposals bucket of the JetStream store in dataDir
// (dataDir/jetstream/<account>/streams/<stream>) into a new temporary directory and returns it.
func copyStore(dataDir string) (string, error) {
	root := filepath.Join(dataDir, "jetstream")
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "streams", bus.StreamAudit))
	if len(dirs) == 0 {
		return "", fmt.Errorf("no podmedic store in %s (no %s stream under %s); give the --data-dir of `podmedic run`, or --nats-url",
			dataDir, bus.StreamAudit, root)
	}
	kv, _ := filepath.Glob(filepath.Join(root, "*", "streams", "KV_"+bus.BucketProposals))
	tmp, err := os.MkdirTemp("", "podmedic-digest-")
	if err != nil {
		return "", err
	}
	for _, dir := range append(dirs, kv...) {
		rel, err := filepath.Rel(dataDir, dir)
		if err == nil {
			err = os.CopyFS(filepath.Join(tmp, rel), os.DirFS(dir))
		}
		if err != nil {
			_ = os.RemoveAll(tmp)
			return "", fmt.Errorf("copy the store in %s: %w", dataDir, err)
		}
	}
	return tmp, nil
}
