package dashboard

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// clientBuffer is how many events a live-update client may lag behind before events for it
// are dropped (and counted).
const clientBuffer = 64

// hub fans live-update events out to the connected clients without ever blocking the sender.
type hub struct {
	mu      sync.Mutex
	clients map[*sseClient]struct{}
	dropped prometheus.Counter
}

type sseClient struct {
	ch      chan []byte
	dropped int // guarded by hub.mu
}

func newHub() *hub { return &hub{clients: map[*sseClient]struct{}{}} }

func (h *hub) subscribe() *sseClient {
	c := &sseClient{ch: make(chan []byte, clientBuffer)}
	h.mu.Lock()
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	return c
}

func (h *hub) unsubscribe(c *sseClient) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

// publish sends msg to every client that has room for it; it never blocks.
func (h *hub) publish(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		select {
		case c.ch <- msg:
		default:
			c.dropped++
			if h.dropped != nil {
				h.dropped.Inc()
			}
		}
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// sseMessage encodes one event in the text/event-stream format.
func sseMessage(event string, data any) []byte {
	b, err := json.Marshal(data)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	var buf bytes.Buffer
	buf.Grow(len(b) + len(event) + 16)
	buf.WriteString("event: ")
	buf.WriteString(event)
	buf.WriteString("\ndata: ")
	buf.Write(b)
	buf.WriteString("\n\n")
	return buf.Bytes()
}

// heartbeat keeps idle streams (and proxies) alive.
const heartbeat = 15 * time.Second

// apiEvents streams live updates (GET /api/v1/events): events "tick", "action", "activity"
// and "incident", each with a JSON data line, and a comment every 15 s.
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c := s.hub.subscribe()
	s.m.clients.Inc()
	defer func() {
		s.hub.unsubscribe(c)
		s.m.clients.Dec()
	}()
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("retry: 2000\n: connected\n\n")); err != nil {
		return
	}
	if err := rc.Flush(); err != nil {
		return
	}
	t := time.NewTicker(heartbeat)
	defer t.Stop()
	for {
		var msg []byte
		select {
		case <-r.Context().Done():
			return
		case msg = <-c.ch:
		case <-t.C:
			msg = []byte(": ping\n\n")
		}
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(msg); err != nil {
			return
		}
		// Write whatever else is queued before flushing once.
		for n := len(c.ch); n > 0; n-- {
			if _, err := w.Write(<-c.ch); err != nil {
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
