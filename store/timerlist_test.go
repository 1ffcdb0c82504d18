package store

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// Paging through ListTimers with its cursor gives every armed timer once,
// in the order of one unlimited walk, whatever the page size: timers that
// share a due time, timers moved later (whose due index entry stays
// early) and a cancelled one (a tombstone in the index) included. The
// filters hold on every page, and a cursor the list did not give is
// refused with ErrInvalid.
func TestListTimersPagesWithACursor(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	db.update(func(tx *Tx) error {
		for i := range 30 {
			rule := []string{"pending-too-long", "no-reply"}[i%2]
			// Ten distinct due times, three timers each.
			tm := Timer{Key: ticket(fmt.Sprintf("%02d", i)), Rule: rule, Due: t0.Add(time.Duration(i%10) * time.Minute), ArmedAt: t0}
			if err := tx.PutTimer(tm); err != nil {
				return err
			}
		}
		for _, ref := range []string{"03", "14", "25"} { // moved later: entries stay early
			rule := map[string]string{"03": "no-reply", "14": "pending-too-long", "25": "no-reply"}[ref]
			if err := tx.PutTimer(Timer{Key: ticket(ref), Rule: rule, Due: t0.Add(time.Hour), ArmedAt: t0}); err != nil {
				return err
			}
		}
		return tx.DeleteTimer(ticket("06"), "pending-too-long")
	})
	all, err := db.Timers(TimerFilter{Limit: 1000})
	if err != nil || len(all) != 29 {
		t.Fatalf("all timers: %d %v, want 29", len(all), err)
	}
	if !slices.IsSortedFunc(all, compareTimers) {
		t.Fatalf("timers not in due order: %v", timerIDs(all))
	}
	for _, tt := range []struct {
		name string
		f    TimerFilter
		want []Timer
	}{
		{"all", TimerFilter{}, all},
		{"rule", TimerFilter{Rule: "no-reply"}, filterTimers(all, func(t Timer) bool { return t.Rule == "no-reply" })},
		{"entity key", TimerFilter{Entity: "zendesk/ticket/14"}, filterTimers(all, func(t Timer) bool { return t.Key.Reference == "14" })},
		{"due before", TimerFilter{DueBefore: t0.Add(5 * time.Minute)}, filterTimers(all, func(t Timer) bool { return t.Due.Before(t0.Add(5 * time.Minute)) })},
	} {
		for _, size := range []int{1, 2, 3, 7, 29, 30} {
			f := tt.f
			f.Limit = size
			var got []Timer
			for pages := 0; ; pages++ {
				if pages > 40 {
					t.Fatalf("%s, pages of %d: the cursor does not advance", tt.name, size)
				}
				page, next, err := db.ListTimers(f)
				if err != nil {
					t.Fatalf("%s, pages of %d: %v", tt.name, size, err)
				}
				if len(page) > size || next != "" && len(page) != size {
					t.Fatalf("%s, pages of %d: a page of %d with next %q", tt.name, size, len(page), next)
				}
				got = append(got, page...)
				if next == "" {
					break
				}
				f.Cursor = next
			}
			if !slices.Equal(timerIDs(got), timerIDs(tt.want)) {
				t.Errorf("%s, pages of %d\n got %v\nwant %v", tt.name, size, timerIDs(got), timerIDs(tt.want))
			}
		}
	}
	for _, bad := range []string{"not base64!", "AAAA", "AAAAAAAAAAAA"} {
		if _, _, err := db.ListTimers(TimerFilter{Cursor: bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("cursor %q: %v, want ErrInvalid", bad, err)
		}
	}
}

func filterTimers(ts []Timer, keep func(Timer) bool) []Timer {
	var out []Timer
	for _, t := range ts {
		if keep(t) {
			out = append(out, t)
		}
	}
	return out
}
