package gateway

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/store"
)

// A rule-scope count the store cannot read is the batch's error, as a
// firing it cannot record is: it is not logged from inside the
// transaction (a batch retried item by item would log it twice) and does
// not count as zero (which would let the rule past its limit).
func TestStoreFiringsReadErrorFailsTheBatch(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "hookline.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	err = db.Update(func(tx *store.Tx) error {
		f := newStoreFirings(tx)
		if n := f.Count("ok-rule", time.Time{}); n != 0 || f.err() != nil {
			t.Fatalf("count of a rule that never fired: %d, %v", n, f.err())
		}
		f.Count("bad\x00rule", time.Time{})
		f.Count("ok-rule", time.Time{})
		return f.err()
	})
	if err == nil || !strings.Contains(err.Error(), "read firings of rule") {
		t.Fatalf("err = %v, want the read error", err)
	}
}
