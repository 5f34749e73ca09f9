package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ares-sre/ares/shop/internal/config"
	"github.com/ares-sre/ares/shop/internal/fault"
)

// `shop fault` drives the admin API of the service beside it on 127.0.0.1:SHOP_ADMIN_PORT.
func TestFaultCommand(t *testing.T) {
	inj := fault.New(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), func(int) {})
	defer inj.Close()
	srv := httptest.NewServer(inj.Handler())
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	cfg, err := config.FromEnv(func(k string) string {
		if k == "SHOP_ADMIN_PORT" {
			return port
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, fault.State, string) {
		var out, errb bytes.Buffer
		code := faultCmd(context.Background(), cfg, args, &out, &errb)
		var st fault.State
		if code == 0 {
			if err := json.Unmarshal(out.Bytes(), &st); err != nil {
				t.Fatalf("shop fault %v printed %q: %v", args, out.String(), err)
			}
		}
		return code, st, errb.String()
	}

	for _, tc := range []struct {
		args  []string
		check func(fault.State) bool
	}{
		{[]string{"latency", "250"}, func(s fault.State) bool { return s.LatencyMS == 250 }},
		{[]string{"fail", "30"}, func(s fault.State) bool { return s.FailPercent == 30 && s.LatencyMS == 250 }},
		{[]string{"burn", "1"}, func(s fault.State) bool { return s.BurnCores == 1 }},
		{[]string{"burn", "0"}, func(s fault.State) bool { return s.BurnCores == 0 }},
		{[]string{"leak", "1"}, func(s fault.State) bool { return s.LeakMBPerSecond == 1 }},
		{[]string{"state"}, func(s fault.State) bool { return s.LeakMBPerSecond == 1 && s.FailPercent == 30 }},
		{[]string{"reset"}, func(s fault.State) bool { return s == fault.State{} }},
	} {
		code, st, stderr := run(tc.args...)
		if code != 0 || !tc.check(st) || !tc.check(inj.State()) {
			t.Fatalf("shop fault %v: code %d, printed %+v, injector %+v, stderr %q", tc.args, code, st, inj.State(), stderr)
		}
	}

	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"latency"}, 2, "usage: shop fault"},
		{[]string{"nuke", "1"}, 2, "usage: shop fault"},
		{[]string{"latency", "abc"}, 2, `the value must be an integer (got "abc")`},
		{[]string{"fail", "500"}, 1, "percent must be in 0..100"},
	} {
		if code, _, stderr := run(tc.args...); code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("shop fault %v: code %d, stderr %q; want %d, %q", tc.args, code, stderr, tc.code, tc.want)
		}
	}
}

// `shop fault` goes through the command line's dispatch, and fails clearly when nothing
// listens on the admin port.
func TestFaultCommandLine(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close() // nothing listens there now
	t.Setenv("SHOP_ADMIN_PORT", port)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"fault", "state"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "shop fault:") {
		t.Errorf("shop fault state with nothing on the admin port: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run(context.Background(), []string{"gateway", "extra"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "usage: shop") {
		t.Errorf("shop gateway extra: %d %q", code, errb.String())
	}
}
