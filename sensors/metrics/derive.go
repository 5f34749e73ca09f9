package metrics

import (
	"math"
	"slices"
	"sort"
	"time"

	"github.com/ares-sre/ares/engine"
)

// bucket is one cumulative histogram bucket: the observations ≤ upper.
type bucket struct {
	upper float64
	count float64
}

// counterSeries is one series of the request counter.
type counterSeries struct {
	value float64
	err   bool // a server error (5xx) series
}

// histSeries is one series of the duration histogram; buckets are sorted by upper bound and end
// with +Inf.
type histSeries struct {
	buckets []bucket
}

// reading is one scrape of one replica, reduced to what the derived metrics need. Series are
// keyed by their label set, so that a counter decreasing can be told from one appearing.
type reading struct {
	at       time.Time
	start    float64 // process_start_time_seconds; 0 when not exported
	counters map[string]counterSeries
	hists    map[string]histSeries
}

// empty reports whether r holds none of the series the metrics derive from.
func (r *reading) empty() bool { return len(r.counters) == 0 && len(r.hists) == 0 }

// window is what happened between two readings of a replica (or, summed, of a service).
type window struct {
	seconds  float64
	rps      float64 // summed over replicas, each over its own interval
	requests float64
	errors   float64
	buckets  []bucket // cumulative, sorted, summed over series by upper bound
}

// reset reports whether cur comes from a new run of the process that produced prev: its start
// time changed, or any counter (or histogram bucket) went down. Counters only ever go up
// within one run.
func reset(prev, cur *reading) bool {
	if prev.start != 0 && cur.start != 0 && prev.start != cur.start {
		return true
	}
	for k, c := range cur.counters {
		if p, ok := prev.counters[k]; ok && c.value < p.value {
			return true
		}
	}
	for k, h := range cur.hists {
		p, ok := prev.hists[k]
		if !ok {
			continue
		}
		for _, b := range h.buckets {
			if pc, ok := countAt(p.buckets, b.upper); ok && b.count < pc {
				return true
			}
		}
	}
	return false
}

// delta returns what happened between prev and cur. After a reset the values of cur are the
// delta: everything the new run counted happened since prev. A series new in cur counts in
// full (client libraries create a series on its first increment); a series gone from cur
// counts nothing. So no delta is ever negative.
func delta(prev, cur *reading) window {
	w := window{seconds: cur.at.Sub(prev.at).Seconds()}
	fresh := reset(prev, cur)
	for k, c := range cur.counters {
		d := c.value
		if p, ok := prev.counters[k]; ok && !fresh {
			d = c.value - p.value
		}
		w.requests += d
		if c.err {
			w.errors += d
		}
	}
	for k, h := range cur.hists {
		p, seen := prev.hists[k]
		for _, b := range h.buckets {
			d := b.count
			if seen && !fresh {
				if pc, ok := countAt(p.buckets, b.upper); ok {
					d = b.count - pc
				}
			}
			w.buckets = addBucket(w.buckets, b.upper, d)
		}
	}
	// Without a request counter the histogram's observations are the requests.
	if len(cur.counters) == 0 && len(w.buckets) > 0 {
		w.requests = w.buckets[len(w.buckets)-1].count
	}
	if w.seconds > 0 {
		w.rps = w.requests / w.seconds
	}
	return w
}

// add sums o into w: the service's window over its replicas.
func (w *window) add(o window) {
	w.rps += o.rps
	w.requests += o.requests
	w.errors += o.errors
	for _, b := range o.buckets {
		w.buckets = addBucket(w.buckets, b.upper, b.count)
	}
}

// metrics turns a window into the facts' request metrics. Without requests in the window the
// error rate and latencies are 0.
func (w window) metrics() *engine.Metrics {
	m := &engine.Metrics{RPS: finite(w.rps)}
	if w.requests > 0 {
		m.ErrorRate = clamp01(w.errors / w.requests)
	}
	m.LatencyP50Ms = finite(quantile(0.5, w.buckets) * 1000)
	m.LatencyP99Ms = finite(quantile(0.99, w.buckets) * 1000)
	return m
}

// countAt returns the cumulative count at upper in bs.
func countAt(bs []bucket, upper float64) (float64, bool) {
	i, ok := slices.BinarySearchFunc(bs, upper, func(b bucket, u float64) int { return cmpFloat(b.upper, u) })
	if !ok {
		return 0, false
	}
	return bs[i].count, true
}

// addBucket adds count to the bucket with upper bound upper, inserting it in order.
func addBucket(bs []bucket, upper, count float64) []bucket {
	i, ok := slices.BinarySearchFunc(bs, upper, func(b bucket, u float64) int { return cmpFloat(b.upper, u) })
	if ok {
		bs[i].count += count
		return bs
	}
	return slices.Insert(bs, i, bucket{upper: upper, count: count})
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// quantile estimates the q-quantile (0 ≤ q ≤ 1) of the observations in the cumulative buckets
// bs the way Prometheus' histogram_quantile does: it finds the bucket holding the rank q·n and
// interpolates linearly inside it, from 0 for the first bucket (when its bound is positive).
// A rank in the +Inf bucket yields the highest finite bound. It returns NaN without
// observations or without a +Inf bucket.
func quantile(q float64, bs []bucket) float64 {
	if len(bs) < 2 || !math.IsInf(bs[len(bs)-1].upper, 1) || math.IsNaN(q) {
		return math.NaN()
	}
	if q < 0 {
		return math.Inf(-1)
	}
	if q > 1 {
		return math.Inf(1)
	}
	// Buckets summed from series with different layouts, or scraped mid-update, may not be
	// monotonic; like Prometheus, treat a lower count as the previous one.
	counts := make([]float64, len(bs))
	for i, b := range bs {
		counts[i] = b.count
		if i > 0 && counts[i] < counts[i-1] {
			counts[i] = counts[i-1]
		}
	}
	n := counts[len(counts)-1]
	if n <= 0 || math.IsNaN(n) {
		return math.NaN()
	}
	rank := q * n
	b := sort.Search(len(counts)-1, func(i int) bool { return counts[i] >= rank })
	if b == len(bs)-1 {
		return bs[len(bs)-2].upper
	}
	if b == 0 && bs[0].upper <= 0 {
		return bs[0].upper
	}
	start, end, count := 0.0, bs[b].upper, counts[b]
	if b > 0 {
		start = bs[b-1].upper
		count -= counts[b-1]
		rank -= counts[b-1]
	}
	if count <= 0 {
		return end
	}
	return start + (end-start)*(rank/count)
}

// finite maps NaN and ±Inf (which JSON cannot carry) and negatives to 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

func clamp01(v float64) float64 { return min(max(finite(v), 0), 1) }
