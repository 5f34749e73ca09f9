// Package odds loads the labelled outlier-detection sets in ../shared/data/anomaly (relative to
// the module root) for the anomaly engine's quality tests and benchmarks, and computes ROC AUC.
package odds

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Set is one labelled data set: Rows×Cols features row-major, and a 0/1 label per row.
type Set struct {
	Name   string
	Rows   int
	Cols   int
	X      []float64
	Labels []bool
	// SklearnAUC is the mean ROC AUC of scikit-learn's IsolationForest from the README, or 0.
	SklearnAUC float64
	SklearnStd float64 // its standard deviation over the seeds
}

// Dir returns the data directory. When it is missing it skips tb with a loud reason, or fails
// it when CI=true: CI checks out ../shared beside the clone.
func Dir(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		tb.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir := filepath.Join(root, "..", "shared", "data", "anomaly")
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		msg := fmt.Sprintf("SKIPPING: labelled anomaly data sets not found at %s (%v); check out the shared data beside the clone", dir, err)
		if os.Getenv("CI") == "true" {
			tb.Fatal("CI=true and " + msg)
		}
		tb.Skip(msg)
	}
	return dir
}

var refRow = regexp.MustCompile(`^\|\s*([\w-]+)\s*\|\s*\d+\s*\|\s*\d+\s*\|\s*\d+\s*\|\s*([0-9.]+)\s*±\s*([0-9.]+)`)

// LoadAll reads every *.csv of dir with the reference AUCs of its README.
func LoadAll(tb testing.TB, dir string) []Set {
	tb.Helper()
	ref := map[string][2]float64{}
	if raw, err := os.ReadFile(filepath.Join(dir, "README.md")); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if m := refRow.FindStringSubmatch(line); m != nil {
				a, _ := strconv.ParseFloat(m[2], 64)
				sd, _ := strconv.ParseFloat(m[3], 64)
				ref[m[1]] = [2]float64{a, sd}
			}
		}
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no data sets in %s (%v)", dir, err)
	}
	slices.Sort(files)
	var sets []Set
	for _, p := range files {
		s, err := Load(p)
		if err != nil {
			tb.Fatal(err)
		}
		s.SklearnAUC, s.SklearnStd = ref[s.Name][0], ref[s.Name][1]
		sets = append(sets, s)
	}
	return sets
}

// Load reads one CSV whose last column is named label.
func Load(path string) (Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return Set{}, err
	}
	defer f.Close()
	s := Set{Name: strings.TrimSuffix(filepath.Base(path), ".csv")}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	line := 0
	for sc.Scan() {
		line++
		cells := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if line == 1 {
			if cells[len(cells)-1] != "label" {
				return s, fmt.Errorf("%s: last column is %q, want label", path, cells[len(cells)-1])
			}
			s.Cols = len(cells) - 1
			continue
		}
		if len(cells) != s.Cols+1 {
			return s, fmt.Errorf("%s:%d: %d cells, want %d", path, line, len(cells), s.Cols+1)
		}
		for _, c := range cells[:s.Cols] {
			v, err := strconv.ParseFloat(c, 64)
			if err != nil {
				return s, fmt.Errorf("%s:%d: %w", path, line, err)
			}
			s.X = append(s.X, v)
		}
		s.Labels = append(s.Labels, cells[s.Cols] == "1" || cells[s.Cols] == "1.0")
		s.Rows++
	}
	return s, sc.Err()
}

// AUC is the ROC AUC of scores against labels (ties count one half): the probability that a
// random outlier scores above a random inlier.
func AUC(scores []float64, labels []bool) float64 {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case scores[a] < scores[b]:
			return -1
		case scores[a] > scores[b]:
			return 1
		}
		return 0
	})
	// Mann–Whitney U with average ranks over ties.
	var pos, rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		r := float64(i+j+1) / 2 // average of ranks i+1..j
		for k := i; k < j; k++ {
			if labels[idx[k]] {
				pos++
				rankSum += r
			}
		}
		i = j
	}
	neg := float64(len(idx)) - pos
	if pos == 0 || neg == 0 {
		return 0.5
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg)
}
