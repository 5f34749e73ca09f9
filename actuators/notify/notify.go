// Package notify is the actuator that tells people: it POSTs each action it is given, as JSON,
// to a webhook (a chat bridge, an incident tool, an Alertmanager-style receiver).
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ares-sre/ares/engine"
)

// Payload is the JSON body of every webhook call.
type Payload struct {
	Action  string    `json:"action"`
	Service string    `json:"service"`
	Replica string    `json:"replica"` // empty for service-level actions
	Reason  string    `json:"reason"`
	Verdict string    `json:"verdict"`
	Time    time.Time `json:"time"`
}

// Notifier posts actions to a webhook.
type Notifier struct {
	url  string
	http *http.Client
	log  *slog.Logger
	now  func() time.Time
}

var _ engine.Actuator = (*Notifier)(nil)

// New returns a notifier that posts to url, each call bounded by timeout (default 5s). With an
// empty url a notification is only logged (at warn level, saying how to configure a webhook)
// and its outcome says so: a decision to tell a human is never lost, and a host without a
// webhook is not flooded with failed actions. log may be nil; the caller scopes it.
func New(url string, timeout time.Duration, log *slog.Logger) *Notifier {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Notifier{url: url, http: &http.Client{Timeout: timeout}, log: log, now: time.Now}
}

// LoggedOnly is the outcome detail of a notification made without a webhook.
const LoggedOnly = "logged only: no webhook configured (set notify.webhook_url)"

// Name is the actuator's name in logs and outcomes.
func (n *Notifier) Name() string { return "notify" }

// Act posts the action. A non-2xx answer is an error that carries the status and the first
// 200 bytes of the body. Errors never include the webhook URL: it often holds a token.
func (n *Notifier) Act(ctx context.Context, a engine.Action) (engine.Outcome, error) {
	start := time.Now()
	out, err := n.post(ctx, a)
	out.Duration = time.Since(start)
	if err != nil {
		out.Result, out.Error = engine.ResultError, err.Error()
		return out, err
	}
	out.Result = engine.ResultOK
	n.log.Debug("notified", "action", a.Action, "service", a.Service, "replica", a.Replica, "duration", out.Duration)
	return out, nil
}

func (n *Notifier) post(ctx context.Context, a engine.Action) (engine.Outcome, error) {
	if n.url == "" {
		n.log.Warn("notification logged only: no webhook configured (set notify.webhook_url)",
			"action", a.Action, "service", a.Service, "replica", a.Replica, "reason", a.Reason)
		return engine.Outcome{Detail: LoggedOnly}, nil
	}
	body, err := json.Marshal(Payload{
		Action: a.Action, Service: a.Service, Replica: a.Replica, Reason: a.Reason,
		Verdict: a.Verdict, Time: n.now().UTC(),
	})
	if err != nil {
		return engine.Outcome{}, fmt.Errorf("notify: encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return engine.Outcome{}, fmt.Errorf("notify: webhook url: %w", redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ares")
	resp, err := n.http.Do(req)
	if err != nil {
		return engine.Outcome{}, fmt.Errorf("notify: post to %s: %w", req.URL.Host, redact(err))
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return engine.Outcome{}, fmt.Errorf("notify: post to %s: %s: %q", req.URL.Host, resp.Status, scrub(string(head), req.URL))
	}
	return engine.Outcome{Detail: fmt.Sprintf("posted to %s: %s", req.URL.Host, resp.Status)}, nil
}

// scrub removes from a webhook's answer what of its URL may be a token: servers echo the
// path in error pages ("Cannot POST /hooks/T0/B0/secret").
func scrub(body string, u *url.URL) string {
	for _, part := range []string{u.String(), u.RequestURI(), u.EscapedPath(), u.Path, u.RawQuery, u.Query().Encode()} {
		if len(part) > 1 {
			body = strings.ReplaceAll(body, part, "***")
		}
	}
	for _, vs := range u.Query() {
		for _, v := range vs {
			if len(v) > 3 {
				body = strings.ReplaceAll(body, v, "***")
			}
		}
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= 8 { // token-like path segments
			body = strings.ReplaceAll(body, seg, "***")
		}
	}
	if p, ok := u.User.Password(); ok && p != "" {
		body = strings.ReplaceAll(body, p, "***")
	}
	return body
}

// redact strips the URL (and any token in it) from an HTTP client error.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
