package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/ares-sre/ares/chaos"
	"github.com/ares-sre/ares/internal/dockertest"
)

func TestChaosCommandsHaveExamples(t *testing.T) {
	cmd := newChaosCmd()
	if cmd.Example == "" {
		t.Error("ares chaos has no Example")
	}
	seen := map[string]bool{}
	for _, c := range cmd.Commands() {
		seen[c.Name()] = true
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("ares chaos %s --help has no Example", c.Name())
		}
	}
	for _, want := range []string{"kill", "stop", "pause", "leak", "cpu", "latency", "errors", "load", "surge", "run"} {
		if !seen[want] {
			t.Errorf("ares chaos has no %s subcommand", want)
		}
	}
}

// Bad flags are refused before anything is touched, with the flag named.
func TestChaosBadFlags(t *testing.T) {
	var out bytes.Buffer
	ctx := context.Background()
	for _, tc := range []struct {
		o    faultOpts
		want string
	}{
		{faultOpts{kind: chaos.Latency, service: "cart", value: 0, dur: time.Minute, output: "text"}, "--ms: latency must be in 1..60000 ms (got 0)"},
		{faultOpts{kind: chaos.Errors, service: "cart", value: 150, dur: time.Minute, output: "text"}, "--percent: errors must be in 1..100"},
		{faultOpts{kind: chaos.Leak, service: "cart", value: 5000, dur: time.Minute, output: "text"}, "--mb-per-s: leak must be in 1..1024"},
		{faultOpts{kind: chaos.Pause, service: "cart", dur: 100 * time.Millisecond, output: "text"}, "--for: must be in 1s..1h0m0s (got 100ms)"},
		{faultOpts{kind: chaos.Kill, service: "cart", dur: 2 * time.Hour, output: "text"}, "--for: must be in 1s..1h0m0s"},
		{faultOpts{kind: chaos.Kill, service: "cart", dur: time.Minute, output: "yaml"}, `--output "yaml": want text or json`},
	} {
		if err := runFault(ctx, tc.o, &out, &out); err == nil || err.Error() != tc.want && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.o.kind, err, tc.want)
		}
	}
	for _, tc := range []struct {
		o    loadOpts
		want string
	}{
		{loadOpts{target: "http://example.com", rate: 10, dur: time.Second, output: "text"}, `--target: "example.com" is not a loopback address`},
		{loadOpts{target: defaultLoadTarget, rate: 100000, dur: time.Second, output: "text"}, "--rate: must be in 1..2000"},
		{loadOpts{target: defaultLoadTarget, rate: 10, dur: 2 * time.Hour, output: "text"}, "--duration: must be in (0, 30m0s]"},
		{loadOpts{target: defaultLoadTarget, rate: 10, dur: time.Second, paths: []string{"x"}, output: "text"}, "--path:"},
		{loadOpts{surge: true, target: defaultLoadTarget, rate: 1000, factor: 5, after: -1, surgeFor: -1, dur: time.Minute, output: "text"}, "--factor: rate 1000 × 5"},
		{loadOpts{surge: true, target: defaultLoadTarget, rate: 10, factor: 2, after: time.Minute, surgeFor: -1, dur: time.Minute, output: "text"}, "--after:"},
	} {
		if err := runLoad(ctx, tc.o, &out, &out); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("load %+v: %v, want %q", tc.o, err, tc.want)
		}
	}
	// Through cobra: a missing required flag.
	root := newRootCmd(strings.NewReader(""), &out, &out)
	root.SetArgs([]string{"chaos", "latency", "--service", "cart"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), `"ms" not set`) {
		t.Errorf("latency without --ms: %v", err)
	}
}

// chaosScope is a label unique to the test, so that the commands touch only its containers.
func chaosScope(t *testing.T, service string) (label string, labels map[string]string) {
	label = fmt.Sprintf("ares.chaos.cli=%d", time.Now().UnixNano())
	k, v, _ := strings.Cut(label, "=")
	return label, map[string]string{"ares.enable": "true", "ares.service": service, k: v}
}

func containerState(t *testing.T, id string) (status string, pid int) {
	t.Helper()
	res, err := dockertest.Client(t).ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return string(res.Container.State.Status), res.Container.State.Pid
}

func TestChaosPauseLiveAndDryRun(t *testing.T) {
	label, labels := chaosScope(t, "victim")
	name := fmt.Sprintf("chaos-cli-%d", time.Now().UnixNano()%1e9)
	id := dockertest.Run(t, dockertest.Spec{Name: name, Labels: labels})
	_, pid := containerState(t, id)
	ctx := context.Background()

	// Dry run: the plan, nothing changed.
	var out bytes.Buffer
	o := faultOpts{kind: chaos.Kill, service: "victim", dur: time.Minute, labels: []string{label}, dryRun: true, output: "text"}
	if err := runFault(ctx, o, &out, &out); err != nil {
		t.Fatal(err)
	}
	if st, p := containerState(t, id); st != "running" || p != pid {
		t.Fatalf("dry run changed the container: %s pid %d (was %d)", st, p, pid)
	}
	for _, want := range []string{"dry run, would inject kill on victim for 1m0s", "dry-run  kill", name, "would SIGKILL pid", "dry run: nothing changed (targets: " + name + ")"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out.String())
		}
	}

	// Live, JSON: paused for its 1 s, then running again.
	out.Reset()
	var progress bytes.Buffer
	o = faultOpts{kind: chaos.Pause, service: "victim", dur: time.Second, labels: []string{label}, output: "json"}
	if err := runFault(ctx, o, &out, &progress); err != nil {
		t.Fatal(err)
	}
	var rep faultReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out.String())
	}
	if len(rep.Targets) != 1 || rep.Targets[0].ID != id || len(rep.Events) != 2 || rep.Events[0].Kind != "inject" ||
		rep.Events[1].Kind != "revert" || rep.Seconds < 1 || rep.Error != "" {
		t.Fatalf("report %+v", rep)
	}
	if lines := strings.Split(strings.TrimSpace(progress.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "unpaused") {
		t.Errorf("timeline on stderr:\n%s", progress.String())
	}
	if st, _ := containerState(t, id); st != "running" {
		t.Fatalf("after the pause: %s", st)
	}
}

// TestChaosHelperProcess is `ares` when CHAOS_TEST_HELPER=1: the SIGINT test runs the test
// binary as the CLI, with main's signal handling, instead of building it.
func TestChaosHelperProcess(t *testing.T) {
	if os.Getenv("CHAOS_TEST_HELPER") != "1" {
		t.Skip("helper process for TestChaosCtrlCLeavesNothingBehind")
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd(os.Stdin, os.Stdout, os.Stderr)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "ares:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
	os.Exit(0)
}

// Ctrl-C on `ares chaos pause --for 1m` unpauses the container before the command exits.
func TestChaosCtrlCLeavesNothingBehind(t *testing.T) {
	label, labels := chaosScope(t, "victim")
	id := dockertest.Run(t, dockertest.Spec{Name: fmt.Sprintf("chaos-int-%d", time.Now().UnixNano()%1e9), Labels: labels})

	cmd := exec.Command(os.Args[0], "-test.run=^TestChaosHelperProcess$", "--",
		"chaos", "pause", "--service", "victim", "--label", label, "--for", "1m")
	cmd.Env = append(os.Environ(), "CHAOS_TEST_HELPER=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	dockertest.Eventually(t, 30*time.Second, "ares chaos pause pauses the container", func() bool {
		st, _ := containerState(t, id)
		return st == "paused"
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("exit: %v, want code 130\n%s", err, out.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatalf("ares chaos pause did not exit on SIGINT\n%s", out.String())
	}
	if st, _ := containerState(t, id); st != "running" {
		t.Fatalf("after Ctrl-C the container is %s, want running\n%s", st, out.String())
	}
	for _, want := range []string{"inject", "revert", "unpaused", "interrupted: every fault reverted"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestChaosLoadReport(t *testing.T) {
	id := dockertest.Run(t, dockertest.Spec{Name: fmt.Sprintf("chaos-load-%d", time.Now().UnixNano()%1e9), Publish: true})
	addr := dockertest.HostPort(t, id)
	var out bytes.Buffer
	o := loadOpts{target: "http://" + addr, rate: 20, dur: 2 * time.Second, timeout: time.Second, output: "text"}
	if err := runLoad(context.Background(), o, &out, &out); err != nil {
		t.Fatal(err)
	}
	_, hits, err := dockertest.Get(addr, "/hits")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"load on http://" + addr + ": 20 req/s for 2s", "rate ", "p99 ",
		"requests " + hits + " in ", hits + " served, 0 failed, availability 100.00%", "latency p50", "timeline", "     0s", "     1s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	out.Reset()
	var progress bytes.Buffer
	o = loadOpts{surge: true, target: "http://" + addr, paths: []string{"/status?code=500"}, rate: 10, factor: 2, after: -1, surgeFor: -1,
		dur: 1500 * time.Millisecond, timeout: time.Second, output: "json"}
	if err := runLoad(context.Background(), o, &out, &progress); err != nil {
		t.Fatal(err)
	}
	var rep loadReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("-o json: %v\n%s", err, out.String())
	}
	if rep.Requests == 0 || rep.Failed != rep.Requests || rep.Availability != 0 || rep.Errors["500"] != rep.Requests {
		t.Errorf("every request answered 500: %+v", rep)
	}
	if !strings.Contains(progress.String(), "surge on") {
		t.Errorf("progress on stderr: %q", progress.String())
	}
}
