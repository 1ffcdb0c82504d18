package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// finishItem sets an item's outcome in its own transaction.
func finishItem(t *testing.T, db *testDB, id, state string) {
	t.Helper()
	db.update(func(tx *Tx) error { return tx.FinishInbox(id, state, "why "+state, []string{"ev-" + id}) })
}

// TestReplayInbox: failed and unmapped items go back on the pending list
// with their outcome cleared and their payload intact, counted, and are
// processed again like any pending item; pending and processed items and
// unknown ids are refused; all of it survives the applier (which meets the
// items finished and replayed before it ran) and a reopen.
func TestReplayInbox(t *testing.T) {
	db := mustOpenJournaling(t)
	ids := map[string]string{}
	for _, name := range []string{"failed", "unmapped", "processed", "pending"} {
		ids[name] = mustAccept(t, db.DB, newItem("zendesk", name), time.Hour).ID
	}
	for _, state := range []string{InboxFailed, InboxUnmapped, InboxProcessed} {
		finishItem(t, db, ids[state], state)
	}
	replay := func(id string) error { return db.Update(func(tx *Tx) error { return tx.ReplayInbox(id) }) }
	for _, refused := range []string{"processed", "pending"} {
		if err := replay(ids[refused]); !errors.Is(err, ErrState) {
			t.Errorf("replay of the %s item: %v, want ErrState", refused, err)
		}
	}
	if err := replay("no-such-item"); !errors.Is(err, ErrNotFound) {
		t.Errorf("replay of an unknown item: %v, want ErrNotFound", err)
	}
	before, _ := db.Inbox(ids["failed"])
	for _, name := range []string{"failed", "unmapped"} {
		if err := replay(ids[name]); err != nil {
			t.Fatalf("replay of the %s item: %v", name, err)
		}
	}
	pendingIDs := func() []string {
		t.Helper()
		items, err := db.PendingInbox("", 0)
		if err != nil {
			t.Fatal(err)
		}
		return itemIDs(items)
	}
	want := []string{ids["failed"], ids["unmapped"], ids["pending"]}
	if got := pendingIDs(); !equalStrings(got, want) {
		t.Fatalf("pending after the replays: %v, want %v", got, want)
	}
	after, err := db.Inbox(ids["failed"])
	if err != nil || after.State != InboxPending || after.Reason != "" || after.EventIDs != nil || !after.ProcessedAt.IsZero() ||
		string(after.Body) != string(before.Body) || after.ReceivedAt != before.ReceivedAt || after.DedupeKey != before.DedupeKey {
		t.Fatalf("replayed item: %+v, %v (before: %+v)", after, err, before)
	}
	if st, _ := db.Stats(); st.InboxPending != 3 || db.backlog.Load() != 3 {
		t.Fatalf("pending count %d, backlog %d, want 3", st.InboxPending, db.backlog.Load())
	}
	// The applier now moves the journal: the replayed items, finished out
	// of turn before, stay as the replay left them.
	if err := db.flushJournal(); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(); !equalStrings(got, want) {
		t.Fatalf("pending after the applier: %v, want %v", got, want)
	}
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	if err := replay(ids["failed"]); !errors.Is(err, ErrState) {
		t.Errorf("second replay of a replayed item: %v, want ErrState (it is pending)", err)
	}
	// Processed again, like any pending item.
	finishItem(t, db, ids["failed"], InboxProcessed)
	if err := checkCounters(db.DB); err != nil {
		t.Fatal(err)
	}
	db.reopen()
	if got := pendingIDs(); !equalStrings(got, []string{ids["unmapped"], ids["pending"]}) {
		t.Fatalf("pending after a reopen: %v", got)
	}
	if st, _ := db.Stats(); st.InboxPending != 2 || db.backlog.Load() != 2 {
		t.Fatalf("pending count after a reopen %d, backlog %d, want 2", st.InboxPending, db.backlog.Load())
	}
}

func itemIDs(items []*InboxItem) []string {
	return ids(items, func(it *InboxItem) string { return it.ID })
}

// TestListInbox: items listed in arrival order by connector and state,
// page by page, including items still in the intake journal; a page cut
// short by the scan budget carries on from where it stopped.
func TestListInbox(t *testing.T) {
	db := mustOpenJournaling(t)
	var all, failedZendesk []string
	for i := range 20 {
		connector := []string{"zendesk", "generic"}[i%2]
		id := mustAccept(t, db.DB, newItem(connector, fmt.Sprint("k", i)), time.Hour).ID
		all = append(all, id)
		if i%3 == 0 {
			finishItem(t, db, id, InboxFailed)
			if connector == "zendesk" {
				failedZendesk = append(failedZendesk, id)
			}
		}
	}
	list := func(f InboxFilter, scan int) ([]string, string) {
		t.Helper()
		items, next, err := db.listInbox(f, scan)
		if err != nil {
			t.Fatal(err)
		}
		return itemIDs(items), next
	}
	// Paging through everything, pending items still journaled included.
	var got []string
	for f := (InboxFilter{Limit: 7}); ; {
		page, next := list(f, maxInboxScan)
		got = append(got, page...)
		if next == "" {
			break
		}
		f.After = next
	}
	if !equalStrings(got, all) {
		t.Fatalf("all items, in pages of 7: %v, want %v", got, all)
	}
	if got, next := list(InboxFilter{Limit: len(all)}, maxInboxScan); !equalStrings(got, all) || next != "" {
		t.Fatalf("a page just as long as the inbox: %d items, next %q", len(got), next)
	}
	if got, next := list(InboxFilter{Connector: "zendesk", State: InboxFailed}, maxInboxScan); !equalStrings(got, failedZendesk) || next != "" {
		t.Fatalf("failed zendesk items: %v (next %q), want %v", got, next, failedZendesk)
	}
	// A scan budget of 4 items: short pages with cursors, the same items
	// in the end.
	got = nil
	pages := 0
	for f := (InboxFilter{Connector: "zendesk", State: InboxFailed}); ; pages++ {
		page, next := list(f, 4)
		got = append(got, page...)
		if next == "" {
			break
		}
		f.After = next
	}
	if !equalStrings(got, failedZendesk) || pages < 4 {
		t.Fatalf("with a scan budget of 4: %v in %d pages, want %v in at least 4", got, pages, failedZendesk)
	}
}
