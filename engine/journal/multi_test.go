package journal

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ares-sre/ares/engine"
)

// Multi records intents in the members that record them and routes each outcome back.
func TestMultiActionJournal(t *testing.T) {
	ctx := context.Background()
	s := reopenable(t, Config{Backend: BackendSQLite, Path: filepath.Join(t.TempDir(), "j.db")})
	p, _ := NewPrinter(&nopWriter{}, "text")
	var m engine.Journal = Multi{p, s}
	aj, ok := m.(engine.ActionJournal)
	if !ok {
		t.Fatal("Multi does not implement engine.ActionJournal")
	}
	a := engine.Action{Decision: restart, Verdict: engine.VerdictAdmit}
	id, err := aj.Intent(ctx, 1, a)
	if err != nil {
		t.Fatal(err)
	}
	a.Outcome = &engine.Outcome{Result: engine.ResultOK}
	if err := aj.Outcome(ctx, id, a); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if st, _ := s.Stats(ctx); st.Intents != 1 || st.Unfinished != 0 {
		t.Errorf("stats = %+v", st)
	}
}

type nopWriter struct{}

func (*nopWriter) Write(b []byte) (int, error) { return len(b), nil }
