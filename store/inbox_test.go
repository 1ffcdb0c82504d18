package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
)

// payload is a real Zendesk-style webhook body.
const payload = `{"type":"zen:event-type:ticket.status_changed","detail":{"id":"35436","status":"PENDING"},"event":{"current":"PENDING","previous":"OPEN"},"time":"2025-03-14T09:26:53Z"}`

func newItem(connector, key string) *InboxItem {
	return &InboxItem{
		Connector:   connector,
		Method:      "POST",
		Path:        "/hooks/" + connector,
		Headers:     map[string][]string{"Content-Type": {"application/json"}, "X-Zendesk-Webhook-Invocation-Id": {key}},
		ContentType: "application/json",
		Body:        []byte(payload),
		DedupeKey:   key,
	}
}

func mustAccept(t testing.TB, db *DB, item *InboxItem, window time.Duration) AcceptResult {
	t.Helper()
	res, err := db.Accept(context.Background(), item, window)
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	return res
}

func TestAcceptStoresItem(t *testing.T) {
	db := mustOpen(t)
	item := newItem("zendesk", "inv-1")
	item.Query = map[string][]string{"x": {"1"}}
	item.RawBody = []byte("a=1")
	res := mustAccept(t, db.DB, item, time.Hour)
	if res.Duplicate {
		t.Fatal("first accept reported duplicate")
	}
	if _, err := ulid.ParseStrict(res.ID); err != nil {
		t.Fatalf("id %q is not a ULID: %v", res.ID, err)
	}
	if item.ID != res.ID || item.State != InboxPending {
		t.Fatalf("item not updated: id %q state %q", item.ID, item.State)
	}
	got, err := db.Inbox(res.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != res.ID || got.Connector != "zendesk" || string(got.Body) != payload || string(got.RawBody) != "a=1" ||
		got.State != InboxPending || !got.ReceivedAt.Equal(db.clock.Now()) || got.Query["x"][0] != "1" ||
		got.Headers["X-Zendesk-Webhook-Invocation-Id"][0] != "inv-1" || !got.ProcessedAt.IsZero() {
		t.Fatalf("stored item differs: %+v", got)
	}
	if _, err := db.Inbox("01JNOSUCHITEM0000000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing item: err %v, want ErrNotFound", err)
	}
}

func TestAcceptDedupe(t *testing.T) {
	const window = 10 * time.Minute
	type step struct {
		advance   time.Duration
		connector string
		key       string
		window    time.Duration
		dupOf     int // index of the step whose id must come back; -1 = new item
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"duplicate inside window", []step{
			{0, "zendesk", "k", window, -1},
			{window - time.Nanosecond, "zendesk", "k", window, 0},
		}},
		{"expired key is replaced", []step{
			{0, "zendesk", "k", window, -1},
			{window, "zendesk", "k", window, -1},
			{time.Minute, "zendesk", "k", window, 1},
		}},
		{"same key other connector", []step{
			{0, "zendesk", "k", window, -1},
			{0, "freshdesk", "k", window, -1},
			{0, "freshdesk", "k", window, 1},
		}},
		{"empty key never deduplicates", []step{
			{0, "zendesk", "", window, -1},
			{0, "zendesk", "", window, -1},
		}},
		{"zero window never deduplicates", []step{
			{0, "zendesk", "k", 0, -1},
			{0, "zendesk", "k", 0, -1},
		}},
		{"window of the call decides", []step{
			{0, "zendesk", "k", time.Hour, -1},
			{30 * time.Minute, "zendesk", "k", window, -1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := mustOpen(t)
			var got []AcceptResult
			stored := 0
			for i, s := range tt.steps {
				db.clock.Advance(s.advance)
				res := mustAccept(t, db.DB, newItem(s.connector, s.key), s.window)
				got = append(got, res)
				if s.dupOf < 0 {
					if res.Duplicate {
						t.Fatalf("step %d: duplicate of %s, want new item", i, res.ID)
					}
					stored++
					continue
				}
				if !res.Duplicate || res.ID != got[s.dupOf].ID {
					t.Fatalf("step %d: got %+v, want duplicate of %s", i, res, got[s.dupOf].ID)
				}
			}
			st, err := db.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.InboxPending != stored {
				t.Fatalf("inbox pending %d, want %d", st.InboxPending, stored)
			}
			if err := checkCounters(db.DB); err != nil {
				t.Fatal(err)
			}
			if err := checkDedupe(db.DB); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestAcceptDuplicateInOneBatch commits two requests with the same key in
// one batch: the second must see the first.
func TestAcceptDuplicateInOneBatch(t *testing.T) {
	db := mustOpen(t)
	var reqs []*acceptReq
	for _, key := range []string{"same", "other", "same"} {
		req, err := db.prepareAccept(newItem("zendesk", key), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req)
	}
	db.commitBatch(reqs)
	var reps []acceptReply
	for _, r := range reqs {
		reps = append(reps, <-r.reply)
	}
	for i, rep := range reps {
		if rep.err != nil {
			t.Fatalf("request %d: %v", i, rep.err)
		}
	}
	if reps[0].res.Duplicate || reps[1].res.Duplicate {
		t.Fatalf("first two must be new: %+v", reps)
	}
	if !reps[2].res.Duplicate || reps[2].res.ID != reps[0].res.ID {
		t.Fatalf("third = %+v, want duplicate of %s", reps[2].res, reps[0].res.ID)
	}
	items, err := db.PendingInbox("", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("%d pending items, want 2", len(items))
	}
}

func TestAcceptConcurrentDuplicates(t *testing.T) {
	db := mustOpen(t)
	const n = 64
	results := make([]AcceptResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := db.Accept(context.Background(), newItem("zendesk", fmt.Sprint("key-", i%4)), time.Hour)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	wg.Wait()
	first := map[string]string{}
	for i, r := range results {
		if !r.Duplicate {
			key := fmt.Sprint(i % 4)
			if first[key] != "" {
				t.Fatalf("key %s stored twice (%s, %s)", key, first[key], r.ID)
			}
			first[key] = r.ID
		}
	}
	if len(first) != 4 {
		t.Fatalf("%d distinct keys stored, want 4", len(first))
	}
	for i, r := range results {
		if r.ID != first[fmt.Sprint(i%4)] {
			t.Fatalf("call %d got id %s, want %s", i, r.ID, first[fmt.Sprint(i%4)])
		}
	}
	st, err := db.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.InboxPending != 4 {
		t.Fatalf("pending %d, want 4", st.InboxPending)
	}
}

func TestAcceptGivenID(t *testing.T) {
	db := mustOpen(t)
	item := newItem("zendesk", "")
	item.ID = "given-id-1"
	if res := mustAccept(t, db.DB, item, 0); res.ID != "given-id-1" {
		t.Fatalf("id %q, want given-id-1", res.ID)
	}
	again := newItem("zendesk", "")
	again.ID = "given-id-1"
	if _, err := db.Accept(context.Background(), again, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reused id: err %v, want ErrInvalid", err)
	}
	// A refused request leaves an expired dedupe key as it was.
	keyed := newItem("zendesk", "k")
	keyed.ID = "given-id-2"
	mustAccept(t, db.DB, keyed, time.Minute)
	db.clock.Advance(time.Hour)
	reused := newItem("zendesk", "k")
	reused.ID = "given-id-1"
	if _, err := db.Accept(context.Background(), reused, time.Minute); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reused id with expired key: err %v, want ErrInvalid", err)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	if err := checkDedupe(db.DB); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PruneDedupe(db.clock.Now()); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want the expired key", n, err)
	}
}

func TestAcceptRejects(t *testing.T) {
	db := mustOpen(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := db.Accept(ctx, newItem("zendesk", "k"), time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled ctx: err %v", err)
	}
	if _, err := db.Accept(context.Background(), newItem("zen\x00desk", "k"), time.Hour); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NUL in connector: err %v, want ErrInvalid", err)
	}
	if _, err := db.Accept(context.Background(), nil, time.Hour); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil item: err %v, want ErrInvalid", err)
	}
	huge := newItem("zendesk", string(make([]byte, 40000)))
	if _, err := db.Accept(context.Background(), huge, time.Hour); !errors.Is(err, ErrInvalid) {
		t.Fatalf("huge dedupe key: err %v, want ErrInvalid", err)
	}
	st, _ := db.Stats()
	if st.InboxPending != 0 {
		t.Fatalf("rejected items were stored: %d pending", st.InboxPending)
	}
}

func TestPendingInboxOrderAndFinish(t *testing.T) {
	db := mustOpen(t)
	var want []string
	for i := range 12 {
		if i%3 == 0 {
			db.clock.Advance(time.Millisecond)
		}
		want = append(want, mustAccept(t, db.DB, newItem("zendesk", fmt.Sprint("k", i)), time.Hour).ID)
	}
	// Paging with after walks the items in arrival order.
	var got []string
	after := ""
	for {
		page, err := db.PendingInbox(after, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 5 {
			t.Fatalf("page of %d, limit 5", len(page))
		}
		for _, it := range page {
			got = append(got, it.ID)
		}
		after = page[len(page)-1].ID
	}
	if !equalStrings(got, want) {
		t.Fatalf("pending order\n got %v\nwant %v", got, want)
	}

	db.clock.Advance(time.Minute)
	finished := map[string]string{want[0]: InboxProcessed, want[4]: InboxUnmapped, want[11]: InboxFailed}
	db.update(func(tx *Tx) error {
		for id, state := range finished {
			if err := tx.FinishInbox(id, state, "reason-"+state, []string{"ev-" + id}); err != nil {
				return err
			}
		}
		return nil
	})
	for id, state := range finished {
		it, err := db.Inbox(id)
		if err != nil {
			t.Fatal(err)
		}
		if it.State != state || it.Reason != "reason-"+state || len(it.EventIDs) != 1 || it.EventIDs[0] != "ev-"+id ||
			!it.ProcessedAt.Equal(db.clock.Now()) || string(it.Body) != payload {
			t.Fatalf("finished item %s: %+v", id, it)
		}
	}
	page, err := db.PendingInbox("", 0)
	if err != nil {
		t.Fatal(err)
	}
	var rest []string
	for _, id := range want {
		if finished[id] == "" {
			rest = append(rest, id)
		}
	}
	if got := ids(page, func(it *InboxItem) string { return it.ID }); !equalStrings(got, rest) {
		t.Fatalf("pending after finish\n got %v\nwant %v", got, rest)
	}
	st, _ := db.Stats()
	if st.InboxPending != len(rest) {
		t.Fatalf("stats pending %d, want %d", st.InboxPending, len(rest))
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
}

func TestFinishInboxErrors(t *testing.T) {
	db := mustOpen(t)
	id := mustAccept(t, db.DB, newItem("zendesk", "k"), time.Hour).ID
	tests := []struct {
		name  string
		id    string
		state string
		want  error
	}{
		{"unknown id", "nope", InboxProcessed, ErrNotFound},
		{"pending is not final", id, InboxPending, ErrInvalid},
		{"unknown state", id, "done", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := db.Update(func(tx *Tx) error { return tx.FinishInbox(tt.id, tt.state, "", nil) })
			if !errors.Is(err, tt.want) {
				t.Fatalf("err %v, want %v", err, tt.want)
			}
		})
	}
	// Finishing twice keeps the counter right.
	for _, state := range []string{InboxFailed, InboxProcessed} {
		db.update(func(tx *Tx) error { return tx.FinishInbox(id, state, "", nil) })
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
}

func TestPruneDedupe(t *testing.T) {
	db := mustOpen(t)
	t0 := db.clock.Now()
	mustAccept(t, db.DB, newItem("zendesk", "short"), time.Minute)
	mustAccept(t, db.DB, newItem("zendesk", "long"), time.Hour)
	mustAccept(t, db.DB, newItem("zendesk", "renewed"), time.Minute)
	db.clock.Advance(2 * time.Minute)
	// "renewed" expired and is replaced: its new window runs to t0+3m.
	renewed := mustAccept(t, db.DB, newItem("zendesk", "renewed"), time.Minute)
	if renewed.Duplicate {
		t.Fatal("expired key treated as duplicate")
	}

	steps := []struct {
		now  time.Time
		want int
	}{
		{t0.Add(30 * time.Second), 0},
		{t0.Add(150 * time.Second), 1}, // short
		{t0.Add(150 * time.Second), 0},
		{t0.Add(3 * time.Minute), 1}, // renewed (window ends exactly now)
		{t0.Add(2 * time.Hour), 1},   // long
		{t0.Add(3 * time.Hour), 0},
	}
	for i, s := range steps {
		n, err := db.PruneDedupe(s.now)
		if err != nil {
			t.Fatal(err)
		}
		if n != s.want {
			t.Fatalf("step %d: pruned %d, want %d", i, n, s.want)
		}
		if i == 2 {
			// Before its window ends, the renewed key still deduplicates.
			if res := mustAccept(t, db.DB, newItem("zendesk", "renewed"), time.Minute); !res.Duplicate || res.ID != renewed.ID {
				t.Fatalf("renewed key after prune: %+v", res)
			}
		}
	}
	// A pruned key is gone: the same key is new again, even with a window
	// that would still cover the old one.
	if res := mustAccept(t, db.DB, newItem("zendesk", "long"), 24*time.Hour); res.Duplicate {
		t.Fatal("pruned key still deduplicates")
	}
	if err := checkDedupe(db.DB); err != nil {
		t.Fatal(err)
	}
}

func TestOpenCreatesDirAndReopenKeepsData(t *testing.T) {
	db := mustOpen(t)
	info, err := os.Stat(filepath.Dir(db.path))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o700 {
		t.Fatalf("parent dir mode %v, want 0700", info.Mode().Perm())
	}
	res := mustAccept(t, db.DB, newItem("zendesk", "k1"), time.Hour)
	db.reopen()
	it, err := db.Inbox(res.ID)
	if err != nil {
		t.Fatalf("after reopen: %v", err)
	}
	if string(it.Body) != payload {
		t.Fatalf("body after reopen: %s", it.Body)
	}
	if again := mustAccept(t, db.DB, newItem("zendesk", "k1"), time.Hour); !again.Duplicate || again.ID != res.ID {
		t.Fatalf("dedupe key lost on reopen: %+v", again)
	}
	st, _ := db.Stats()
	if st.InboxPending != 1 {
		t.Fatalf("pending after reopen %d", st.InboxPending)
	}
}

func TestOpenLockedByAnotherHandle(t *testing.T) {
	db := mustOpen(t)
	_, err := Open(db.path, Options{LockTimeout: 50 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: err %v, want ErrLocked", err)
	}
}

func TestClosedStore(t *testing.T) {
	db := mustOpen(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	checks := []struct {
		name string
		err  error
	}{
		{"accept", func() error {
			_, err := db.Accept(context.Background(), newItem("zendesk", "k"), time.Hour)
			return err
		}()},
		{"update", db.Update(func(*Tx) error { return nil })},
		{"view", db.View(func(*Tx) error { return nil })},
		{"inbox", func() error { _, err := db.Inbox("x"); return err }()},
		{"claim", func() error { _, err := db.ClaimDue(time.Now(), 1); return err }()},
		{"stats", func() error { _, err := db.Stats(); return err }()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, ErrClosed) {
			t.Errorf("%s after close: err %v, want ErrClosed", c.name, c.err)
		}
	}
	db.open() // for the cleanup's Close
}

// TestCloseWithAcceptsInFlight closes while 64 goroutines keep accepting:
// every call ends with a result or ErrClosed, and every result is durable.
func TestCloseWithAcceptsInFlight(t *testing.T) {
	db := mustOpen(t)
	const workers = 64
	var (
		mu       sync.Mutex
		accepted []string
		wg       sync.WaitGroup
	)
	started := make(chan struct{}, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				res, err := db.Accept(context.Background(), newItem("zendesk", fmt.Sprintf("w%d-%d", w, i)), time.Hour)
				if i == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("accept: %v", err)
					return
				}
				mu.Lock()
				accepted = append(accepted, res.ID)
				mu.Unlock()
			}
		}()
	}
	for range workers {
		<-started
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Accept calls still blocked 30s after Close")
	}
	db.open()
	if len(accepted) < workers {
		t.Fatalf("only %d accepts succeeded", len(accepted))
	}
	for _, id := range accepted {
		if _, err := db.Inbox(id); err != nil {
			t.Fatalf("accepted item %s lost: %v", id, err)
		}
	}
	st, _ := db.Stats()
	if st.InboxPending != len(accepted) {
		t.Fatalf("pending %d, accepted %d", st.InboxPending, len(accepted))
	}
}

func TestNewIDMonotonic(t *testing.T) {
	db := mustOpen(t)
	prev := ""
	for i := range 2000 {
		if i == 1000 {
			db.clock.Advance(-time.Hour) // a clock step back must not break order
		}
		id := db.NewID()
		if id <= prev {
			t.Fatalf("id %d %s not after %s", i, id, prev)
		}
		prev = id
	}
}

// TestPendingInboxGivenIDs: items whose ids the caller gave, out of
// order, are still found by a read after an id while they wait in the
// intake journal (the journal's records are not in id order then).
func TestPendingInboxGivenIDs(t *testing.T) {
	db := mustOpenJournaling(t)
	for i, id := range []string{"c", "a", "b"} {
		it := newItem("zendesk", fmt.Sprint("k", i))
		it.ID = id
		mustAccept(t, db.DB, it, time.Hour)
	}
	page, err := db.PendingInbox("a", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range page {
		got = append(got, it.ID)
	}
	if !equalStrings(got, []string{"c", "b"}) {
		t.Fatalf("pending after a: %v, want [c b] (the journal's order)", got)
	}
}

// Stats counts accepted items as pending until a committed FinishInbox
// takes them (not a rolled-back one, not a duplicate), whether they are
// still in the journal or in bbolt, and again after a reopen.
func TestStatsInboxPending(t *testing.T) {
	db := mustOpen(t)
	pending := func() int {
		t.Helper()
		st, err := db.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st.InboxPending
	}
	var ids []string
	for i := range 3 {
		ids = append(ids, mustAccept(t, db.DB, newItem("zendesk", fmt.Sprint("b-", i)), time.Hour).ID)
	}
	if dup := mustAccept(t, db.DB, newItem("zendesk", "b-0"), time.Hour); !dup.Duplicate {
		t.Fatalf("repeat of b-0: %+v, want a duplicate", dup)
	}
	if n := pending(); n != 3 {
		t.Fatalf("pending after 3 accepted and 1 duplicate: %d", n)
	}
	rollback := errors.New("roll back")
	if err := db.Update(func(tx *Tx) error {
		if err := tx.FinishInbox(ids[0], InboxProcessed, "", nil); err != nil {
			return err
		}
		return rollback
	}); !errors.Is(err, rollback) {
		t.Fatalf("rolled-back finish: %v", err)
	}
	if n := pending(); n != 3 {
		t.Fatalf("pending after a finish that rolled back: %d, want 3", n)
	}
	db.update(func(tx *Tx) error { return tx.FinishInbox(ids[0], InboxProcessed, "", nil) })
	if n := pending(); n != 2 {
		t.Fatalf("pending after one finished: %d, want 2", n)
	}
	if err := db.flushJournal(); err != nil {
		t.Fatal(err)
	}
	if n := pending(); n != 2 {
		t.Fatalf("pending once the journal is in bbolt: %d, want 2", n)
	}
	db.reopen()
	if n := pending(); n != 2 {
		t.Fatalf("pending after reopening: %d, want 2", n)
	}
}

// A journaled item whose finishing commit readers can already see, but
// whose finished flag is not set yet (bbolt runs commit handlers after the
// writer is released), is not pending any more: the pending lists and
// Stats look it up.
func TestJournaledItemVisibleInBboltIsNotPending(t *testing.T) {
	db := mustOpenJournaling(t)
	a := mustAccept(t, db.DB, newItem("zendesk", "v-a"), time.Hour)
	b := mustAccept(t, db.DB, newItem("zendesk", "v-b"), time.Hour)
	// The commit of a FinishInbox of a, before its handler ran.
	putRaw(t, db.DB, bucketInbox, []byte(a.ID), []byte(`{"id":"`+a.ID+`","state":"processed"}`))
	items, err := db.PendingInbox("", 0)
	if err != nil || len(items) != 1 || items[0].ID != b.ID {
		t.Fatalf("pending: %v %v, want only %s", ids(items, func(it *InboxItem) string { return it.ID }), err, b.ID)
	}
	st, err := db.Stats()
	if err != nil || st.InboxPending != 1 {
		t.Fatalf("stats: %d pending, %v; want 1", st.InboxPending, err)
	}
}

// OldestPendingInbox finds the item received first among those pending in
// the intake journal and in bbolt, passes over finished ones, and does not
// lose an item whose finish a transaction rolled back.
func TestOldestPendingInbox(t *testing.T) {
	db := mustOpenJournaling(t)
	oldest := func() (time.Time, bool) {
		t.Helper()
		var at time.Time
		var ok bool
		db.update(func(tx *Tx) error {
			var err error
			at, ok, err = tx.OldestPendingInbox()
			return err
		})
		return at, ok
	}
	want := func(what string, at time.Time) {
		t.Helper()
		got, ok := oldest()
		switch {
		case at.IsZero() && ok:
			t.Fatalf("%s: oldest pending received %s, want none pending", what, got)
		case !at.IsZero() && (!ok || !got.Equal(at)):
			t.Fatalf("%s: oldest pending received %s (pending %v), want %s", what, got, ok, at)
		}
	}
	if err := db.View(func(tx *Tx) error { _, _, err := tx.OldestPendingInbox(); return err }); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("in a read-only transaction: %v, want ErrReadOnly", err)
	}
	want("empty inbox", time.Time{})

	t0 := db.clock.Now()
	a := mustAccept(t, db.DB, newItem("zendesk", "a"), time.Hour).ID
	db.clock.Advance(time.Minute)
	b := mustAccept(t, db.DB, newItem("zendesk", "b"), time.Hour).ID
	want("both in the journal", t0)

	// A finish that rolls back leaves a pending.
	errRollback := errors.New("roll back")
	err := db.Update(func(tx *Tx) error {
		if err := tx.FinishInbox(a, InboxFailed, "bad", nil); err != nil {
			return err
		}
		if at, ok, err := tx.OldestPendingInbox(); err != nil || !ok || !at.Equal(t0.Add(time.Minute)) {
			t.Errorf("after finishing a in the transaction: %s %v %v, want b's receive time", at, ok, err)
		}
		return errRollback
	})
	if !errors.Is(err, errRollback) {
		t.Fatal(err)
	}
	want("finish of a rolled back", t0)
	db.update(func(tx *Tx) error { return tx.FinishInbox(a, InboxFailed, "bad", nil) })
	want("a finished", t0.Add(time.Minute))

	// b moves into bbolt's pending index; c, still journaled, was
	// received before it (its sender's clock, kept as given).
	if err := db.flushJournal(); err != nil {
		t.Fatal(err)
	}
	want("b in bbolt", t0.Add(time.Minute))
	c := newItem("zendesk", "c")
	c.ReceivedAt = t0.Add(-time.Hour)
	mustAccept(t, db.DB, c, time.Hour)
	want("c journaled, received before b", t0.Add(-time.Hour))
	db.update(func(tx *Tx) error {
		if err := tx.FinishInbox(b, InboxProcessed, "", nil); err != nil {
			return err
		}
		return tx.FinishInbox(c.ID, InboxProcessed, "", nil)
	})
	want("all finished", time.Time{})

	// A replayed item is pending again, in bbolt.
	db.update(func(tx *Tx) error { return tx.ReplayInbox(a) })
	want("a replayed", t0)
}
