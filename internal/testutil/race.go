package testutil

import (
	"errors"
	"sync"
	"testing"
)

// Wins runs create(0) … create(n-1) concurrently and returns how many
// succeeded. An error that does not wrap lost (the error of a creator
// that lost the race, such as errs.Conflict) is a test error.
func Wins(tb testing.TB, n int, lost error, create func(i int) error) int {
	tb.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range n {
		wg.Go(func() {
			err := create(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case !errors.Is(err, lost):
				tb.Error(err)
			}
		})
	}
	wg.Wait()
	return won
}
