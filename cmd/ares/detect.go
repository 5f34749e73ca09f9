package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ares-sre/ares/sensors/anomaly/detect"
	"github.com/ares-sre/ares/sensors/anomaly/iforest"
)

type detectOpts struct {
	mode      string
	trees     int
	sample    int
	seed      uint64
	byContent bool
}

func newDetectCmd() *cobra.Command {
	o := detectOpts{}
	cmd := &cobra.Command{
		Use:   "detect --mode batch|stream",
		Short: "Score a CSV for anomalies offline with ARES's anomaly engine",
		Long: `detect reads a CSV on standard input and writes one anomaly score per data row to standard
output, under the header anomaly_score, in input order. Higher is more anomalous. Nothing else
is written to standard output; errors go to standard error with the CSV line number.

--mode batch: every column of the header is a numeric feature (a column named label is a
feature too: drop it first). An Isolation Forest (Liu, Ting, Zhou 2008) is fitted on all rows
and scores them: s(x) = 2^(−E[h(x)]/c(ψ)) in [0,1].

--mode stream: the header is timestamp,value (one series; the timestamp is not interpreted).
Each row is scored from itself and earlier rows only, by the streaming detector ARES runs live
(docs/anomaly.md): features over recent values, an Isolation Forest refitted on a sliding
window, robust z-scores and an EWMA baseline. The score is 0 during warm-up; 0.5 is the high
risk cut-off; after an alarm, scores are damped for a while (one alarm per incident).`,
		Example: `  # batch: feature columns only
  cut -d, -f1-21 cardio.csv | ares detect --mode batch --seed 1 > scores.csv

  # stream: a metric series
  ares detect --mode stream < cpu.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDetect(cmd.Context(), o, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&o.mode, "mode", "batch", "batch (fit on all rows) or stream (timestamp,value, no look-ahead)")
	cmd.Flags().IntVar(&o.trees, "trees", iforest.DefaultTrees, "number of trees")
	cmd.Flags().IntVar(&o.sample, "sample", iforest.DefaultSample, "subsample size ψ per tree")
	cmd.Flags().Uint64Var(&o.seed, "seed", 1, "random seed, as scikit-learn's random_state: the same seed and input give its scores")
	cmd.Flags().BoolVar(&o.byContent, "by-content", false, "batch: subsample rows in an order of their content, so that reordering the input only reorders the scores")
	return cmd
}

func runDetect(ctx context.Context, o detectOpts, in io.Reader, w io.Writer) error {
	if o.mode != "batch" && o.mode != "stream" {
		return fmt.Errorf("detect: --mode %q: want batch or stream", o.mode)
	}
	if o.trees <= 0 || o.sample <= 0 {
		return fmt.Errorf("detect: --trees %d --sample %d: both must be > 0", o.trees, o.sample)
	}
	header, rows, cols, data, err := readCSV(in)
	if err != nil {
		return err
	}
	var scores []float64
	if o.mode == "batch" {
		f, err := iforest.Fit(data, rows, cols, iforest.Options{Trees: o.trees, Sample: o.sample, Seed: o.seed, ByContent: o.byContent})
		if err != nil {
			return fmt.Errorf("detect: %w", err)
		}
		if scores, err = f.ScoreAll(data, rows, nil); err != nil {
			return fmt.Errorf("detect: %w", err)
		}
	} else {
		if cols != 2 || strings.TrimSpace(header[1]) != "value" {
			return fmt.Errorf("detect: line 1: stream mode wants the header timestamp,value (got %s)", strings.Join(header, ","))
		}
		s := detect.NewSeries(detect.Config{Trees: o.trees, Sample: o.sample, Seed: o.seed})
		scores = make([]float64, rows)
		for r := range rows {
			if r%1024 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			scores[r] = s.Add(data[r*2+1]).Score
		}
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("anomaly_score\n")
	buf := make([]byte, 0, 32)
	for _, s := range scores {
		buf = strconv.AppendFloat(buf[:0], s, 'f', 6, 64)
		buf = append(buf, '\n')
		bw.Write(buf)
	}
	return bw.Flush()
}

// readCSV reads a header and numeric rows. Errors name the line. The timestamp column of
// stream mode (the first, when the header is timestamp,value) is not parsed.
func readCSV(in io.Reader) (header []string, rows, cols int, data []float64, err error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1 // ragged rows get our message, with the line
	r.ReuseRecord = true
	r.TrimLeadingSpace = true
	rec, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, 0, 0, nil, errors.New("detect: empty input: want a header line and at least one row")
	}
	if err != nil {
		return nil, 0, 0, nil, fmt.Errorf("detect: %w", err)
	}
	header = append([]string(nil), rec...)
	cols = len(header)
	if cols > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	skipFirst := cols == 2 && strings.TrimSpace(header[0]) == "timestamp"
	for {
		rec, err = r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			return nil, 0, 0, nil, fmt.Errorf("detect: %w", err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(rec) != cols {
			return nil, 0, 0, nil, fmt.Errorf("detect: line %d: %d cells, the header has %d", line, len(rec), cols)
		}
		for i, c := range rec {
			if i == 0 && skipFirst {
				data = append(data, 0)
				continue
			}
			v, perr := strconv.ParseFloat(strings.TrimSpace(c), 64)
			if perr != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, 0, 0, nil, fmt.Errorf("detect: line %d, column %q: %q is not a number", line, header[i], c)
			}
			data = append(data, v)
		}
		rows++
	}
	if rows == 0 {
		return nil, 0, 0, nil, errors.New("detect: line 1: a header but no rows")
	}
	return header, rows, cols, data, nil
}
