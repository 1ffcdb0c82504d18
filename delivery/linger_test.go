package delivery

import (
	"context"
	"testing"
	"time"
)

// TestLinger: outcomes that arrive within the linger window join the
// batch; the wait ends at the deadline, as soon as the batch is full, or
// when the dispatcher stops.
func TestLinger(t *testing.T) {
	var d Dispatcher
	timer := time.NewTimer(time.Hour)
	timer.Stop()

	t.Run("collects until the deadline", func(t *testing.T) {
		results := make(chan outcome, 8)
		go func() {
			for range 3 {
				results <- outcome{}
				time.Sleep(time.Millisecond)
			}
		}()
		start := time.Now()
		batch := d.linger(context.Background(), timer, results, []outcome{{}}, start.Add(200*time.Millisecond))
		if len(batch) != 4 {
			t.Errorf("batch holds %d outcomes, want the first and the 3 that came within the window", len(batch))
		}
		if waited := time.Since(start); waited < 200*time.Millisecond {
			t.Errorf("returned after %v, before the deadline", waited)
		}
	})

	t.Run("a full batch does not wait", func(t *testing.T) {
		results := make(chan outcome, finishLingerBatch)
		for range finishLingerBatch - 1 {
			results <- outcome{}
		}
		done := make(chan []outcome)
		go func() {
			done <- d.linger(context.Background(), timer, results, []outcome{{}}, time.Now().Add(time.Hour))
		}()
		select {
		case batch := <-done:
			if len(batch) != finishLingerBatch {
				t.Errorf("batch holds %d, want %d", len(batch), finishLingerBatch)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("linger waited for its deadline with a full batch")
		}
	})

	t.Run("stops with the dispatcher", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan []outcome)
		go func() { done <- d.linger(ctx, timer, make(chan outcome), []outcome{{}}, time.Now().Add(time.Hour)) }()
		cancel()
		select {
		case batch := <-done:
			if len(batch) != 1 {
				t.Errorf("batch holds %d, want the 1 it had", len(batch))
			}
		case <-time.After(30 * time.Second):
			t.Fatal("linger ignored the end of its context")
		}
	})

	t.Run("a past deadline returns at once", func(t *testing.T) {
		results := make(chan outcome, 1)
		results <- outcome{}
		batch := d.linger(context.Background(), timer, results, []outcome{{}}, time.Now().Add(-time.Millisecond))
		if len(batch) != 1 {
			t.Errorf("batch holds %d, want 1: nothing is taken after the deadline", len(batch))
		}
	})
}
