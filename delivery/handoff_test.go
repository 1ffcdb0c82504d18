package delivery

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/connectors"
	"github.com/hookline/hookline/store"
)

// claimNew writes d claimed (as the pipeline does when the dispatcher has
// room) and reports whether the store claimed it.
func claimNew(t *testing.T, db *store.DB, d *store.Delivery) bool {
	t.Helper()
	var claimed bool
	if err := db.Update(func(tx *store.Tx) (err error) {
		claimed, err = tx.AddDeliveryClaimed(d)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return claimed
}

// Deliveries claimed as they are written reach the workers through
// Reserve and Submit, without a claim transaction, and are recorded like
// any other; room is bounded by the claim-ahead limit and comes back when
// the sends finish.
func TestHandoffSendsClaimedDeliveries(t *testing.T) {
	clock := newRunningClock()
	db := openDB(t, clock.Now)
	release := make(chan struct{})
	var got atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
		got.Add(1)
	}))
	defer sink.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	d, err := New(db, map[string]*connectors.Outbound{"zendesk": outbound("zendesk", sink.URL)}, Config{Workers: 2, Now: clock.Now, Rand: noJitter, EgressAllow: loopback, MaxIdle: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if n := d.Reserve(1); n != 0 {
		t.Fatalf("Reserve before Run gave %d, want 0", n)
	}
	r := start(t, db, map[string]*connectors.Outbound{"zendesk": outbound("zendesk", sink.URL)}, Config{Workers: 2, Now: clock.Now, MaxIdle: 20 * time.Millisecond})
	maxAhead := min(prefetchFactor*2, maxClaim)
	var n int
	deadline := time.Now().Add(5 * time.Second)
	for n = r.d.Reserve(maxAhead + 10); n == 0 && time.Now().Before(deadline); n = r.d.Reserve(maxAhead + 10) {
		time.Sleep(time.Millisecond) // Run has not published its work channel yet
	}
	if n != maxAhead {
		t.Fatalf("Reserve(%d) gave %d, want the claim-ahead bound %d", maxAhead+10, n, maxAhead)
	}
	if more := r.d.Reserve(1); more != 0 {
		t.Fatalf("Reserve past the bound gave %d", more)
	}
	var ids []string
	var claimed []*store.Delivery
	for i := range 3 {
		del := httpDelivery("zendesk", string(rune('A'+i)), sink.URL+"/x", `{}`)
		if !claimNew(t, db, del) {
			t.Fatalf("delivery %d was not claimed: its queue is empty", i)
		}
		ids = append(ids, del.ID)
		claimed = append(claimed, del)
	}
	r.d.Release(n - len(claimed))
	r.d.Submit(claimed)
	close(release)
	for _, id := range ids {
		if del := waitFinal(t, db, id); del.State != store.DeliverySucceeded || len(del.Attempts) != 1 {
			t.Fatalf("delivery %s: %s", id, describe(del))
		}
	}
	if got.Load() != 3 {
		t.Fatalf("sink got %d requests, want 3", got.Load())
	}
	deadline = time.Now().Add(5 * time.Second)
	for r.d.outstanding.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if o := r.d.outstanding.Load(); o != 0 {
		t.Fatalf("outstanding %d after every send finished, want 0", o)
	}
	if n := r.d.Reserve(1); n != 1 {
		t.Fatalf("room did not come back: Reserve(1) = %d", n)
	}
	r.d.Release(1)
}

// A delivery claimed while the dispatcher stops goes back to pending,
// uncharged, instead of staying in flight until a restart.
func TestHandoffAfterStopPutsBack(t *testing.T) {
	clock := newRunningClock()
	db := openDB(t, clock.Now)
	r := start(t, db, map[string]*connectors.Outbound{"zendesk": outbound("zendesk", "http://127.0.0.1:1")}, Config{Workers: 1, Now: clock.Now})
	deadline := time.Now().Add(5 * time.Second)
	n := 0
	for n = r.d.Reserve(1); n == 0 && time.Now().Before(deadline); n = r.d.Reserve(1) {
		time.Sleep(time.Millisecond)
	}
	if n != 1 {
		t.Fatal("no room reserved")
	}
	del := httpDelivery("zendesk", "T1", "http://127.0.0.1:1/x", `{}`)
	if !claimNew(t, db, del) {
		t.Fatal("not claimed")
	}
	r.stop(t)
	if m := r.d.Reserve(1); m != 0 {
		t.Fatalf("Reserve after Run returned gave %d", m)
	}
	r.d.Submit([]*store.Delivery{del})
	got, err := db.Delivery(del.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.DeliveryPending || len(got.Attempts) != 0 {
		t.Fatalf("after Submit to a stopped dispatcher: %s", describe(got))
	}
}
