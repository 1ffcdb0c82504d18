package gateway

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
	"github.com/hookline/hookline/store"
)

// GET /api/v1/timers pages like GET /api/v1/events: limit (default 50, at
// most 1000) and next_cursor, which is "" on the last page. Following it
// lists every armed timer once and in due order, well past 1,000, with the
// rule, entity and due_before filters holding on every page; a cursor the
// list did not give is a 400.
func TestListTimersPagesPastAThousand(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	gw, _ := runServer(t, timerConfig(t, timerRules), t.TempDir(), nil, clock.now)
	const n = 2345
	err := gw.db.Update(func(tx *store.Tx) error {
		for i := range n {
			rule, entity := "pending-1h", "ticket"
			if i%3 == 0 {
				rule, entity = "idle-chat", "chat"
			}
			// Many share a due time; all are due hours after the clock.
			due := t0.Add(2*time.Hour + time.Duration(i%400)*time.Minute)
			k := event.EntityKey{Connector: "generic", Entity: entity, Reference: fmt.Sprintf("R-%04d", i)}
			if err := tx.PutTimer(store.Timer{Key: k, Rule: rule, Due: due, ArmedAt: t0}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	type page struct {
		Timers     []store.Timer `json:"timers"`
		NextCursor *string       `json:"next_cursor"`
	}
	// list follows next_cursor from query and returns every timer and the
	// size of each page.
	list := func(query url.Values) ([]store.Timer, []int) {
		t.Helper()
		var all []store.Timer
		var sizes []int
		for cursor := ""; ; {
			q := url.Values{}
			for k, v := range query {
				q[k] = v
			}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			r := do(t, "GET", gw.URL+"/api/v1/timers?"+q.Encode(), nil, nil)
			var p page
			decodeJSON(t, r.Body, &p)
			if r.Status != 200 || p.NextCursor == nil {
				t.Fatalf("GET /api/v1/timers?%s: %d with %d timers and next_cursor %v, want 200 with next_cursor: %.300s",
					q.Encode(), r.Status, len(p.Timers), p.NextCursor, r.Body)
			}
			all = append(all, p.Timers...)
			sizes = append(sizes, len(p.Timers))
			if *p.NextCursor == "" {
				return all, sizes
			}
			if len(sizes) > n {
				t.Fatalf("GET /api/v1/timers?%s: the cursor does not advance", q.Encode())
			}
			cursor = *p.NextCursor
		}
	}
	names := func(ts []store.Timer) []string {
		out := make([]string, len(ts))
		for i, tm := range ts {
			out[i] = tm.Key.String() + "#" + tm.Rule
		}
		return out
	}
	inDueOrder := func(ts []store.Timer) bool {
		return slices.IsSortedFunc(ts, func(a, b store.Timer) int { return a.Due.Compare(b.Due) })
	}

	all, sizes := list(url.Values{"limit": {"1000"}})
	if len(all) != n || !slices.Equal(sizes, []int{1000, 1000, n - 2000}) || !inDueOrder(all) {
		t.Fatalf("pages of 1000: %d timers in pages %v (in due order: %v), want %d in pages [1000 1000 %d]", len(all), sizes, inDueOrder(all), n, n-2000)
	}
	seen := map[string]bool{}
	for _, name := range names(all) {
		if seen[name] {
			t.Fatalf("timer %s listed twice", name)
		}
		seen[name] = true
	}
	// A limit past the maximum is the maximum; no limit is 50 a page.
	if _, sizes := list(url.Values{"limit": {"5000"}}); sizes[0] != 1000 {
		t.Errorf("limit=5000: first page of %d, want 1000", sizes[0])
	}
	if got, sizes := list(nil); !slices.Equal(names(got), names(all)) || sizes[0] != 50 || len(sizes) != (n+49)/50 {
		t.Errorf("default pages: %d timers in %d pages, first of %d; want the same %d in pages of 50", len(got), len(sizes), sizes[0], n)
	}

	keep := func(cond func(store.Timer) bool) []string {
		var out []string
		for _, tm := range all {
			if cond(tm) {
				out = append(out, tm.Key.String()+"#"+tm.Rule)
			}
		}
		return out
	}
	before := t0.Add(5 * time.Hour)
	for _, tt := range []struct {
		query url.Values
		want  []string
	}{
		{url.Values{"rule": {"pending-1h"}, "limit": {"300"}}, keep(func(tm store.Timer) bool { return tm.Rule == "pending-1h" })},
		{url.Values{"entity": {"chat"}, "limit": {"250"}}, keep(func(tm store.Timer) bool { return tm.Key.Entity == "chat" })},
		{url.Values{"entity": {"generic/ticket/R-0007"}}, []string{"generic/ticket/R-0007#pending-1h"}},
		{url.Values{"due_before": {before.Format(time.RFC3339)}, "limit": {"400"}}, keep(func(tm store.Timer) bool { return tm.Due.Before(before) })},
	} {
		got, _ := list(tt.query)
		if !slices.Equal(names(got), tt.want) {
			t.Errorf("%s: %d timers, want %d", tt.query.Encode(), len(got), len(tt.want))
		}
	}
	for _, bad := range []string{"garbage!", "AAAA"} {
		r := do(t, "GET", gw.URL+"/api/v1/timers?cursor="+url.QueryEscape(bad), nil, nil)
		if r.Status != 400 || !strings.Contains(string(r.Body), "not one a timer list gave") {
			t.Errorf("cursor %q: %d %s, want 400", bad, r.Status, r.Body)
		}
	}
}
