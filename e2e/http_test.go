package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHTTPServerCutsOffTricklingClients: a client that sends its body a byte at a time is cut
// off once --http-read-timeout has passed, instead of holding a connection (and a goroutine)
// for as long as it likes. Before, 500 such clients were held 69 s and more.
func TestHTTPServerCutsOffTricklingClients(t *testing.T) {
	env := cluster(t)
	pm := startPodmedic(t, env, t.TempDir(), "--http-read-timeout", "1s", "--http-read-header-timeout", "1s")

	conn, err := net.Dial("tcp", pm.httpAddr)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /healthz HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n", pm.httpAddr)
	require.NoError(t, err)

	start := time.Now()
	closed := make(chan error, 1)
	go func() {
		// The answer to the request (health needs no body), then the end of the connection.
		r := bufio.NewReader(conn)
		resp, err := http.ReadResponse(r, nil)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			_, err = r.ReadByte()
		}
		closed <- err
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-closed:
			require.Error(t, err)
			require.True(t, errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset"), "closed by the server: %v", err)
			t.Logf("trickling client cut off after %s", time.Since(start).Round(100*time.Millisecond))
			return
		case <-tick.C:
			if time.Since(start) > 20*time.Second {
				t.Fatal("the server still holds a trickling client after 20s (read timeout 1s)")
			}
			_, _ = conn.Write([]byte("x")) // a byte of body every 100ms
		}
	}
}
