package engine

import (
	"testing"
	"time"
)

func TestOwnActions(t *testing.T) {
	o := NewOwnActions(time.Minute)
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	o.now = func() time.Time { return now }
	if o.Expected("c1") {
		t.Fatal("expected before Expect")
	}
	o.Expect("c1")
	if !o.Expected("c1") || o.Expected("c2") {
		t.Fatal("Expect not remembered, or remembered for another id")
	}
	o.Forget("c1")
	if o.Expected("c1") {
		t.Fatal("still expected after Forget")
	}
	o.Expect("c1")
	now = now.Add(61 * time.Second)
	if o.Expected("c1") {
		t.Error("expected after the ttl")
	}
	var nilOwn *OwnActions // a nil registry expects nothing and ignores calls
	nilOwn.Expect("c1")
	nilOwn.Forget("c1")
	if nilOwn.Expected("c1") {
		t.Error("nil registry expects")
	}
}
