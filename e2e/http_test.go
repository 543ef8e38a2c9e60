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

	"github.com/podmedic/podmedic/internal/testenv/slackenv"
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

// TestSlackInteractionsBounded: requests to /slack/interactions can be checked only once
// their body is in, so a flood of slow ones is bounded: with --http-max-interactions 2 and two
// clients trickling their bodies, a third request is answered 503 at once; once they are gone
// the next is served again (and refused 401: it is not signed).
func TestSlackInteractionsBounded(t *testing.T) {
	env := cluster(t)
	const bot, signing = "xoxb-e2e-bot-token-7f3a", "e2e-signing-secret-5d1c"
	sl := slackenv.Start(t, slackenv.WithBotToken(bot))
	ns := namespace(t, env, "bounded-"+strings.ReplaceAll(time.Now().Format("150405.000"), ".", ""))
	cfg := writeRules(t, ns, `version: 1
cluster: e2e
namespaces: {include: [{{ns}}]}
slack:
  api_url: `+sl.URL()+`
  default_channel: "#data-oncall"
  socket_mode: false
  approvers: {users: [U0ALICE]}
rules:
  - name: init-stuck
    detect: {kind: InitStuck, init_timeout: 15m}
`)
	pm := startPodmedicEnv(t, env, t.TempDir(), []string{"SLACK_BOT_TOKEN=" + bot, "SLACK_SIGNING_SECRET=" + signing},
		"--config", cfg, "--http-max-interactions", "2")
	url := "http://" + pm.httpAddr + "/slack/interactions"
	post := func() int {
		resp, err := http.Post(url, "application/x-www-form-urlencoded", strings.NewReader("payload=%7B%7D"))
		require.NoError(t, err)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, post(), "an unsigned request is refused")

	var slow []net.Conn
	for range 2 {
		conn, err := net.Dial("tcp", pm.httpAddr)
		require.NoError(t, err)
		slow = append(slow, conn)
		_, err = fmt.Fprintf(conn, "POST /slack/interactions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\npayload=", pm.httpAddr)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return post() == http.StatusServiceUnavailable }, 30*time.Second, 100*time.Millisecond,
		"a third request while two trickle is answered 503")
	for _, c := range slow {
		require.NoError(t, c.Close())
	}
	require.Eventually(t, func() bool { return post() == http.StatusUnauthorized }, 10*time.Second, 50*time.Millisecond,
		"served again once the slow clients are gone")
}
