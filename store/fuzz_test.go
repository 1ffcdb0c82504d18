package store

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hookline/hookline/event"
)

// FuzzOutboxQueue runs a random sequence of outbox operations (add, add
// claimed at creation, claim,
// finish, retry, cancel, clock steps, reopen) and checks after every step
// that the indexes and counters match the deliveries, that only queue heads
// are claimed, that nothing eligible is left unclaimed by a full claim, and
// that refused operations are exactly the ones the state rules refuse.
func FuzzOutboxQueue(f *testing.F) {
	// Each step is three bytes: op (mod 7), a, b. See the switch below.
	f.Add([]byte{ // retry in front of a due head
		0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 2, 0, 2, 0, 2, 3, 0, 0, 1, 2, 0, 2, 0, 1, 1, 2, 0,
	})
	f.Add([]byte{ // retry while a later delivery is in flight, then a crash
		0, 1, 0, 0, 1, 0, 1, 2, 0, 2, 0, 2, 1, 2, 0, 3, 0, 0, 1, 2, 0, 2, 1, 0, 1, 2, 0, 6, 0, 0, 1, 2, 0,
	})
	f.Add([]byte{ // unordered, cancels, delayed retry, cancelled then retried
		0, 0, 0, 0, 2, 0, 0, 2, 0, 4, 1, 0, 1, 2, 0, 2, 0, 4, 5, 1, 0, 1, 2, 0, 2, 2, 3, 3, 2, 0, 1, 2, 0,
	})
	f.Add([]byte{ // crash with a retried delivery in front of the in-flight one
		0, 3, 0, 0, 3, 0, 0, 3, 0, 1, 2, 0, 2, 0, 2, 1, 2, 0, 3, 0, 0, 6, 0, 0, 1, 2, 0, 2, 0, 1, 1, 2, 0,
	})
	f.Add([]byte{ // small claims across queues, clock steps, refused operations
		0, 1, 0, 0, 2, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 4, 0, 0, 3, 1, 0, 2, 2, 8, 5, 2, 0, 1, 2, 0, 2, 3, 1,
	})
	f.Add([]byte{ // claimed at creation, behind it a plain add, finish, claim
		0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 2, 0, 2, 0, 1, 1, 2, 0, 0, 0, 1, 6, 0, 0, 1, 2, 0,
	})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 120 {
			ops = ops[:120]
		}
		db := mustOpen(t)
		refs := []string{"", "r1", "r2", "r3"}
		var all []string // delivery ids in creation order
		byte := func(i int) int {
			if i < len(ops) {
				return int(ops[i])
			}
			return 0
		}
		for i := 0; i < len(ops); i += 3 {
			a, b := byte(i+1), byte(i+2)
			switch ops[i] % 7 {
			case 0: // add (b odd: claimed as it is written, when it may be)
				if b%2 == 0 {
					all = append(all, addDeliveries(t, db, refs[a%len(refs)])...)
					continue
				}
				ref := refs[a%len(refs)]
				d := &Delivery{Connector: "zendesk", Entity: "ticket", Reference: ref, RuleID: "r", EventID: "ev",
					Update: event.Update{Kind: event.KindUpdateEntity, Connector: "zendesk", Reference: ref, Set: map[string]any{"status": "solved"}},
					// As every delivery the gateway stores with a request: one
					// without (it could not be built) is retried only through
					// the gateway, which builds it again.
					Request: Request{Method: "PUT", URL: "https://example.zendesk.com/api/v2/tickets/" + ref + ".json"}}
				var claimed bool
				db.update(func(tx *Tx) (err error) {
					claimed, err = tx.AddDeliveryClaimed(d)
					return err
				})
				if claimed && ref != "" {
					// Claimed at creation only with nothing else of its queue active.
					for _, id := range all {
						o, _ := db.Delivery(id)
						if o.Reference == ref && (o.State == DeliveryInFlight || o.State == DeliveryPending) {
							t.Fatalf("claimed %s at creation while %s of its queue is %s", d.ID, o.ID, o.State)
						}
					}
				}
				if !claimed && ref == "" {
					t.Fatalf("unordered %s not claimed at creation", d.ID)
				}
				all = append(all, d.ID)
			case 1: // claim
				limit := []int{1, 2, 1000}[a%3]
				claimed, err := db.ClaimDue(db.clock.Now(), limit)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range claimed {
					if d.NextAt.After(db.clock.Now()) {
						t.Fatalf("claimed %s due at %v, now %v", d.ID, d.NextAt, db.clock.Now())
					}
					if d.Reference == "" {
						continue
					}
					// Every earlier delivery of its queue is final and no other is in flight.
					for _, id := range all {
						o, _ := db.Delivery(id)
						if o.ID == d.ID || o.Connector != d.Connector || o.Reference != d.Reference {
							continue
						}
						if o.State == DeliveryInFlight || (o.ID < d.ID && o.State == DeliveryPending) {
							t.Fatalf("claimed %s while %s of the same queue is %s", d.ID, o.ID, o.State)
						}
					}
				}
				if limit == 1000 {
					checkNothingEligible(t, db, all)
				}
			case 2: // finish an in-flight delivery
				if len(all) == 0 {
					continue
				}
				id := all[a%len(all)]
				before, _ := db.Delivery(id)
				state := []string{DeliveryPending, DeliverySucceeded, DeliveryFailed, DeliveryCancelled}[b%4]
				var att *Attempt
				if b%2 == 0 {
					att = &Attempt{At: db.clock.Now(), Status: 500 + b%5}
				}
				err := db.FinishDelivery(id, att, state, db.clock.Now().Add(time.Duration(b/4%3)*time.Minute), "", nil)
				wantOK := before.State == DeliveryInFlight
				if wantOK != (err == nil) || (!wantOK && !errors.Is(err, ErrState)) {
					t.Fatalf("finish %s from %s: err %v", id, before.State, err)
				}
			case 3: // retry
				if len(all) == 0 {
					continue
				}
				id := all[a%len(all)]
				before, _ := db.Delivery(id)
				err := db.RetryDelivery(id, db.clock.Now())
				wantOK := before.State == DeliveryFailed || before.State == DeliveryCancelled
				if wantOK != (err == nil) || (!wantOK && !errors.Is(err, ErrState)) {
					t.Fatalf("retry %s from %s: err %v", id, before.State, err)
				}
			case 4: // cancel
				if len(all) == 0 {
					continue
				}
				id := all[a%len(all)]
				before, _ := db.Delivery(id)
				err := db.CancelDelivery(id, "fuzz")
				wantOK := before.State == DeliveryPending
				if wantOK != (err == nil) || (!wantOK && !errors.Is(err, ErrState)) {
					t.Fatalf("cancel %s from %s: err %v", id, before.State, err)
				}
			case 5: // clock
				db.clock.Advance(time.Duration(a%3) * time.Minute)
			case 6: // crash and reopen: in-flight deliveries come back pending
				var inflight []string
				for _, id := range all {
					if d, _ := db.Delivery(id); d.State == DeliveryInFlight {
						inflight = append(inflight, id)
					}
				}
				db.reopen()
				for _, id := range inflight {
					if d, _ := db.Delivery(id); d.State != DeliveryPending {
						t.Fatalf("in-flight %s is %s after reopen", id, d.State)
					}
				}
			}
			if err := checkOutbox(db.DB); err != nil {
				t.Fatalf("after op %d (%d): %v", i/3, ops[i]%7, err)
			}
		}
	})
}

// checkNothingEligible fails when a delivery that should be due now was
// left unclaimed: a pending unordered delivery, or the first pending
// delivery of a queue with nothing in flight, with NextAt <= now.
func checkNothingEligible(t *testing.T, db *testDB, all []string) {
	t.Helper()
	now := db.clock.Now()
	busy := map[string]bool{}
	first := map[string]*Delivery{}
	for _, id := range all {
		d, _ := db.Delivery(id)
		q := d.Connector + "/" + d.Reference
		switch {
		case d.State == DeliveryInFlight:
			busy[q] = true
		case d.State != DeliveryPending:
		case d.Reference == "":
			if !d.NextAt.After(now) {
				t.Fatalf("unordered %s due %v left unclaimed at %v", d.ID, d.NextAt, now)
			}
		case first[q] == nil || d.ID < first[q].ID:
			first[q] = d
		}
	}
	for q, d := range first {
		if !busy[q] && !d.NextAt.After(now) {
			t.Fatalf("queue %s head %s due %v left unclaimed at %v", q, d.ID, d.NextAt, now)
		}
	}
}

// FuzzTruncateUTF8 checks that truncation keeps a prefix of at most n
// bytes that is valid UTF-8 when the input is.
func FuzzTruncateUTF8(f *testing.F) {
	f.Add("plain ascii response", 5)
	f.Add("héllo wörld ☃☃☃", 8)
	f.Add(strings.Repeat("日本語", 2000), maxResponse)
	f.Add("", 0)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 {
			n = -n
		}
		n %= 10000
		got := truncateUTF8(s, n)
		if len(got) > n || !strings.HasPrefix(s, got) {
			t.Fatalf("truncateUTF8(%q, %d) = %q", s, n, got)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("split a character: %q", got)
		}
		if len(s) <= n && got != s {
			t.Fatalf("cut a string that fits")
		}
		if utf8.ValidString(s) && len(s) > n && n-len(got) >= utf8.UTFMax {
			t.Fatalf("cut %d bytes more than needed", n-len(got))
		}
	})
}
