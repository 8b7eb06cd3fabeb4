package testutil

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := NewClock(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("Now = %v, want %v", c.Now(), t0)
	}
	c.Add(time.Hour)
	if want := t0.Add(time.Hour); !c.Now().Equal(want) {
		t.Fatalf("after Add: %v, want %v", c.Now(), want)
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Fatalf("after Set: %v, want %v", c.Now(), t0)
	}
}

func TestWins(t *testing.T) {
	lost := errors.New("lost")
	var mu sync.Mutex
	taken := false
	won := Wins(t, 8, lost, func(int) error {
		mu.Lock()
		defer mu.Unlock()
		if taken {
			return fmt.Errorf("create: %w", lost)
		}
		taken = true
		return nil
	})
	if won != 1 {
		t.Fatalf("won = %d, want 1", won)
	}
}
