// Package iforest is an Isolation Forest (Liu, Ting and Zhou, "Isolation Forest", ICDM 2008)
// in pure Go: n trees, each grown on a subsample of ψ rows without replacement to the height
// limit ⌈log2 ψ⌉, path lengths corrected by c(n) at unsplit leaves, and the score
// s(x) = 2^(−E[h(x)]/c(ψ)) in [0,1].
//
// A fitted Forest is immutable and safe for concurrent use. Fitting is deterministic for a
// seed, whatever the number of workers, and reproduces scikit-learn's IsolationForest: with
// Seed s the trees are those scikit-learn 1.2 grows with random_state=s on the same data (its
// random streams are reproduced in numpyrand.go, and values are compared in single precision
// as it converts them), so the scores agree to rounding.
//
// Layout: each tree is stored as a complete binary tree of depth ⌈log2 ψ⌉ in flat arrays with
// implicit children (2i+1, 2i+2): a leaf above the height limit is padded with pass-through
// splits (+Inf, always left) down to the last level. A walk is then a fixed number of
// branch-free steps, and scoring walks blocks of rows tree by tree, several rows at a time, so
// that a tree (≈5 KB at ψ = 256) stays in L1 while independent loads overlap.
package iforest

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sync"
)

// Defaults of the paper, also scikit-learn's.
const (
	DefaultTrees  = 100
	DefaultSample = 256
)

// eulerGamma is the Euler–Mascheroni constant used by the harmonic-number estimate in C.
const eulerGamma = 0.5772156649015329

// Options configure Fit. The zero value means the defaults.
type Options struct {
	Trees  int    // number of trees; default 100
	Sample int    // subsample size ψ per tree; default 256, capped at the number of rows
	Seed   uint64 // scikit-learn's random_state: the same seed, data and options give its forest
	// ByContent subsamples the rows in an order of their own content instead of their input
	// order: the forest then no longer depends on the order of the rows (permuting them
	// permutes the scores), and is scikit-learn's forest for the rows so sorted.
	ByContent bool
	Workers   int // goroutines for fitting and scoring; default runtime.GOMAXPROCS(0)
}

func (o Options) withDefaults() Options {
	if o.Trees <= 0 {
		o.Trees = DefaultTrees
	}
	if o.Sample <= 0 {
		o.Sample = DefaultSample
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return o
}

// node is one node of a tree while it grows. An internal node sends x left when
// x[Feature] <= Split, else to Left+1. A leaf has Feature -1 and holds in Split its whole path
// length, depth + C(size).
type node struct {
	Split   float64
	Feature int32
	Left    int32
}

// Forest is a fitted Isolation Forest. Export it with gob or JSON through Model.
type Forest struct {
	depth    int       // every walk takes exactly depth steps
	inner    int       // internal nodes per tree, 2^depth − 1
	feature  []int32   // trees × inner
	split    []float64 // trees × inner; +Inf on pass-through nodes
	leaf     []float64 // trees × 2^depth: the path length depth + C(size) of the real leaf
	trees    int
	features int
	psi      int
	cpsi     float64
	workers  int
}

// C is c(n) of the paper: the average path length of an unsuccessful search in a binary search
// tree of n points, 2H(n−1) − 2(n−1)/n with H(i) ≈ ln i + γ; C(2) = 1 and C(n) = 0 for n ≤ 1.
func C(n int) float64 {
	switch {
	case n <= 1:
		return 0
	case n == 2:
		return 1
	}
	f := float64(n)
	return 2*(math.Log(f-1)+eulerGamma) - 2*(f-1)/f
}

// HeightLimit is ⌈log2 ψ⌉, the depth at which trees stop growing.
func HeightLimit(psi int) int {
	if psi < 2 {
		return 0
	}
	return int(math.Ceil(math.Log2(float64(psi))))
}

// Fit grows a forest on rows×cols values stored row-major in data. The data is only read.
func Fit(data []float64, rows, cols int, opt Options) (*Forest, error) {
	if rows <= 0 || cols <= 0 {
		return nil, fmt.Errorf("iforest: fit: need at least one row and one column (got %d×%d)", rows, cols)
	}
	if len(data) != rows*cols {
		return nil, fmt.Errorf("iforest: fit: %d values for %d×%d", len(data), rows, cols)
	}
	for i, v := range data {
		if math.IsNaN(v) || math.Abs(v) > math.MaxFloat32 { // fitted in single precision
			return nil, fmt.Errorf("iforest: fit: row %d column %d is %v", i/cols, i%cols, v)
		}
	}
	opt = opt.withDefaults()
	psi := min(opt.Sample, rows)
	trees := make([][]node, opt.Trees)
	limit := HeightLimit(psi)
	seeds := treeSeeds(seed32(opt.Seed), opt.Trees)
	var order []int32
	if opt.ByContent {
		order = canonicalOrder(data, rows, cols)
	}

	parallel(opt.Workers, opt.Trees, func(next func() (int, bool)) {
		b := builder{data: data, cols: cols, limit: limit, order: order, features: make([]int32, cols), constant: make([]int32, cols),
			seen: make([]uint64, (rows+63)/64), perm: make([]int32, rows), samples: make([]int32, 0, psi)}
		for t, ok := next(); ok; t, ok = next() {
			b.grow(seeds[t], rows, psi)
			trees[t] = b.nodes
		}
	})

	f := newForest(opt.Trees, limit, cols, psi, opt.Workers)
	for t, nodes := range trees {
		f.flatten(t, nodes, 0, 0, 0)
	}
	return f, nil
}

// canonicalOrder returns the row indices sorted by content, so that subsampling depends on
// the set of rows and not on their order. Rows are compared by a hash first (cheap and
// well-mixed), then value by value; equal rows are interchangeable.
func canonicalOrder(data []float64, rows, cols int) []int32 {
	type keyed struct {
		h uint64
		i int32
	}
	ks := make([]keyed, rows)
	for r := range rows {
		h := uint64(0x9e3779b97f4a7c15)
		for _, v := range data[r*cols : (r+1)*cols] {
			if v == 0 {
				v = 0 // −0 and +0 are the same value
			}
			h = mix(h ^ math.Float64bits(v))
		}
		ks[r] = keyed{h, int32(r)}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := cmp.Compare(a.h, b.h); c != 0 {
			return c
		}
		return slices.Compare(data[int(a.i)*cols:int(a.i+1)*cols], data[int(b.i)*cols:int(b.i+1)*cols])
	})
	out := make([]int32, rows)
	for i, k := range ks {
		out[i] = k.i
	}
	return out
}

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// seed32 folds a seed into numpy's 0 … 2^32−1: seeds in that range are used as they are.
func seed32(s uint64) uint32 { return uint32(s) ^ uint32(s>>32) }

func newForest(trees, depth, cols, psi, workers int) *Forest {
	inner := 1<<depth - 1
	f := &Forest{depth: depth, inner: inner, trees: trees, features: cols, psi: psi, cpsi: C(psi), workers: workers,
		feature: make([]int32, trees*inner), split: make([]float64, trees*inner), leaf: make([]float64, trees*(inner+1))}
	if f.cpsi == 0 { // ψ = 1: every path is 0; c(1) = 0 would divide by zero
		f.cpsi = 1
	}
	return f
}

// flatten copies the grown node n of tree t to position pos (at depth) of the complete layout.
func (f *Forest) flatten(t int, nodes []node, n int32, pos, depth int) {
	nd := nodes[n]
	if depth == f.depth { // the last level: a real leaf (the builder stops at the limit)
		f.leaf[t*(f.inner+1)+pos-f.inner] = nd.Split
		return
	}
	at := t*f.inner + pos
	if nd.Feature < 0 { // a leaf above the limit: pass through to the left, value at the bottom
		f.feature[at], f.split[at] = 0, math.Inf(1)
		f.flatten(t, nodes, n, 2*pos+1, depth+1)
		f.flatten(t, nodes, n, 2*pos+2, depth+1) // unreachable, filled for a tidy model
		return
	}
	f.feature[at], f.split[at] = nd.Feature, nd.Split
	f.flatten(t, nodes, nd.Left, 2*pos+1, depth+1)
	f.flatten(t, nodes, nd.Left+1, 2*pos+2, depth+1)
}

// builder grows one tree at a time; one per worker, reused across its trees.
type builder struct {
	data     []float64
	cols     int
	limit    int
	rng      xorshift
	order    []int32  // row at each position (Options.ByContent), nil for the input order
	seen     []uint64 // bitset over positions: the subsample
	perm     []int32  // scratch for subsample
	samples  []int32  // the subsample's rows, ascending, partitioned in place while growing
	features []int32  // the attribute order the splitter draws from, carried from node to node
	constant []int32  // attributes known constant, in the order found
	nodes    []node
}

// grow fits one tree from its seed over rows rows, subsample psi.
func (b *builder) grow(seed uint32, rows, psi int) {
	clear(b.seen)
	subsample(newMT19937(seed), rows, psi, b.seen, b.perm)
	// The tree's own generator: RandomState(seed).randint(MAX_INT) seeds a RandomState whose
	// randint(0, RAND_R_MAX) seeds the xorshift.
	est := newMT19937(seed).interval(maxInt32 - 1)
	b.rng = xorshift(newMT19937(est).interval(randRMax - 1))
	b.samples = b.samples[:0]
	for w, word := range b.seen {
		for ; word != 0; word &= word - 1 {
			row := int32(w*64 + bits.TrailingZeros64(word))
			if b.order != nil {
				row = b.order[row]
			}
			b.samples = append(b.samples, row)
		}
	}
	for j := range b.features {
		b.features[j] = int32(j)
	}
	b.nodes = make([]node, 1, 2*psi-1)
	b.node(0, 0, len(b.samples), 0, 0)
}

// node fills node at from the samples [start, end) at depth, the first known attributes of
// b.features being constant on them.
func (b *builder) node(at, start, end, depth, known int) {
	n := end - start
	if depth >= b.limit || n < 2 {
		b.nodes[at] = node{Feature: -1, Split: float64(depth) + C(n)}
		return
	}
	feat, split, pos, total := b.split(start, end, known)
	if pos >= end {
		b.nodes[at] = node{Feature: -1, Split: float64(depth) + C(n)}
		return
	}
	left := len(b.nodes)
	b.nodes = append(b.nodes, node{}, node{})
	b.nodes[at] = node{Feature: feat, Split: split, Left: int32(left)}
	b.node(left, start, pos, depth+1, total)
	b.node(left+1, pos, end, depth+1, total)
}

// split draws attributes without replacement until one is not constant on the samples
// [start, end) (the attributes known constant are skipped at no cost), splits it at a uniform
// point between its minimum and maximum and partitions the samples: x <= split first. It
// returns the attribute, the split, the partition point (end when nothing splits) and the
// number of attributes now known constant, as scikit-learn's random splitter does with one
// attribute per node, arithmetic and all.
func (b *builder) split(start, end, known int) (feat int32, split float64, pos, total int) {
	total, pos = known, end
	fi, visited, found, drawn := b.cols, 0, 0, 0
	for fi > total && (visited < 1 || visited <= found+drawn) {
		visited++
		fj := b.rng.intn(drawn, fi-found)
		if fj < known {
			b.features[drawn], b.features[fj] = b.features[fj], b.features[drawn]
			drawn++
			continue
		}
		fj += found
		q := b.features[fj]
		mn, mx := b.minMax(start, end, q)
		if mx <= mn+1e-7 { // float32 arithmetic, as the splitter's
			b.features[fj], b.features[total] = b.features[total], q
			found++
			total++
			continue
		}
		fi--
		b.features[fi], b.features[fj] = b.features[fj], b.features[fi]
		t := b.rng.uniform(float64(mn), float64(mx))
		if t == float64(mx) {
			t = float64(mn)
		}
		i, j := start, end
		for i < j {
			if f32(b.data[int(b.samples[i])*b.cols+int(q)]) <= t {
				i++
			} else {
				j--
				b.samples[i], b.samples[j] = b.samples[j], b.samples[i]
			}
		}
		if i == start || i == end { // rounding put every sample on one side
			continue
		}
		feat, split, pos = q, t, i
	}
	copy(b.features[:known], b.constant[:known])
	copy(b.constant[known:known+found], b.features[known:known+found])
	return feat, split, pos, total
}

func (b *builder) minMax(start, end int, q int32) (mn, mx float32) {
	mn = float32(math.Inf(1))
	mx = float32(math.Inf(-1))
	for _, r := range b.samples[start:end] {
		v := float32(b.data[int(r)*b.cols+int(q)])
		mn = min(mn, v)
		mx = max(mx, v)
	}
	return mn, mx
}

// f32 rounds v to single precision, as scikit-learn converts its input.
func f32(v float64) float64 { return float64(float32(v)) }

// Features is the number of columns the forest was fitted on.
func (f *Forest) Features() int { return f.features }

// Trees is the number of trees.
func (f *Forest) Trees() int { return f.trees }

// Sample is the subsample size ψ actually used (the option capped at the rows fitted on).
func (f *Forest) Sample() int { return f.psi }

// PathLength is E[h(x)]: the mean over the trees of x's path length, leaf corrections included.
func (f *Forest) PathLength(x []float64) float64 {
	var one [16]float64
	x32 := one[:0]
	for _, v := range x {
		x32 = append(x32, f32(v))
	}
	var sum float64
	for t := range f.trees {
		sum += f.walk(t, x32)
	}
	return sum / float64(f.trees)
}

// walk is x's path length in tree t.
func (f *Forest) walk(t int, x []float64) float64 {
	feat := f.feature[t*f.inner : (t+1)*f.inner]
	split := f.split[t*f.inner : (t+1)*f.inner]
	i := 0
	for range f.depth {
		i = 2*i + 1 + right(x[feat[i]], split[i])
	}
	return f.leaf[t*(f.inner+1)+i-f.inner]
}

// right is 1 when x > split, else 0, without a branch (Go emits none for float compares): the
// sign bit of split − x, exact in IEEE 754 (x − x = +0). Pass-through nodes (+Inf) fill both
// subtrees alike, so an x of +Inf, whose NaN difference may carry either sign, scores the same.
func right(x, split float64) int {
	return int(math.Float64bits(split-x) >> 63)
}

// walk4 walks four rows down tree t together: four independent chains of loads keep the core
// busy while each waits.
func (f *Forest) walk4(t int, x0, x1, x2, x3 []float64) (h0, h1, h2, h3 float64) {
	feat := f.feature[t*f.inner : (t+1)*f.inner]
	split := f.split[t*f.inner : (t+1)*f.inner]
	i0, i1, i2, i3 := 0, 0, 0, 0
	for range f.depth {
		i0 = 2*i0 + 1 + right(x0[feat[i0]], split[i0])
		i1 = 2*i1 + 1 + right(x1[feat[i1]], split[i1])
		i2 = 2*i2 + 1 + right(x2[feat[i2]], split[i2])
		i3 = 2*i3 + 1 + right(x3[feat[i3]], split[i3])
	}
	leaf := f.leaf[t*(f.inner+1) : (t+1)*(f.inner+1)]
	return leaf[i0-f.inner], leaf[i1-f.inner], leaf[i2-f.inner], leaf[i3-f.inner]
}

// walk8 walks eight rows of the block x (row-major, cols values each, from row k) down tree t.
func (f *Forest) walk8(t int, x []float64, k, cols int, acc []float64) {
	feat := f.feature[t*f.inner : (t+1)*f.inner]
	split := f.split[t*f.inner : (t+1)*f.inner]
	r0, r1, r2, r3 := x[k*cols:], x[(k+1)*cols:], x[(k+2)*cols:], x[(k+3)*cols:]
	r4, r5, r6, r7 := x[(k+4)*cols:], x[(k+5)*cols:], x[(k+6)*cols:], x[(k+7)*cols:]
	var i0, i1, i2, i3, i4, i5, i6, i7 int
	for range f.depth {
		i0 = 2*i0 + 1 + right(r0[feat[i0]], split[i0])
		i1 = 2*i1 + 1 + right(r1[feat[i1]], split[i1])
		i2 = 2*i2 + 1 + right(r2[feat[i2]], split[i2])
		i3 = 2*i3 + 1 + right(r3[feat[i3]], split[i3])
		i4 = 2*i4 + 1 + right(r4[feat[i4]], split[i4])
		i5 = 2*i5 + 1 + right(r5[feat[i5]], split[i5])
		i6 = 2*i6 + 1 + right(r6[feat[i6]], split[i6])
		i7 = 2*i7 + 1 + right(r7[feat[i7]], split[i7])
	}
	leaf, n := f.leaf[t*(f.inner+1):(t+1)*(f.inner+1)], f.inner
	a := acc[k : k+8]
	a[0] += leaf[i0-n]
	a[1] += leaf[i1-n]
	a[2] += leaf[i2-n]
	a[3] += leaf[i3-n]
	a[4] += leaf[i4-n]
	a[5] += leaf[i5-n]
	a[6] += leaf[i6-n]
	a[7] += leaf[i7-n]
}

// Score is s(x) = 2^(−E[h(x)]/c(ψ)) in [0,1]: near 1 for points isolated quickly, well below
// 0.5 for dense ones. x must have Features() values.
func (f *Forest) Score(x []float64) float64 {
	return math.Exp2(-f.PathLength(x) / f.cpsi)
}

// block is the number of rows scored together tree by tree.
const block = 256

// ScoreAll scores rows×Features() values stored row-major, in parallel over the forest's
// workers, into out (allocated when nil or too short) and returns it.
func (f *Forest) ScoreAll(data []float64, rows int, out []float64) ([]float64, error) {
	cols := f.features
	if len(data) != rows*cols {
		return nil, fmt.Errorf("iforest: score: %d values for %d rows of %d features", len(data), rows, cols)
	}
	if len(out) < rows {
		out = make([]float64, rows)
	}
	out = out[:rows]
	blocks := (rows + block - 1) / block
	inv := 1 / (float64(f.trees) * f.cpsi)
	parallel(f.workers, blocks, func(next func() (int, bool)) {
		x := make([]float64, block*cols) // the block in single precision, as it was fitted
		for bl, ok := next(); ok; bl, ok = next() {
			lo, hi := bl*block, min((bl+1)*block, rows)
			acc := out[lo:hi]
			clear(acc)
			for i, v := range data[lo*cols : hi*cols] {
				x[i] = f32(v)
			}
			for r := range f.trees {
				k := 0
				for ; k+8 <= len(acc); k += 8 {
					f.walk8(r, x, k, cols, acc)
				}
				for ; k+4 <= len(acc); k += 4 {
					at := k * cols
					h0, h1, h2, h3 := f.walk4(r, x[at:at+cols], x[at+cols:at+2*cols], x[at+2*cols:at+3*cols], x[at+3*cols:at+4*cols])
					acc[k] += h0
					acc[k+1] += h1
					acc[k+2] += h2
					acc[k+3] += h3
				}
				for ; k < len(acc); k++ {
					acc[k] += f.walk(r, x[k*cols:(k+1)*cols])
				}
			}
			for k := range acc {
				acc[k] = math.Exp2(-acc[k] * inv)
			}
		}
	})
	return out, nil
}

// SetWorkers changes the parallelism of ScoreAll (≤ 0: GOMAXPROCS). Not safe during scoring.
func (f *Forest) SetWorkers(n int) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	f.workers = n
}

// parallel runs work on n goroutines that share a counter of jobs [0, jobs).
func parallel(workers, jobs int, work func(next func() (int, bool))) {
	workers = max(1, min(workers, jobs))
	var mu sync.Mutex
	k := 0
	next := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if k >= jobs {
			return 0, false
		}
		k++
		return k - 1, true
	}
	if workers == 1 {
		work(next)
		return
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { work(next) })
	}
	wg.Wait()
}

// Model is the exported form of a Forest, for gob or JSON: the complete-tree arrays.
type Model struct {
	Features int
	Sample   int
	Depth    int
	Trees    int
	Feature  []int32
	Split    []float64
	Leaf     []float64
}

// Model exports the forest.
func (f *Forest) Model() Model {
	return Model{Features: f.features, Sample: f.psi, Depth: f.depth, Trees: f.trees,
		Feature: slices.Clone(f.feature), Split: slices.Clone(f.split), Leaf: slices.Clone(f.leaf)}
}

// FromModel rebuilds a forest exported by Model, checking sizes and attribute indices.
func FromModel(m Model) (*Forest, error) {
	if m.Features <= 0 || m.Sample <= 0 || m.Trees <= 0 || m.Depth != HeightLimit(m.Sample) || m.Depth > 24 {
		return nil, fmt.Errorf("iforest: model: invalid header (features %d, sample %d, depth %d, trees %d)", m.Features, m.Sample, m.Depth, m.Trees)
	}
	f := newForest(m.Trees, m.Depth, m.Features, m.Sample, runtime.GOMAXPROCS(0))
	if len(m.Feature) != len(f.feature) || len(m.Split) != len(f.split) || len(m.Leaf) != len(f.leaf) {
		return nil, errors.New("iforest: model: arrays do not match the header")
	}
	for i, q := range m.Feature {
		if q < 0 || int(q) >= m.Features {
			return nil, fmt.Errorf("iforest: model: node %d splits on attribute %d of %d", i, q, m.Features)
		}
	}
	copy(f.feature, m.Feature)
	copy(f.split, m.Split)
	copy(f.leaf, m.Leaf)
	return f, nil
}
