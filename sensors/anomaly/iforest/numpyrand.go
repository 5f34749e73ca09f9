package iforest

// The random streams of scikit-learn's IsolationForest, reproduced so that a forest fitted here
// with Seed s is the forest scikit-learn 1.2 fits with random_state=s on the same data: the
// same subsamples, attributes and split points, hence the same scores. Nothing is shared with
// it but the arithmetic: numpy's legacy RandomState (MT19937 with masked rejection for bounded
// integers) draws the per-tree seeds and subsamples, and the tree builder's xorshift draws
// attributes and split points.

// mt19937 is the 32-bit Mersenne Twister as numpy's legacy RandomState seeds it from an integer.
type mt19937 struct {
	state [624]uint32
	next  int
}

func newMT19937(seed uint32) *mt19937 {
	m := &mt19937{next: 624}
	m.state[0] = seed
	for i := 1; i < 624; i++ {
		prev := m.state[i-1]
		m.state[i] = 1812433253*(prev^(prev>>30)) + uint32(i)
	}
	return m
}

func (m *mt19937) uint32() uint32 {
	if m.next >= 624 {
		m.twist()
	}
	y := m.state[m.next]
	m.next++
	y ^= y >> 11
	y ^= (y << 7) & 0x9d2c5680
	y ^= (y << 15) & 0xefc60000
	y ^= y >> 18
	return y
}

func (m *mt19937) twist() {
	const upper, lower, matrix = 0x80000000, 0x7fffffff, 0x9908b0df
	for i := range 624 {
		y := m.state[i]&upper | m.state[(i+1)%624]&lower
		v := m.state[(i+397)%624] ^ y>>1
		if y&1 != 0 {
			v ^= matrix
		}
		m.state[i] = v
	}
	m.next = 0
}

// interval is a uniform integer in [0, max] by masked rejection: numpy's legacy
// random_interval, and its legacy randint(low, high) as low + interval(high−1−low).
func (m *mt19937) interval(max uint32) uint32 {
	if max == 0 {
		return 0
	}
	mask := max
	mask |= mask >> 1
	mask |= mask >> 2
	mask |= mask >> 4
	mask |= mask >> 8
	mask |= mask >> 16
	for {
		if v := m.uint32() & mask; v <= max {
			return v
		}
	}
}

// maxInt32 is numpy's np.iinfo(np.int32).max, the bound of the seeds scikit-learn draws.
const maxInt32 = 1<<31 - 1

// treeSeeds are the per-tree seeds of a forest of n trees: RandomState(seed).randint(MAX_INT, size=n).
func treeSeeds(seed uint32, n int) []uint32 {
	m := newMT19937(seed)
	out := make([]uint32, n)
	for i := range out {
		out[i] = m.interval(maxInt32 - 1)
	}
	return out
}

// subsample marks in seen the k of n rows a tree is grown on, drawn from m as scikit-learn's
// sample_without_replacement(n, k) does: a permutation's first k for 1% < k/n < 99%, tracking
// selection below 20%, reservoir sampling otherwise. perm is scratch of at least n values.
func subsample(m *mt19937, n, k int, seen []uint64, perm []int32) {
	mark := func(i int32) { seen[i>>6] |= 1 << (i & 63) }
	ratio := float64(k) / float64(n)
	switch {
	case ratio > 0.01 && ratio < 0.99:
		perm = perm[:n]
		for i := range perm {
			perm[i] = int32(i)
		}
		for i := n - 1; i >= 1; i-- {
			j := m.interval(uint32(i))
			perm[i], perm[j] = perm[j], perm[i]
		}
		for _, i := range perm[:k] {
			mark(i)
		}
	case ratio < 0.2:
		for range k {
			for {
				j := int32(m.interval(uint32(n - 1)))
				if seen[j>>6]&(1<<(j&63)) == 0 {
					mark(j)
					break
				}
			}
		}
	default:
		out := perm[:k]
		for i := range out {
			out[i] = int32(i)
		}
		for i := k; i < n; i++ {
			if j := m.interval(uint32(i)); int(j) < k {
				out[j] = int32(i)
			}
		}
		for _, i := range out {
			mark(i)
		}
	}
}

// randRMax is scikit-learn's RAND_R_MAX, 2^31 − 1.
const randRMax = 0x7fffffff

// xorshift is the tree builder's generator (scikit-learn's our_rand_r).
type xorshift uint32

func (s *xorshift) next() uint32 {
	if *s == 0 {
		*s = 1
	}
	v := uint32(*s)
	v ^= v << 13
	v ^= v >> 17
	v ^= v << 5
	*s = xorshift(v)
	return v & randRMax
}

// intn is a value in [lo, hi) (rand_int).
func (s *xorshift) intn(lo, hi int) int { return lo + int(s.next()%uint32(hi-lo)) }

// uniform is a value in [lo, hi] (rand_uniform).
func (s *xorshift) uniform(lo, hi float64) float64 {
	return (hi-lo)*float64(s.next())/float64(randRMax) + lo
}
