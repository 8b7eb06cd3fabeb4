package eval

// Spread returns at most n of us, evenly spread over them (every
// len(us)/n-th, the first included), in their order; all of them when
// n <= 0 or there are no more than n. Fits and the retrain's guard rank
// such a spread of their users when there are too many.
func Spread[T any](us []T, n int) []T {
	if n <= 0 || len(us) <= n {
		return us
	}
	out := make([]T, n)
	for j := range out {
		out[j] = us[j*len(us)/n]
	}
	return out
}

// UserBound resolves a configured bound on the users ranked: 0 gives
// def, a negative one no bound (0), any other is kept.
func UserBound(n, def int) int {
	switch {
	case n < 0:
		return 0
	case n == 0:
		return def
	}
	return n
}
