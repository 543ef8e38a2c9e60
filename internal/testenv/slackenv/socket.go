package slackenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsConn is one Socket Mode connection. One goroutine (run) writes to it, messages and pings
// alike, so no write ever waits on a lock (a lock held across a blocked pipe write would stop a
// synctest bubble's clock).
type wsConn struct {
	c    *websocket.Conn
	out  chan []byte
	done chan struct{}
	once sync.Once
}

// send queues a message; it fails when the connection is gone.
func (w *wsConn) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	select {
	case w.out <- b:
		return nil
	case <-w.done:
		return ErrNotConnected
	}
}

// run writes queued messages and pings every interval until the connection closes.
func (w *wsConn) run(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var err error
		select {
		case <-w.done:
			return
		case b := <-w.out:
			_ = w.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			err = w.c.WriteMessage(websocket.TextMessage, b)
		case <-t.C:
			err = w.c.WriteControl(websocket.PingMessage, []byte("slackenv"), time.Now().Add(10*time.Second))
		}
		if err != nil {
			w.close()
			return
		}
	}
}

func (w *wsConn) close() {
	w.once.Do(func() {
		close(w.done)
		_ = w.c.Close()
	})
}

// serveSocket is the Socket Mode websocket: hello, pings, envelopes pushed by the test, and
// the acks the client sends back.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(2) // this handler and its writer; Close waits for both
	s.mu.Unlock()
	defer s.wg.Done()

	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.wg.Done()
		return
	}
	wc := &wsConn{c: conn, out: make(chan []byte, 64), done: make(chan struct{})}
	defer wc.close()
	go func() {
		defer s.wg.Done()
		wc.run(s.pingInterval)
	}()
	if err := wc.send(map[string]any{
		"type": "hello", "num_connections": 1,
		"debug_info":      map[string]any{"host": "slackenv", "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": "A0PODMEDIC"},
	}); err != nil {
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, wc)
	s.hellos++
	s.notifyLocked()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.conns = slices.DeleteFunc(s.conns, func(c *wsConn) bool { return c == wc })
		s.notifyLocked()
		s.mu.Unlock()
	}()

	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		s.acks = append(s.acks, Ack{EnvelopeID: ack.EnvelopeID, Payload: ack.Payload, At: time.Now()})
		s.notifyLocked()
		s.mu.Unlock()
	}
}

// ErrNotConnected is returned when an envelope is sent while no Socket Mode client is connected.
var ErrNotConnected = errors.New("slackenv: no Socket Mode connection")

// SendInteractive pushes an interactive envelope (e.g. a block_actions payload, see Click) to
// the newest Socket Mode connection and returns its envelope id.
func (s *Server) SendInteractive(payload []byte) (string, error) {
	return s.SendEnvelope("interactive", payload)
}

// SendEnvelope pushes an envelope of any type to the newest Socket Mode connection.
func (s *Server) SendEnvelope(typ string, payload []byte) (string, error) {
	s.mu.Lock()
	if len(s.conns) == 0 {
		s.mu.Unlock()
		return "", ErrNotConnected
	}
	c := s.conns[len(s.conns)-1]
	s.envSeq++
	id := fmt.Sprintf("env-%04d", s.envSeq)
	s.mu.Unlock()
	env := map[string]any{"envelope_id": id, "type": typ, "payload": json.RawMessage(payload),
		"accepts_response_payload": false, "retry_attempt": 0, "retry_reason": ""}
	if err := c.send(env); err != nil {
		return "", err
	}
	return id, nil
}

// Disconnect asks every Socket Mode client to reconnect, as Slack does before it recycles a
// connection.
func (s *Server) Disconnect() {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.send(map[string]any{"type": "disconnect", "reason": "refresh_requested",
			"debug_info": map[string]any{"host": "slackenv"}})
	}
}

// Connections returns how many Socket Mode clients are connected now.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Hellos returns how many Socket Mode connections were ever greeted.
func (s *Server) Hellos() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hellos
}

// Acks returns the acknowledgements received so far, in order.
func (s *Server) Acks() []Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.acks)
}

// WaitConnected waits until a Socket Mode client is connected.
func (s *Server) WaitConnected(ctx context.Context) error {
	return s.Wait(ctx, func(s *Server) bool { return s.Connections() > 0 })
}

// WaitAck waits for the acknowledgement of an envelope.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	var got Ack
	err := s.Wait(ctx, func(s *Server) bool {
		for _, a := range s.Acks() {
			if a.EnvelopeID == envelopeID {
				got = a
				return true
			}
		}
		return false
	})
	return got, err
}
