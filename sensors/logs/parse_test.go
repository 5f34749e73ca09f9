package logs

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ares-sre/ares/engine"
	"github.com/ares-sre/ares/engine/schema"
)

func TestParseLine(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes
	tests := []struct {
		name  string
		line  string
		isErr bool
		msg   string
	}{
		{"json error", `{"time":"2026-12-04T10:00:00Z","level":"error","msg":"boom"}`, true, "boom"},
		{"json info", `{"level":"info","msg":"fine"}`, false, ""},
		{"json level case", `{"level":"ERROR","msg":"upper"}`, true, "upper"},
		{"json key case", `{"Level":"Error","Msg":"keys"}`, true, "keys"},
		{"lvl", `{"lvl":"err","message":"from message"}`, true, "from message"},
		{"severity critical", `{"severity":"CRITICAL","msg":"crit"}`, true, "crit"},
		{"fatal", `{"level":"fatal","msg":"f"}`, true, "f"},
		{"panic", `{"level":" panic ","msg":"p"}`, true, "p"},
		{"warn", `{"level":"warn","msg":"w"}`, false, ""},
		{"numeric error", `{"level":50,"msg":"pino"}`, true, "pino"},
		{"numeric info", `{"level":30,"msg":"pino"}`, false, ""},
		{"null level then lvl", `{"level":null,"lvl":"error","msg":"x"}`, true, "x"},
		{"no msg", `{"level":"error","code":7}`, true, `{"level":"error","code":7}`},
		{"non-string msg", `{"level":"error","msg":{"a":1}}`, true, `{"a":1}`},
		{"no level", `{"msg":"ERROR in text but JSON without level"}`, false, ""},
		{"bad level type", `{"level":true,"msg":"x"}`, false, ""},
		{"bad level string", `{"level":"\ud800x","msg":"x"}`, false, ""},
		{"plain ERROR", `2026-12-04 10:00:00 ERROR db down`, true, "2026-12-04 10:00:00 ERROR db down"},
		{"plain ERROR prefix", `ERROR db down`, true, "ERROR db down"},
		{"plain error lower", `something error happened`, false, ""},
		{"logfmt", `time=now level=ERROR msg="x"`, true, `time=now level=ERROR msg="x"`},
		{"logfmt info", `time=now level=info msg="x"`, false, ""},
		{"broken json with ERROR", `{"level":"error", ERROR x`, true, `{"level":"error", ERROR x`},
		{"broken json", `{"level":"error"`, false, ""},
		{"empty", ``, false, ""},
		{"spaces and CR", "  ERROR x\r", true, "ERROR x"},
		{"long msg clipped", `{"level":"error","msg":"` + long + `"}`, true, long[:maxMsg]},
		{"invalid utf8", "ERROR \xff\xfe bad", true, "ERROR \uFFFD bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isErr, msg := parseLine([]byte(tt.line))
			if isErr != tt.isErr || msg != tt.msg {
				t.Errorf("parseLine(%q) = %v, %q; want %v, %q", tt.line, isErr, msg, tt.isErr, tt.msg)
			}
		})
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		`{"level":"error","msg":"boom"}`, `{"lvl":50}`, `ERROR x`, `level=error`, "\xff{", `{"msg":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		isErr, msg := parseLine(line)
		if len(msg) > maxMsg || !utf8.ValidString(msg) {
			t.Fatalf("msg %q: %d bytes or invalid UTF-8", msg, len(msg))
		}
		if !isErr && msg != "" {
			t.Fatalf("not an error but msg %q", msg)
		}
		// Through the line writer, in odd chunks, with a small line cap: no panic, bounded.
		svc := &service{buckets: make([]bucket, 60)}
		w := &lineWriter{max: 64, svc: svc}
		for p := line; len(p) > 0; {
			n := min(len(p), 7)
			w.Write(p[:n])
			p = p[n:]
			if cap(w.buf) > 64 {
				t.Fatalf("line buffer grew to %d", cap(w.buf))
			}
		}
		w.flush()
	})
}

func TestLineWriterBounded(t *testing.T) {
	svc := &service{buckets: make([]bucket, 60)}
	w := &lineWriter{max: 100, svc: svc}
	huge := strings.Repeat("x", 1<<20)
	// A 1 MiB line with ERROR beyond the cap, in chunks: not an error (the tail is skipped).
	for i := 0; i < len(huge); i += 4096 {
		w.Write([]byte(huge[i : i+4096]))
	}
	w.Write([]byte(" ERROR late\n"))
	// Then an error line split across writes, and a last line without newline.
	w.Write([]byte(`{"level":"er`))
	w.Write([]byte(`ror","msg":"split"}` + "\nplain\nERROR last"))
	w.flush()
	if cap(w.buf) > 100 {
		t.Errorf("buffer capacity %d, want at most the line cap", cap(w.buf))
	}
	if n := svc.count(time.Now().Unix()); n != 2 {
		t.Errorf("counted %d errors, want 2 (the split JSON line and the last line)", n)
	}
	if svc.lastErr != "ERROR last" {
		t.Errorf("last error %q", svc.lastErr)
	}
}

func TestWindow(t *testing.T) {
	svc := &service{buckets: make([]bucket, 60)}
	now := time.Unix(1_800_000_000, 0)
	svc.record(now.Add(-90*time.Second), "old")  // outside the window
	svc.record(now.Add(-58*time.Second), "edge") // inside
	for range 3 {
		svc.record(now, "new")
	}
	svc.record(now.Add(time.Second), "future") // not yet
	if n := svc.count(now.Unix()); n != 4 {
		t.Errorf("count = %d, want 4", n)
	}
	// A slot is reused 60 s later: the ring holds one window only.
	svc.record(now.Add(-30*time.Second), "a")
	svc.record(now.Add(30*time.Second), "b") // the slot of -30 s
	if n := svc.count(now.Add(30 * time.Second).Unix()); n != 5 {
		t.Errorf("count 30 s later = %d, want 5 (now ×3, +1 s, +30 s)", n)
	}
}

// The section the sensor fills matches docs/facts.schema.json, with and without an error seen.
func TestSchema(t *testing.T) {
	f := engine.NewFacts(1, time.Now())
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	f.Service("web").Logs = &engine.Logs{ErrorsPerMin: 2.5, LastError: "boom", LastErrorAt: &at}
	f.Service("quiet").Logs = &engine.Logs{}
	raw, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(raw); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	bad := strings.Replace(string(raw), `"errors_per_min":2.5`, `"errors_per_min":-1`, 1)
	if schema.Validate([]byte(bad)) == nil {
		t.Fatal("negative errors_per_min accepted")
	}
}
