package dashboard

import (
	"math"
	"sort"
	"time"

	"github.com/ares-sre/ares/engine"
)

// metric is one per-service time series.
type metric int

const (
	mCPU     metric = iota // mean CPU % of the running replicas
	mMem                   // memory of all replicas, MiB
	mP99                   // latency p99, ms (metrics sensor)
	mErr                   // error rate, % (metrics sensor)
	mScore                 // anomaly score 0..1 (anomaly analyzer, after warm-up)
	mRunning               // running replicas
	nMetrics
)

// seriesStore keeps, for every service, one float32 sample per tick and metric in rings
// aligned with one ring of tick times: 24 bytes per service and tick, so a day at 5 s for 50
// services is about 20 MB, where whole tick records would be hundreds. A missing value is NaN.
type seriesStore struct {
	size  int
	times []int64 // unix milliseconds
	head  int     // next write
	n     int
	total int64 // samples ever added
	svcs  map[string]*svcSeries
}

type svcSeries struct {
	v        [nMetrics][]float32
	lastSeen int64 // total at the last sample the service was present in
}

func newSeriesStore(size int) *seriesStore {
	return &seriesStore{size: size, times: make([]int64, size), svcs: map[string]*svcSeries{}}
}

var nan32 = float32(math.NaN())

func (st *seriesStore) add(at time.Time, f *engine.Facts) {
	i := st.head
	st.times[i] = at.UnixMilli()
	for name, svc := range f.Services {
		ss := st.svcs[name]
		if ss == nil {
			ss = &svcSeries{}
			for m := range ss.v {
				ss.v[m] = make([]float32, st.size)
				for j := range ss.v[m] {
					ss.v[m][j] = nan32
				}
			}
			st.svcs[name] = ss
		}
		ss.lastSeen = st.total
		sampleService(ss, i, svc)
	}
	for name, ss := range st.svcs {
		if ss.lastSeen == st.total {
			continue
		}
		if st.total-ss.lastSeen >= int64(st.size) { // gone for the whole window
			delete(st.svcs, name)
			continue
		}
		for m := range ss.v {
			ss.v[m][i] = nan32
		}
	}
	st.head = (st.head + 1) % st.size
	st.n = min(st.n+1, st.size)
	st.total++
}

func sampleService(ss *svcSeries, i int, svc *engine.Service) {
	var cpu, mem float64
	running := 0
	for _, r := range svc.Replicas {
		mem += float64(r.MemBytes)
		if r.State == "running" {
			running++
			cpu += r.CPUPercent
		}
	}
	ss.v[mCPU][i] = nan32
	if running > 0 {
		ss.v[mCPU][i] = float32(cpu / float64(running))
	}
	ss.v[mMem][i] = float32(mem / (1 << 20))
	ss.v[mRunning][i] = float32(running)
	ss.v[mP99][i], ss.v[mErr][i], ss.v[mScore][i] = nan32, nan32, nan32
	if m := svc.Metrics; m != nil {
		ss.v[mP99][i] = float32(m.LatencyP99Ms)
		ss.v[mErr][i] = float32(m.ErrorRate * 100)
	}
	if a := svc.Anomaly; a != nil && !a.WarmingUp {
		ss.v[mScore][i] = float32(a.Score)
	}
}

// point is one sample of a chart: unix milliseconds and value (NaN: no data).
type point struct {
	T int64
	V float64
}

// window returns the service's metric from since on, reduced to at most buckets points by
// taking the maximum of each bucket (so that a spike stays visible), oldest first.
func (st *seriesStore) window(service string, m metric, since time.Time, buckets int) []point {
	ss := st.svcs[service]
	if ss == nil || st.n == 0 {
		return nil
	}
	from := since.UnixMilli()
	start := (st.head - st.n + st.size) % st.size
	// skip samples before since (times increase along the ring)
	skip := sort.Search(st.n, func(k int) bool { return st.times[(start+k)%st.size] >= from })
	count := st.n - skip
	if count <= 0 {
		return nil
	}
	per := (count + buckets - 1) / buckets
	out := make([]point, 0, (count+per-1)/per)
	vals := ss.v[m]
	for b := 0; b < count; b += per {
		best := math.NaN()
		var t int64
		for k := b; k < b+per && k < count; k++ {
			j := (start + skip + k) % st.size
			t = st.times[j]
			if v := float64(vals[j]); !math.IsNaN(v) && (math.IsNaN(best) || v > best) {
				best = v
			}
		}
		out = append(out, point{T: t, V: best})
	}
	return out
}

// has reports whether the service's metric has any sample in the window.
func (st *seriesStore) has(service string, m metric) bool {
	ss := st.svcs[service]
	if ss == nil {
		return false
	}
	for _, v := range ss.v[m] {
		if !math.IsNaN(float64(v)) {
			return true
		}
	}
	return false
}

// span is the time covered by the store.
func (st *seriesStore) span() (from, to time.Time) {
	if st.n == 0 {
		return time.Time{}, time.Time{}
	}
	start := (st.head - st.n + st.size) % st.size
	return time.UnixMilli(st.times[start]), time.UnixMilli(st.times[(st.head-1+st.size)%st.size])
}
