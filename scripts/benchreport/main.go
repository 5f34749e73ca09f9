// Command benchreport reads `go test -bench` output on standard input, echoes it, and prints a
// table of ratios between benchmarks measured in the same run:
//
//	go test -run '^$' -bench . ./engine/policy/ | go run ./scripts/benchreport \
//	    -ratio 'default pack, 1000 services, all changed|Evaluate/pack=default,services=1000,changed=all|BaselineEvalInput/pack=default,services=1000|ms/tick'
//
// Each -ratio is "label|ours|baseline|unit": ours and baseline are benchmark names without the
// Benchmark prefix and the -N suffix, unit is the metric to compare (ns/op, ms/tick, ...). The
// ratio printed is baseline/ours, so 10x means ours is ten times faster.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
)

type ratios []string

func (r *ratios) String() string     { return strings.Join(*r, ", ") }
func (r *ratios) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	var rs ratios
	flag.Var(&rs, "ratio", `"label|ours|baseline|unit" (repeatable)`)
	flag.Parse()
	metrics := map[string]map[string]float64{} // bench name → unit → value
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		fmt.Println(line)
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		if i := strings.LastIndex(name, "-"); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				m[f[i+1]] = v
			}
		}
		metrics[name] = m
	}
	if len(rs) == 0 {
		return
	}
	fmt.Println()
	fmt.Printf("%-58s %14s %14s %9s\n", "ratio (baseline / ours)", "ours", "baseline", "ratio")
	for _, r := range rs {
		p := strings.Split(r, "|")
		if len(p) != 4 {
			fmt.Fprintf(os.Stderr, "benchreport: -ratio %q: want label|ours|baseline|unit\n", r)
			os.Exit(2)
		}
		ours, okO := metrics[p[1]][p[3]]
		base, okB := metrics[p[2]][p[3]]
		if !okO || !okB || ours == 0 {
			fmt.Printf("%-58s %14s %14s %9s\n", p[0], show(ours, okO, p[3]), show(base, okB, p[3]), "n/a")
			continue
		}
		fmt.Printf("%-58s %14s %14s %8.1fx\n", p[0], show(ours, true, p[3]), show(base, true, p[3]), base/ours)
	}
}

func show(v float64, ok bool, unit string) string {
	if !ok {
		return "missing"
	}
	return strconv.FormatFloat(v, 'g', 4, 64) + " " + unit
}
