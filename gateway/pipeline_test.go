package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/store"
)

// TestPipelineBacklog: a backlog of several full batches, waiting before
// the gateway starts, is processed with each batch read and mapped while
// the one before it is in its transaction; more items keep arriving in
// small bursts meanwhile, so read-aheads come back short and are filled
// up. One item in the middle of the second batch fails only when it is
// stored (a reference with a NUL byte), so that batch is retried item by
// item. Every item is processed exactly once (one event each, none
// twice), the bad one alone fails, and the events of each reference are
// stored in arrival order.
func TestPipelineBacklog(t *testing.T) {
	srv, err := New(Options{ConfigPath: copyConfigs(t), Listen: "127.0.0.1:0", DataDir: t.TempDir(), Env: testEnv(nil)})
	if err != nil {
		t.Fatal(err)
	}
	const backlog, n, bad, refs = 3*256 + 17, 3*256 + 17 + 600, 256 + 40, 50
	ctx := context.Background()
	ids := make([]string, n)
	accept := func(i int) {
		ref := fmt.Sprintf("t-%d", i%refs)
		if i == bad {
			ref = "bad\x00ref"
		}
		quoted, _ := json.Marshal(ref)
		body := fmt.Sprintf(`{"type":"ticket.updated","reference":%s,"subject":"s-%04d","status":"new"}`, quoted, i)
		res, err := srv.db.Accept(ctx, &store.InboxItem{Connector: "generic", ReceivedAt: time.Now(), Method: "POST",
			Path: "/hooks/generic", ContentType: "application/json", Body: []byte(body), DedupeKey: fmt.Sprint(i)}, time.Hour)
		if err != nil {
			t.Error(err)
		}
		ids[i] = res.ID
	}
	for i := range backlog {
		accept(i)
	}

	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway run: %v", err)
		}
	}()
	for i := backlog; i < n; i++ {
		accept(i)
		if i%20 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(t, "the backlog processed", func() bool {
		it, err := srv.db.Inbox(ids[n-1])
		return err == nil && it.State != store.InboxPending
	})

	for i, id := range ids {
		it, err := srv.db.Inbox(id)
		if err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		switch {
		case i == bad:
			if it.State != store.InboxFailed || !strings.Contains(it.Reason, "processing failed") {
				t.Errorf("bad item: state %s, reason %q; want failed, processing failed", it.State, it.Reason)
			}
		case it.State != store.InboxProcessed || len(it.EventIDs) != 1:
			t.Errorf("item %d: state %s, %d events (%s); want processed, 1 event", i, it.State, len(it.EventIDs), it.Reason)
		}
	}
	total := 0
	for r := range refs {
		ref := fmt.Sprintf("t-%d", r)
		var subjects []string
		cursor := ""
		for {
			page, next, err := srv.db.ListEvents(store.EventFilter{Connector: "generic", Reference: ref, Cursor: cursor, Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			for _, se := range page {
				subjects = append(subjects, fmt.Sprint(se.Event.Fields["subject"]))
			}
			if next == "" {
				break
			}
			cursor = next
		}
		// Pages come newest first: arrival order is the reverse.
		for i := 1; i < len(subjects); i++ {
			if subjects[i-1] <= subjects[i] {
				t.Fatalf("reference %s: events out of arrival order: %s stored after %s", ref, subjects[i], subjects[i-1])
			}
		}
		total += len(subjects)
	}
	if total != n-1 {
		t.Errorf("events stored: %d, want %d (one per good item)", total, n-1)
	}
	// The metrics count what committed: the batch that failed and was
	// retried item by item counts its items once.
	url := "http://" + srv.Addr()
	processed, failed := `hookline_inbox_processed_total{outcome="processed"}`, `hookline_inbox_processed_total{outcome="failed"}`
	waitFor(t, "the metrics of every item", func() bool {
		return metricValue(t, url, processed)+metricValue(t, url, failed) == n
	})
	for series, want := range map[string]float64{
		processed: n - 1,
		failed:    1,
		`hookline_events_total{connector="generic",type="ticket.updated"}`: n - 1,
		`hookline_processing_seconds_count{connector="generic"}`:           n, // every item, the failed one too
	} {
		if got := metricValue(t, url, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}
