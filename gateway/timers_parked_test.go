package gateway

import (
	"net/url"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

// A paused clock's timer is parked (due a year ahead, firing nothing but a
// check of pause_when): the timer list and the entity endpoint say so,
// and a running timer is not marked.
func TestParkedTimersAreMarked(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	clock := newFakeClock(t0)
	const pause = "pause_when: { field: custom.snoozed, is: true }"
	gw, _ := runServer(t, timerConfig(t, rulesFile(pendingRule("pending", "1h", pause))), t.TempDir(), nil, clock.now)
	gw.retime.wait()
	armDirect(t, gw.Server, clock.now(), []*event.Event{pendingTicket("T-1", t0), snoozedTicket("T-2", t0)})
	parked := func(timers []map[string]any) map[string]bool {
		out := map[string]bool{}
		for _, tm := range timers {
			out[tm["key"].(map[string]any)["reference"].(string)] = tm["parked"] == true
		}
		return out
	}
	var page struct {
		Timers []map[string]any `json:"timers"`
	}
	decodeJSON(t, do(t, "GET", gw.URL+"/api/v1/timers?due_before="+url.QueryEscape(t0.Add(400*24*time.Hour).Format(time.RFC3339)), nil, nil).Body, &page)
	if got := parked(page.Timers); len(got) != 2 || got["T-1"] || !got["T-2"] {
		t.Errorf("timers parked %v, want T-2's only", got)
	}
	for ref, want := range map[string]bool{"T-1": false, "T-2": true} {
		var ent struct {
			Timers []map[string]any `json:"timers"`
		}
		decodeJSON(t, do(t, "GET", gw.URL+"/api/v1/entities/generic/ticket/"+ref, nil, nil).Body, &ent)
		if got := parked(ent.Timers); len(got) != 1 || got[ref] != want {
			t.Errorf("entity %s: timers parked %v, want %v", ref, got, want)
		}
	}
}
