package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func detectScores(t *testing.T, o detectOpts, in string) []float64 {
	t.Helper()
	var out bytes.Buffer
	if err := runDetect(context.Background(), o, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[0] != "anomaly_score" {
		t.Fatalf("header %q", lines[0])
	}
	var s []float64
	for _, l := range lines[1:] {
		v, err := strconv.ParseFloat(l, 64)
		if err != nil || v < 0 || v > 1 {
			t.Fatalf("score line %q (%v)", l, err)
		}
		s = append(s, v)
	}
	return s
}

func TestDetectBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	var b strings.Builder
	b.WriteString("a,b,label\n") // label is a feature like any other
	for i := range 500 {
		x, y := rng.NormFloat64(), rng.NormFloat64()
		if i == 7 {
			x, y = 9, -9
		}
		fmt.Fprintf(&b, "%g,%g,0\n", x, y)
	}
	o := detectOpts{mode: "batch", trees: 100, sample: 256, seed: 1}
	s := detectScores(t, o, b.String())
	if len(s) != 500 {
		t.Fatalf("%d scores for 500 rows", len(s))
	}
	for i, v := range s {
		if i != 7 && v >= s[7] {
			t.Fatalf("row %d scores %.3f ≥ the outlier's %.3f", i, v, s[7])
		}
	}
	if again := detectScores(t, o, b.String()); fmt.Sprint(again) != fmt.Sprint(s) {
		t.Fatal("same seed, different scores")
	}

	// --by-content: the input reversed gives the scores reversed.
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	rev := []string{lines[0]}
	for i := len(lines) - 1; i >= 1; i-- {
		rev = append(rev, lines[i])
	}
	o.byContent = true
	fwd := detectScores(t, o, b.String())
	back := detectScores(t, o, strings.Join(rev, "\n")+"\n")
	for i := range fwd {
		if fwd[i] != back[len(back)-1-i] {
			t.Fatalf("--by-content: row %d scores %v, reversed %v", i, fwd[i], back[len(back)-1-i])
		}
	}
}

func TestDetectStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	const n, at = 1500, 1000
	for i := range n {
		v := 50 + 5*math.Sin(float64(i)/20) + rng.NormFloat64()
		if i >= at && i < at+20 {
			v += 40
		}
		fmt.Fprintf(&b, "2026-01-01 00:%02d:00,%g\n", i%60, v)
	}
	s := detectScores(t, detectOpts{mode: "stream", trees: 100, sample: 256, seed: 1}, b.String())
	if len(s) != n {
		t.Fatalf("%d scores for %d rows", len(s), n)
	}
	for i := range 60 {
		if s[i] != 0 {
			t.Fatalf("score %v at row %d during warm-up", s[i], i)
		}
	}
	if s[at] < 0.5 {
		t.Errorf("spike at row %d scores %.3f, want ≥ 0.5 (high)", at, s[at])
	}
	high := 0
	for i := 200; i < at; i++ {
		if s[i] >= 0.5 {
			high++
		}
	}
	if high > 5 {
		t.Errorf("%d high scores on the steady part", high)
	}
	// No look-ahead: the scores of a prefix do not depend on what follows.
	cut := strings.SplitAfterN(b.String(), "\n", at+2)
	prefix := detectScores(t, detectOpts{mode: "stream", trees: 100, sample: 256, seed: 1}, strings.Join(cut[:at+1], ""))
	for i := range prefix {
		if prefix[i] != s[i] {
			t.Fatalf("row %d: %v on the prefix, %v on the whole series", i, prefix[i], s[i])
		}
	}
}

func TestDetectErrors(t *testing.T) {
	for _, tc := range []struct {
		name, mode, in, want string
	}{
		{"empty", "batch", "", "empty input"},
		{"header only", "batch", "a,b\n", "no rows"},
		{"non-numeric", "batch", "a,b\n1,2\n3,x\n", `line 3, column "b": "x" is not a number`},
		{"ragged", "batch", "a,b\n1,2\n3\n", "line 3: 1 cells, the header has 2"},
		{"inf", "batch", "a\n1\nInf\n", "line 3"},
		{"stream header", "stream", "time,v\n1,2\n", "timestamp,value"},
		{"stream value", "stream", "timestamp,value\nt,1\nt,oops\n", `line 3, column "value"`},
		{"mode", "online", "a\n1\n", "--mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := runDetect(context.Background(), detectOpts{mode: tc.mode, trees: 10, sample: 16, seed: 1}, strings.NewReader(tc.in), &out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if out.Len() != 0 {
				t.Fatalf("stdout polluted: %q", out.String())
			}
		})
	}
}
