package store

import (
	"errors"
	"testing"
	"time"

	"github.com/hookline/hookline/event"
)

func ticket(ref string) event.EntityKey {
	return event.EntityKey{Connector: "zendesk", Entity: "ticket", Reference: ref}
}

func timerIDs(ts []Timer) []string {
	return ids(ts, func(t Timer) string { return t.Key.String() + "#" + t.Rule })
}

func TestTimersDueRangeAndReplace(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	chat := event.EntityKey{Connector: "livechat", Entity: "chat", Reference: "c9"}
	db.update(func(tx *Tx) error {
		for _, tm := range []Timer{
			{Key: ticket("1"), Rule: "pending-too-long", Due: t0.Add(48 * time.Hour)},
			{Key: ticket("2"), Rule: "pending-too-long", Due: t0.Add(time.Hour)},
			{Key: ticket("1"), Rule: "no-reply", Due: t0.Add(2 * time.Hour)},
			{Key: chat, Rule: "abandoned", Due: t0.Add(30 * time.Minute)},
			{Key: ticket("3"), Rule: "no-reply", Due: t0.Add(-time.Minute)},
		} {
			tm.ArmedAt = t0
			if err := tx.PutTimer(tm); err != nil {
				return err
			}
		}
		return nil
	})

	due, err := db.DueTimers(t0.Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"zendesk/ticket/3#no-reply", "livechat/chat/c9#abandoned", "zendesk/ticket/2#pending-too-long"}
	if got := timerIDs(due); !equalStrings(got, want) {
		t.Fatalf("due timers\n got %v\nwant %v", got, want)
	}
	if due, _ := db.DueTimers(t0.Add(time.Hour), 2); len(due) != 2 {
		t.Fatalf("limit 2 gave %d", len(due))
	}
	next, ok, err := db.NextTimerDue()
	if err != nil || !ok || !next.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("next due %v %v %v", next, ok, err)
	}

	// Replace: ticket 2's timer moves past ticket 1's no-reply.
	db.update(func(tx *Tx) error {
		return tx.PutTimer(Timer{Key: ticket("2"), Rule: "pending-too-long", Due: t0.Add(3 * time.Hour), ArmedAt: t0})
	})
	due, _ = db.DueTimers(t0.Add(time.Hour), 0)
	if got := timerIDs(due); !equalStrings(got, want[:2]) {
		t.Fatalf("after replace\n got %v\nwant %v", got, want[:2])
	}
	all, err := db.Timers(TimerFilter{})
	if err != nil {
		t.Fatal(err)
	}
	wantAll := []string{"zendesk/ticket/3#no-reply", "livechat/chat/c9#abandoned", "zendesk/ticket/1#no-reply",
		"zendesk/ticket/2#pending-too-long", "zendesk/ticket/1#pending-too-long"}
	if got := timerIDs(all); !equalStrings(got, wantAll) {
		t.Fatalf("all timers\n got %v\nwant %v", got, wantAll)
	}

	filters := []struct {
		name string
		f    TimerFilter
		want []string
	}{
		{"rule", TimerFilter{Rule: "no-reply"}, []string{"zendesk/ticket/3#no-reply", "zendesk/ticket/1#no-reply"}},
		{"entity type", TimerFilter{Entity: "chat"}, []string{"livechat/chat/c9#abandoned"}},
		{"entity key", TimerFilter{Entity: "zendesk/ticket/1"}, []string{"zendesk/ticket/1#no-reply", "zendesk/ticket/1#pending-too-long"}},
		{"due before", TimerFilter{DueBefore: t0.Add(2 * time.Hour)}, []string{"zendesk/ticket/3#no-reply", "livechat/chat/c9#abandoned"}},
		{"limit", TimerFilter{Limit: 1}, []string{"zendesk/ticket/3#no-reply"}},
	}
	for _, ft := range filters {
		got, err := db.Timers(ft.f)
		if err != nil {
			t.Fatal(err)
		}
		if ids := timerIDs(got); !equalStrings(ids, ft.want) {
			t.Errorf("%s\n got %v\nwant %v", ft.name, ids, ft.want)
		}
	}

	db.update(func(tx *Tx) error {
		got, err := tx.Timer(ticket("2"), "pending-too-long")
		if err != nil || got == nil || !got.Due.Equal(t0.Add(3*time.Hour)) {
			t.Fatalf("Timer: %+v %v", got, err)
		}
		if got, err := tx.Timer(ticket("2"), "no-reply"); got != nil || err != nil {
			t.Fatalf("missing timer: %+v %v", got, err)
		}
		of, err := tx.TimersOf(ticket("1"))
		if err != nil {
			return err
		}
		if ids := timerIDs(of); !equalStrings(ids, []string{"zendesk/ticket/1#no-reply", "zendesk/ticket/1#pending-too-long"}) {
			t.Fatalf("TimersOf: %v", ids)
		}
		if of, _ := tx.TimersOf(ticket("")); len(of) != 0 {
			t.Fatalf("TimersOf empty reference: %v", timerIDs(of))
		}
		if err := tx.DeleteTimer(ticket("3"), "no-reply"); err != nil {
			return err
		}
		return tx.DeleteTimer(ticket("3"), "no-reply") // deleting again is fine
	})
	due, _ = db.DueTimers(t0.Add(time.Hour), 0)
	if got := timerIDs(due); !equalStrings(got, want[1:2]) {
		t.Fatalf("after delete %v", got)
	}
	st, _ := db.Stats()
	if st.Timers != 4 {
		t.Fatalf("stats timers %d, want 4", st.Timers)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	db.reopen()
	if all, _ := db.Timers(TimerFilter{}); len(all) != 4 {
		t.Fatalf("after reopen %d timers", len(all))
	}
}

func TestDueTimersDoesNotReadLaterTimers(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	db.update(func(tx *Tx) error {
		return tx.PutTimer(Timer{Key: ticket("1"), Rule: "r", Due: t0})
	})
	// A broken timer due later: the range scan must stop before it.
	late, _ := timerKey(ticket("2"), "r")
	putRaw(t, db.DB, bucketEntities, recordKey(late), []byte("{broken"))
	putRaw(t, db.DB, bucketTimersDue, dueEntry{at: nanos(t0.Add(time.Hour))}.key(late), present())
	due, err := db.DueTimers(t0, 0)
	if err != nil {
		t.Fatalf("due timers read past now: %v", err)
	}
	if len(due) != 1 {
		t.Fatalf("%d due", len(due))
	}
	if _, err := db.DueTimers(t0.Add(time.Hour), 0); err == nil {
		t.Fatal("broken timer due now was not read")
	}
}

func TestFingerprints(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	fp := Fingerprint{Connector: "zendesk", Entity: "ticket", Reference: "35436", Field: "status", Value: "solved", DeliveryID: "d1", Hops: 1, Expires: t0.Add(time.Minute)}
	db.update(func(tx *Tx) error {
		if err := tx.PutFingerprint(fp); err != nil {
			return err
		}
		return tx.PutFingerprint(Fingerprint{Connector: "zendesk", Entity: "ticket", Reference: "35436", Field: "priority", Value: "high", DeliveryID: "d2", Expires: t0.Add(time.Hour)})
	})
	match := func(field, value string, now time.Time) *Fingerprint {
		t.Helper()
		var got *Fingerprint
		if err := db.View(func(tx *Tx) error {
			var err error
			got, err = tx.MatchFingerprint("zendesk", "ticket", "35436", field, value, now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		name, field, value string
		at                 time.Duration
		want               string // delivery id, "" = no match
	}{
		{"fresh", "status", "solved", 0, "d1"},
		{"other value", "status", "open", 0, ""},
		{"other field", "priority", "solved", 0, ""},
		{"just before expiry", "status", "solved", time.Minute - 1, "d1"},
		{"at expiry", "status", "solved", time.Minute, ""},
		{"second fingerprint", "priority", "high", 30 * time.Minute, "d2"},
	}
	for _, tt := range tests {
		got := match(tt.field, tt.value, t0.Add(tt.at))
		switch {
		case tt.want == "" && got != nil:
			t.Errorf("%s: matched %+v", tt.name, got)
		case tt.want != "" && (got == nil || got.DeliveryID != tt.want):
			t.Errorf("%s: got %+v, want delivery %s", tt.name, got, tt.want)
		}
	}
	if got := match("status", "solved", t0); got.Hops != 1 || !got.Expires.Equal(fp.Expires) {
		t.Fatalf("fingerprint fields: %+v", got)
	}

	// Renewing the status fingerprint (its delivery's, as a success moves
	// it) moves its expiry; pruning at the old expiry keeps it.
	fp.Expires = t0.Add(2 * time.Hour)
	db.update(func(tx *Tx) error { return tx.PutFingerprint(fp) })
	n, err := db.PruneFingerprints(t0.Add(90 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("pruned %d, want 1 (priority)", n)
	}
	if got := match("status", "solved", t0.Add(90*time.Minute)); got == nil || got.DeliveryID != "d1" {
		t.Fatalf("renewed fingerprint: %+v", got)
	}
	if n, _ := db.PruneFingerprints(t0.Add(3 * time.Hour)); n != 1 {
		t.Fatalf("second prune %d, want 1", n)
	}
	if err := db.Update(func(tx *Tx) error { return tx.PutFingerprint(Fingerprint{Connector: "z", Field: "a\x00b"}) }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NUL in field: %v", err)
	}
}
