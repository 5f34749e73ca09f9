package metrics

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const startTimeMetric = "process_start_time_seconds"

// names are the metric names the sensor reads.
type names struct {
	requests           string // counter; a series is a server error when its code label starts with 5
	codeLabel          string
	duration           string // histogram, in seconds
	bucket, sum, count string // the histogram's series
}

func newNames(requests, codeLabel, duration string) names {
	return names{requests: requests, codeLabel: codeLabel, duration: duration,
		bucket: duration + "_bucket", sum: duration + "_sum", count: duration + "_count"}
}

// parse reads one exposition in the Prometheus text format and keeps the request counter,
// the duration histogram and the process start time. Other families are dropped line by line
// before parsing (most of an exposition is runtime metrics ARES does not read), so an error
// in one of them does not fail the scrape. parse reuses b's memory.
func parse(b []byte, n names) (reading, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(n.filter(b)))
	if err != nil {
		return reading{}, fmt.Errorf("parse: %w", err)
	}
	rd := reading{counters: map[string]counterSeries{}, hists: map[string]histSeries{}}
	if mf := fams[startTimeMetric]; mf != nil && len(mf.GetMetric()) > 0 {
		m := mf.GetMetric()[0]
		rd.start = m.GetGauge().GetValue() + m.GetUntyped().GetValue()
	}
	if mf := fams[n.requests]; mf != nil {
		for _, m := range mf.GetMetric() {
			var v float64
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v = m.GetCounter().GetValue()
			case dto.MetricType_UNTYPED:
				v = m.GetUntyped().GetValue()
			default:
				return rd, fmt.Errorf("parse: %s is a %s, want a counter", n.requests, strings.ToLower(mf.GetType().String()))
			}
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				continue
			}
			key, code := seriesKey(m.GetLabel(), n.codeLabel)
			rd.counters[key] = counterSeries{value: v, err: strings.HasPrefix(code, "5")}
		}
	}
	if mf := fams[n.duration]; mf != nil {
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			return rd, fmt.Errorf("parse: %s is a %s, want a histogram", n.duration, strings.ToLower(mf.GetType().String()))
		}
		for _, m := range mf.GetMetric() {
			if h, ok := histogramOf(m.GetHistogram()); ok {
				key, _ := seriesKey(m.GetLabel(), "")
				rd.hists[key] = h
			}
		}
	}
	return rd, nil
}

// filter compacts b in place to the lines parse needs: samples, HELP and TYPE of the wanted
// families, and every sample line whose name is quoted inside the braces ({"name",...}), which
// the parser sorts out. Escapes never span lines in the text format.
func (n names) filter(b []byte) []byte {
	out := b[:0]
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
		} else {
			b = nil
		}
		if n.wanted(line) {
			out = append(out, line...) // never overtakes the reading position
		}
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n') // tolerate a last line without its newline
	}
	return out
}

func (n names) wanted(line []byte) bool {
	l := bytes.TrimLeft(line, " \t")
	if len(l) == 0 || l[0] == '\n' {
		return false
	}
	if l[0] == '{' {
		return true
	}
	if l[0] == '#' {
		var kw []byte
		kw, l = token(l[1:])
		if string(kw) != "HELP" && string(kw) != "TYPE" {
			return false
		}
		name, _ := token(l)
		return n.is(name)
	}
	name := l
	if i := bytes.IndexAny(l, "{ \t\n"); i >= 0 {
		name = l[:i]
	}
	return n.is(name)
}

// token returns the first blank-separated token of b and the rest after it.
func token(b []byte) (tok, rest []byte) {
	b = bytes.TrimLeft(b, " \t")
	i := bytes.IndexAny(b, " \t\n")
	if i < 0 {
		return b, nil
	}
	return b[:i], b[i:]
}

// is reports whether name is one of the series names parse reads.
func (n names) is(name []byte) bool {
	switch string(name) { // compared in place, not allocated
	case n.requests, n.duration, n.bucket, n.sum, n.count, startTimeMetric:
		return true
	}
	return false
}

// histogramOf returns h's classic buckets, sorted and ending with +Inf (taken from the sample
// count when the exposition left it out). It reports false for a histogram without usable
// buckets (a native histogram, or NaN counts).
func histogramOf(h *dto.Histogram) (histSeries, bool) {
	if h == nil || len(h.GetBucket()) == 0 {
		return histSeries{}, false
	}
	bs := make([]bucket, 0, len(h.GetBucket())+1)
	for _, b := range h.GetBucket() {
		c := float64(b.GetCumulativeCount())
		if b.CumulativeCountFloat != nil {
			c = b.GetCumulativeCountFloat()
		}
		u := b.GetUpperBound()
		if math.IsNaN(u) || math.IsNaN(c) || math.IsInf(c, 0) || c < 0 {
			return histSeries{}, false
		}
		bs = append(bs, bucket{upper: u, count: c})
	}
	slices.SortFunc(bs, func(a, b bucket) int { return cmpFloat(a.upper, b.upper) })
	bs = slices.CompactFunc(bs, func(a, b bucket) bool { return a.upper == b.upper })
	if !math.IsInf(bs[len(bs)-1].upper, 1) {
		n := float64(h.GetSampleCount())
		if h.SampleCountFloat != nil {
			n = h.GetSampleCountFloat()
		}
		if math.IsNaN(n) || math.IsInf(n, 0) || n < 0 {
			return histSeries{}, false
		}
		bs = append(bs, bucket{upper: math.Inf(1), count: n})
	}
	return histSeries{buckets: bs}, true
}

// seriesKey identifies a series by its labels in exposition order (stable within one process)
// and returns the value of label code.
func seriesKey(labels []*dto.LabelPair, code string) (key, codeValue string) {
	var b strings.Builder
	for _, l := range labels {
		b.WriteString(l.GetName())
		b.WriteByte(0xfe)
		b.WriteString(l.GetValue())
		b.WriteByte(0xff)
		if code != "" && l.GetName() == code {
			codeValue = l.GetValue()
		}
	}
	return b.String(), codeValue
}
