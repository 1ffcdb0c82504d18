package gateway

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
	"time"
)

// A captured Zendesk webhook sent again with a new invocation id (the
// dedupe key, which Zendesk does not sign) is answered as a duplicate of
// the first, within the timestamp tolerance; a request signed anew is a
// new webhook.
func TestSignedReplayWithNewDedupeKeyIsADuplicate(t *testing.T) {
	ts := startServer(t, copyConfigs(t), nil, nil)
	body, err := os.ReadFile("../connectors/testdata/payloads/zendesk-ticket-status-changed.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func(stamp, invocation string) (int, string, bool) {
		t.Helper()
		r := postZendesk(t, ts, body, stamp, invocation)
		var ans struct {
			ID        string `json:"id"`
			Duplicate bool   `json:"duplicate"`
		}
		if err := json.Unmarshal(r.Body, &ans); err != nil {
			t.Fatalf("answer %d %s: %v", r.Status, r.Body, err)
		}
		return r.Status, ans.ID, ans.Duplicate
	}
	stamp := time.Now().UTC().Format(time.RFC3339)
	status, first, _ := post(stamp, "inv-1")
	if status != 202 || first == "" {
		t.Fatalf("first copy: %d %q", status, first)
	}
	for _, inv := range []string{"inv-attacker", "inv-1"} {
		if status, id, dup := post(stamp, inv); status != 200 || !dup || id != first {
			t.Fatalf("copy with invocation id %s: %d id %q duplicate %v, want 200, the first id %s, duplicate", inv, status, id, dup, first)
		}
	}
	// Signed again a second later (a new timestamp): a new request.
	later := time.Now().UTC().Add(time.Second).Format(time.RFC3339)
	if status, id, dup := post(later, "inv-2"); status != 202 || dup || id == first {
		t.Fatalf("a request signed anew: %d id %q duplicate %v, want 202 and a new id", status, id, dup)
	}
}

func TestReplayGuard(t *testing.T) {
	g := newReplayGuard()
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	const win = 10 * time.Minute
	if _, _, st := g.check("z", "k1", win, now); st != replayNew {
		t.Fatalf("first: %v", st)
	}
	if _, _, st := g.check("z", "k1", win, now); st != replayInFlight {
		t.Fatalf("while stored: %v", st)
	}
	if _, _, st := g.check("other", "k1", win, now); st != replayNew {
		t.Fatalf("the same key of another connector: %v", st)
	}
	g.done(keyOf("z", "k1"), "ID1")
	if _, id, st := g.check("z", "k1", win, now.Add(win-time.Second)); st != replaySeen || id != "ID1" {
		t.Fatalf("after done: %v %q", st, id)
	}
	g.forget(keyOf("z", "k1")) // a stored request is not forgotten
	if _, _, st := g.check("z", "k1", win, now.Add(time.Minute)); st != replaySeen {
		t.Fatalf("forget after done: %v", st)
	}
	if _, _, st := g.check("z", "k1", win, now.Add(win)); st != replayNew {
		t.Fatalf("after the window: %v", st)
	}
	g.check("z", "k2", win, now)
	g.forget(keyOf("z", "k2"))
	if _, _, st := g.check("z", "k2", win, now); st != replayNew {
		t.Fatalf("after forget: %v", st)
	}
	// A platform retrying a request that keeps failing to store takes the
	// released entry over: the order does not grow per attempt.
	g = newReplayGuard()
	g.check("z", "first", win, now) // an older entry, unexpired, at the front
	g.done(keyOf("z", "first"), "ID0")
	for range 100 {
		if _, _, st := g.check("z", "failing", win, now); st != replayNew {
			t.Fatalf("a released request: %v", st)
		}
		g.forget(keyOf("z", "failing"))
	}
	if n := len(g.order) - g.head; n != 2 {
		t.Fatalf("order holds %d slots after 100 failed stores, want 2", n)
	}
	// The cap: the oldest go first.
	g = newReplayGuard()
	for i := 0; i <= maxReplayEntries; i++ {
		k := strconv.Itoa(i)
		g.check("z", k, win, now)
		g.done(keyOf("z", k), "ID"+k)
	}
	if n := len(g.entries); n != maxReplayEntries {
		t.Fatalf("%d entries kept, cap %d", n, maxReplayEntries)
	}
	newest := strconv.Itoa(maxReplayEntries)
	if _, id, st := g.check("z", newest, win, now); st != replaySeen || id != "ID"+newest {
		t.Fatalf("the newest entry: %v %q", st, id)
	}
	if _, _, st := g.check("z", "0", win, now); st != replayNew {
		t.Fatalf("the oldest entry survived the cap: %v", st)
	}
}
