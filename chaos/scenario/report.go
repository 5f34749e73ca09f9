package scenario

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/ares-sre/ares/chaos/load"
)

// Report is the outcome of one scenario.
type Report struct {
	Name   string `json:"name"`
	File   string `json:"file,omitempty"`
	Short  bool   `json:"short,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
	Pass   bool   `json:"pass"`
	// Error is why the run itself could not be carried out ("" when it could).
	Error   string        `json:"error,omitempty"`
	Seconds float64       `json:"seconds"`
	Faults  []FaultReport `json:"faults"`
	Actions []Action      `json:"actions"`
	// AresError is why ARES's API could not be read.
	AresError string       `json:"ares_error,omitempty"`
	Load      *load.Report `json:"load,omitempty"`
	Results   []Result     `json:"results"`
	Timeline  []Event      `json:"timeline"`
}

// FaultReport is one injected fault with ARES's time to detect and the time to recover.
type FaultReport struct {
	Injected
	// TimeToDetect is from the injection to ARES's first decision on the service; absent when
	// ARES decided nothing on it.
	TimeToDetect *time.Duration `json:"time_to_detect_ns,omitempty"`
	// TimeToRecover is from the injection to the service being healthy again; absent when
	// it was not by the end.
	TimeToRecover *time.Duration `json:"time_to_recover_ns,omitempty"`
}

func (x *run) report() *Report {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := &x.rec
	rep := &Report{Name: x.s.Name, File: x.s.File, Short: x.r.Short, Seconds: r.End.Sub(r.Start).Seconds(),
		Actions: r.ActionsTaken(), AresError: r.AresErr, Load: r.Load, Pass: true}
	seen := map[string]bool{}
	for _, in := range r.Injections {
		fr := FaultReport{Injected: in}
		if !seen[in.Fault.Service] { // the times are measured from the first fault on a service
			seen[in.Fault.Service] = true
			if d, ok := r.TimeToDetect(in.Fault.Service); ok {
				fr.TimeToDetect = &d
			}
			if d, ok := r.TimeToRecover(in.Fault.Service); ok {
				fr.TimeToRecover = &d
			}
		}
		rep.Faults = append(rep.Faults, fr)
	}
	for i := range x.s.Expect {
		res := x.s.Expect[i].Evaluate(r)
		rep.Results = append(rep.Results, res)
		rep.Pass = rep.Pass && res.Pass
	}
	for _, f := range x.failed {
		rep.Results = append(rep.Results, Result{Expectation: "the run", Pass: false, Detail: f})
		rep.Pass = false
	}
	rep.Timeline = append([]Event(nil), r.Timeline...)
	sort.SliceStable(rep.Timeline, func(i, j int) bool { return rep.Timeline[i].At.Before(rep.Timeline[j].At) })
	return rep
}

// WriteText prints the report for people.
func (rep *Report) WriteText(w io.Writer) {
	verdict := "PASS"
	if !rep.Pass {
		verdict = "FAIL"
	}
	if rep.DryRun {
		verdict = "DRY RUN"
		if !rep.Pass {
			verdict = "DRY RUN FAILED"
		}
	}
	title := rep.Name
	if rep.File != "" {
		title += " (" + rep.File + ")"
	}
	if rep.Short {
		title += " [short]"
	}
	fmt.Fprintf(w, "\n%s  %s  %.1fs\n", verdict, title, rep.Seconds)
	if rep.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", rep.Error)
	}
	if rep.DryRun {
		return
	}
	for _, f := range rep.Faults {
		fmt.Fprintf(w, "  fault %s into %s", f.Fault, strings.Join(f.Targets, ", "))
		if f.Times > 1 {
			fmt.Fprintf(w, " (%d times)", f.Times)
		}
		fmt.Fprintln(w)
		if f.TimeToDetect != nil || f.TimeToRecover != nil {
			fmt.Fprintf(w, "    time to detect  %s\n    time to recover %s\n", durOr(f.TimeToDetect, "ARES decided nothing"), durOr(f.TimeToRecover, "not recovered"))
		}
	}
	if rep.AresError != "" {
		fmt.Fprintf(w, "  ARES API: %s\n", rep.AresError)
	}
	if len(rep.Actions) == 0 {
		fmt.Fprintln(w, "  actions: none")
	} else {
		fmt.Fprintln(w, "  actions:")
		for _, a := range rep.Actions {
			fmt.Fprintf(w, "    %s  %-8s %-9s %-30s %s\n", a.At.Format("15:04:05.000"), a.Verdict, a.Action, a.Target(), a.Reason)
		}
	}
	if l := rep.Load; l != nil {
		fmt.Fprintf(w, "  requests: %d served, %d failed (availability %.2f%%), %.1f/s, p50 %s p99 %s max %s\n",
			l.Succeeded, l.Failed, l.Availability()*100, l.Throughput, round(l.Latency.P50), round(l.Latency.P99), round(l.Latency.Max))
	}
	for _, r := range rep.Results {
		mark := "ok  "
		if !r.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, r.Expectation, r.Detail)
	}
}

func durOr(d *time.Duration, none string) string {
	switch {
	case d == nil:
		return none
	case *d == 0:
		return "0s (never seen down or unhealthy)"
	}
	return round(*d).String()
}

// WriteJSON writes the reports as one JSON document {"pass": bool, "scenarios": [...]}.
func WriteJSON(w io.Writer, reps []*Report) error {
	pass := true
	for _, r := range reps {
		pass = pass && r.Pass
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Pass      bool      `json:"pass"`
		Scenarios []*Report `json:"scenarios"`
	}{pass, reps})
}
