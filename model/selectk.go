package model

// selectBest reorders h so that its first k elements are its k best (by
// less: higher score first, ties to the lower item), in no particular
// order, by a partial quickselect: O(len(h)) on average, where a
// bounded heap pays a push of O(log k) for every element that enters
// it. k must be in [0, len(h)].
func selectBest(h []Scored, k int) {
	lo, hi := 0, len(h)-1
	for lo < hi {
		p := partitionBest(h, lo, hi)
		switch {
		case p == k-1 || p == k:
			return
		case p < k:
			lo = p + 1
		default:
			hi = p - 1
		}
	}
}

// partitionBest partitions h[lo:hi+1] around a median-of-three pivot so
// that the elements better than it come first, and returns the pivot's
// final index.
func partitionBest(h []Scored, lo, hi int) int {
	mid := lo + (hi-lo)/2
	// Median of three into h[hi] as the pivot.
	if less(h[lo], h[mid]) {
		h[lo], h[mid] = h[mid], h[lo]
	}
	if less(h[lo], h[hi]) {
		h[lo], h[hi] = h[hi], h[lo]
	}
	if less(h[hi], h[mid]) {
		h[mid], h[hi] = h[hi], h[mid]
	}
	pivot := h[hi]
	i := lo
	for j := lo; j < hi; j++ {
		if less(pivot, h[j]) {
			h[i], h[j] = h[j], h[i]
			i++
		}
	}
	h[i], h[hi] = h[hi], h[i]
	return i
}

// compareBest orders the better of two Scored first (slices.SortFunc).
func compareBest(a, b Scored) int {
	switch {
	case less(b, a):
		return -1
	case less(a, b):
		return 1
	}
	return 0
}
