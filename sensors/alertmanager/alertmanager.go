// Package alertmanager is the Alertmanager receiver (facts name "alertmanager"): an HTTP
// handler for Alertmanager's webhook notifications (payload version 4) that keeps the firing
// alerts in memory, and a sensor whose Collect puts them in facts.alerts.
//
// Mount Handler on the daemon's HTTP server without stripping the path: it serves
// POST /api/v1/alerts and, as an alias, POST /api/v2/alerts. Point an Alertmanager webhook
// receiver at it:
//
//	receivers:
//	  - name: ares
//	    webhook_configs:
//	      - url: http://ares:8080/api/v1/alerts
//	        send_resolved: true
//
// A firing alert is kept, keyed by its fingerprint (a hash of its labels when it has none),
// until a resolved notification for it arrives, its endsAt passes, or Options.TTL passes
// without a notification for it (Alertmanager repeats firing alerts every repeat_interval, 4h
// by default). At most Options.MaxAlerts alerts and about Options.MaxBytes of labels and
// annotations are kept; beyond either the least recently notified are dropped and counted.
//
// A payload is validated in full before it changes anything: a malformed one (not JSON, not
// version "4", no alerts array, an alert with an unknown status or a bad time, a body over
// 1 MiB) is answered 400 with {"error": "..."} and changes nothing.
package alertmanager

import (
	"bytes"
	"cmp"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ares-sre/ares/engine"
)

// Paths the handler serves (POST).
const (
	PathV1 = "/api/v1/alerts"
	PathV2 = "/api/v2/alerts" // alias: the same webhook payload
)

// MaxBody is the largest payload accepted, in bytes.
const MaxBody = 1 << 20

// Options configure a Receiver. The zero value is usable.
type Options struct {
	ServiceLabel string        // label naming the alert's service; default "service"
	MaxAlerts    int           // firing alerts kept; default 10000
	MaxBytes     int           // approximate bytes of labels and annotations kept; default 32 MiB
	TTL          time.Duration // a firing alert not notified for this long expires; default 5h, <0: never
	Now          func() time.Time
}

// Receiver is the Alertmanager receiver. It is safe for concurrent use.
type Receiver struct {
	opt Options
	log *slog.Logger
	mux *http.ServeMux

	dropped atomic.Uint64

	mu    sync.Mutex
	byKey map[string]*list.Element // of *stored
	order *list.List               // least recently notified first
	bytes int
}

type stored struct {
	key      string
	alert    engine.Alert
	endsAt   time.Time // zero: no end announced
	notified time.Time // when the last notification for it arrived
	size     int
}

var _ engine.Sensor = (*Receiver)(nil)

// New returns an empty receiver.
func New(opt Options, log *slog.Logger) *Receiver {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.ServiceLabel == "" {
		opt.ServiceLabel = "service"
	}
	if opt.MaxAlerts <= 0 {
		opt.MaxAlerts = 10000
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = 32 << 20
	}
	if opt.TTL == 0 {
		opt.TTL = 5 * time.Hour
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &Receiver{opt: opt, log: log.With("sensor", "alertmanager"), byKey: map[string]*list.Element{}, order: list.New()}
	r.mux = http.NewServeMux()
	r.mux.HandleFunc("POST "+PathV1, r.receive)
	r.mux.HandleFunc("POST "+PathV2, r.receive)
	return r
}

// Name is the facts key.
func (r *Receiver) Name() string { return "alertmanager" }

// Handler serves POST /api/v1/alerts and POST /api/v2/alerts (full paths: mount it without
// stripping a prefix). Other paths get 404, other methods 405.
func (r *Receiver) Handler() http.Handler { return r.mux }

// Dropped is the number of firing alerts dropped because the receiver was full.
func (r *Receiver) Dropped() uint64 { return r.dropped.Load() }

// Len is the number of firing alerts kept (expired ones included until the next Collect).
func (r *Receiver) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len()
}

// Collect drops the expired alerts and puts the others in f.Alerts, sorted by name, service,
// start and key.
func (r *Receiver) Collect(_ context.Context, f *engine.Facts) error {
	now := r.opt.Now()
	r.mu.Lock()
	var next *list.Element
	for e := r.order.Front(); e != nil; e = next {
		next = e.Next()
		if s := e.Value.(*stored); r.expired(s, now) {
			r.removeElem(e)
		}
	}
	out := make([]stored, 0, r.order.Len())
	for e := r.order.Front(); e != nil; e = e.Next() {
		out = append(out, *e.Value.(*stored))
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b stored) int {
		return cmp.Or(cmp.Compare(a.alert.Name, b.alert.Name), cmp.Compare(a.alert.Service, b.alert.Service),
			a.alert.StartsAt.Compare(b.alert.StartsAt), cmp.Compare(a.key, b.key))
	})
	for _, s := range out {
		a := s.alert
		a.Labels, a.Annotations = maps.Clone(a.Labels), maps.Clone(a.Annotations)
		f.Alerts = append(f.Alerts, a)
	}
	return nil
}

func (r *Receiver) expired(s *stored, now time.Time) bool {
	return (!s.endsAt.IsZero() && !s.endsAt.After(now)) || (r.opt.TTL > 0 && now.Sub(s.notified) >= r.opt.TTL)
}

// Webhook is Alertmanager's webhook payload, version 4 (the fields ARES reads).
type Webhook struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a Webhook.
type WebhookAlert struct {
	Status       string            `json:"status"` // firing|resolved
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // zero (0001-01-01T00:00:00Z) while firing
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Decode parses and validates one payload: JSON with nothing after it, version "4", an alerts
// array, every alert firing or resolved with valid times. It never panics.
func Decode(body []byte) (*Webhook, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var w struct {
		Webhook
		Alerts *[]WebhookAlert `json:"alerts"`
	}
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("not a webhook payload: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("not a webhook payload: data after the JSON object")
	}
	if w.Version != "4" {
		return nil, fmt.Errorf("version: must be \"4\" (got %q)", w.Version)
	}
	if w.Alerts == nil {
		return nil, errors.New("alerts: missing")
	}
	w.Webhook.Alerts = *w.Alerts
	for i := range w.Webhook.Alerts {
		a := &w.Webhook.Alerts[i]
		if a.Status != "firing" && a.Status != "resolved" {
			return nil, fmt.Errorf("alerts[%d].status: must be firing or resolved (got %q)", i, a.Status)
		}
		if a.StartsAt.IsZero() {
			return nil, fmt.Errorf("alerts[%d].startsAt: missing", i)
		}
		if !a.EndsAt.IsZero() && a.EndsAt.Before(a.StartsAt) {
			return nil, fmt.Errorf("alerts[%d].endsAt: before startsAt", i)
		}
	}
	return &w.Webhook, nil
}

func (r *Receiver) receive(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, MaxBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			err = fmt.Errorf("body over %d bytes", MaxBody)
		}
		reply(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	wh, err := Decode(body)
	if err != nil {
		reply(w, http.StatusBadRequest, map[string]any{"error": err.Error()})
		return
	}
	firing, resolved := r.apply(wh)
	reply(w, http.StatusOK, map[string]any{"firing": firing, "resolved": resolved})
}

func reply(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// apply stores the firing alerts and removes the resolved ones, in payload order.
func (r *Receiver) apply(wh *Webhook) (firing, resolved int) {
	now := r.opt.Now()
	dropped := 0
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range wh.Alerts {
		a := &wh.Alerts[i]
		key := a.Fingerprint
		if key == "" {
			key = labelsKey(a.Labels)
		}
		if a.Status == "resolved" || (!a.EndsAt.IsZero() && !a.EndsAt.After(now)) {
			resolved++
			if e, ok := r.byKey[key]; ok {
				r.removeElem(e)
			}
			continue
		}
		firing++
		s := &stored{key: key, endsAt: a.EndsAt, notified: now, size: size(a), alert: engine.Alert{
			Name: a.Labels["alertname"], Service: a.Labels[r.opt.ServiceLabel], Severity: a.Labels["severity"],
			Labels: a.Labels, Annotations: a.Annotations, StartsAt: a.StartsAt.UTC(),
		}}
		if e, ok := r.byKey[key]; ok {
			r.removeElem(e)
		}
		r.byKey[key] = r.order.PushBack(s)
		r.bytes += s.size
		for r.order.Len() > r.opt.MaxAlerts || (r.bytes > r.opt.MaxBytes && r.order.Len() > 1) {
			r.removeElem(r.order.Front())
			dropped++
		}
	}
	if dropped > 0 {
		r.dropped.Add(uint64(dropped))
		r.log.Warn("receiver full, dropped the least recently notified alerts", "dropped", dropped, "kept", r.order.Len())
	}
	return firing, resolved
}

func (r *Receiver) removeElem(e *list.Element) {
	s := e.Value.(*stored)
	r.order.Remove(e)
	delete(r.byKey, s.key)
	r.bytes -= s.size
}

// size approximates the memory an alert holds.
func size(a *WebhookAlert) int {
	n := 256 + len(a.Fingerprint)
	for k, v := range a.Labels {
		n += 32 + len(k) + len(v)
	}
	for k, v := range a.Annotations {
		n += 32 + len(k) + len(v)
	}
	return n
}

// labelsKey identifies an alert without a fingerprint by its label set.
func labelsKey(labels map[string]string) string {
	h := fnv.New64a()
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return "labels:" + strconv.FormatUint(h.Sum64(), 16)
}
