package journal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

func record(tick uint64, dry bool) engine.TickRecord {
	d := engine.Decision{Action: "restart", Service: "cart", Replica: "shop-cart-1", Reason: "exited with code 137 (OOMKilled)"}
	a := engine.Action{Decision: d, Verdict: engine.VerdictAdmit}
	if dry {
		a.Verdict = engine.VerdictDryRun
	} else {
		a.Outcome = &engine.Outcome{Result: engine.ResultOK, Duration: 12 * time.Millisecond}
	}
	return engine.TickRecord{Tick: tick, At: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), DryRun: dry,
		PolicyRev: "abc", Facts: engine.NewFacts(tick, time.Now()), Decisions: []engine.Decision{d}, Actions: []engine.Action{a}}
}

func TestPrinterText(t *testing.T) {
	var buf bytes.Buffer
	p, _ := NewPrinter(&buf, "text")
	if err := p.Record(context.Background(), record(42, true)); err != nil {
		t.Fatal(err)
	}
	want := "tick 42  restart  cart/shop-cart-1  exited with code 137 (OOMKilled)\n"
	if buf.String() != want {
		t.Errorf("got %q\nwant %q", buf.String(), want)
	}
	buf.Reset()
	_ = p.Record(context.Background(), engine.TickRecord{Tick: 43})
	if buf.Len() != 0 {
		t.Errorf("quiet tick printed %q", buf.String())
	}
	_ = p.Record(context.Background(), record(44, false))
	if !strings.Contains(buf.String(), "[done in 12ms]") {
		t.Errorf("live action outcome missing: %q", buf.String())
	}
}

func TestPrinterJSONOneObjectPerTick(t *testing.T) {
	var buf bytes.Buffer
	p, _ := NewPrinter(&buf, "json")
	_ = p.Record(context.Background(), record(1, true))
	_ = p.Record(context.Background(), engine.TickRecord{Tick: 2, Decisions: []engine.Decision{}})
	sc := bufio.NewScanner(&buf)
	var ticks []PrintedTick
	for sc.Scan() {
		var pt PrintedTick
		if err := json.Unmarshal(sc.Bytes(), &pt); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ticks = append(ticks, pt)
	}
	if len(ticks) != 2 || ticks[0].Decisions[0].Replica != "shop-cart-1" || !ticks[0].DryRun || ticks[1].Tick != 2 {
		t.Errorf("ticks = %+v", ticks)
	}
	if _, err := NewPrinter(&buf, "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestFileAppendsAndSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.jsonl")
	for i := uint64(1); i <= 2; i++ { // two processes, one after the other
		j, err := OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := j.Record(context.Background(), record(i, false)); err != nil {
			t.Fatal(err)
		}
		_ = j.Close()
	}
	raw, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2", len(lines))
	}
	var rec engine.TickRecord
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil || rec.Tick != 2 || rec.Actions[0].Outcome.Result != "ok" {
		t.Errorf("second record = %+v, %v", rec, err)
	}
}

type failing struct{}

func (failing) Record(context.Context, engine.TickRecord) error { return errors.New("disk full") }

func TestMultiKeepsGoing(t *testing.T) {
	var buf bytes.Buffer
	p, _ := NewPrinter(&buf, "text")
	err := Multi{failing{}, p}.Record(context.Background(), record(7, true))
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v", err)
	}
	if !strings.Contains(buf.String(), "tick 7") {
		t.Error("a failing journal stopped the next one")
	}
}
