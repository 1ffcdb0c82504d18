package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	blobBucket = "test_blobs"
	blobSize   = 4000
)

// blob is the deterministic value stored under key i.
func blob(i int) []byte {
	v := bytes.Repeat([]byte{byte(i*31 + 7)}, blobSize)
	binary.BigEndian.PutUint32(v, uint32(i))
	return v
}

func blobKey(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

// putBlobs stores blobs [from, to) in transactions of 2,048.
func putBlobs(t testing.TB, db *DB, from, to int) {
	t.Helper()
	if err := writeBlobs(db, from, to); err != nil {
		t.Fatalf("put blobs: %v", err)
	}
}

func writeBlobs(db *DB, from, to int) error {
	for start := from; start < to; start += 2048 {
		err := db.bolt.Update(func(btx *bolt.Tx) error {
			b, err := btx.CreateBucketIfNotExists([]byte(blobBucket))
			if err != nil {
				return err
			}
			b.FillPercent = 1
			for i := start; i < min(to, start+2048); i++ {
				if err := b.Put(blobKey(i), blob(i)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// checkBlobs reads every blob below n (touching all their pages) and
// compares it with what was stored.
func checkBlobs(db *DB, n int) error {
	return db.bolt.View(func(btx *bolt.Tx) error {
		b := btx.Bucket([]byte(blobBucket))
		for i := range n {
			if got := b.Get(blobKey(i)); !bytes.Equal(got, blob(i)) {
				return fmt.Errorf("blob %d reads back wrong (%d bytes)", i, len(got))
			}
		}
		return nil
	})
}

func residentMiB(t testing.TB) float64 {
	t.Helper()
	n, ok := residentFileBytes()
	if !ok {
		t.Fatal("cannot read the resident file-backed memory")
	}
	return float64(n) / (1 << 20)
}

// TestTrimMappedDropsResidentPages: a 64 MiB file read in full shows in
// the process's resident memory; trimMapped takes it out again and every
// value still reads back as stored.
func TestTrimMappedDropsResidentPages(t *testing.T) {
	db := mustOpen(t)
	db.bolt.NoSync = true
	const n = 64 << 20 / blobSize
	putBlobs(t, db.DB, 0, n)
	if err := db.trimMapped(); err != nil {
		t.Fatal(err)
	}
	before := residentMiB(t)
	if err := checkBlobs(db.DB, n); err != nil {
		t.Fatal(err)
	}
	read := residentMiB(t)
	if read-before < 48 {
		t.Fatalf("reading 64 MiB grew resident file memory only from %.1f to %.1f MiB", before, read)
	}
	if err := db.trimMapped(); err != nil {
		t.Fatal(err)
	}
	trimmed := residentMiB(t)
	if read-trimmed < 48 {
		t.Fatalf("trim left resident file memory at %.1f MiB (was %.1f, %.1f before the reads)", trimmed, read, before)
	}
	t.Logf("resident file memory: %.1f MiB, %.1f after reading 64 MiB, %.1f after the trim", before, read, trimmed)
	if err := checkBlobs(db.DB, n); err != nil {
		t.Fatalf("after the trim: %v", err)
	}
}

// TestTrimMappedWithConcurrentReadersAndRemaps trims over and over while
// readers verify every value and a writer grows the file (so bbolt remaps
// it): readers never see wrong data and nothing crashes (run it with
// -race as well).
func TestTrimMappedWithConcurrentReadersAndRemaps(t *testing.T) {
	db := mustOpen(t)
	db.bolt.NoSync = true
	const n = 16 << 20 / blobSize
	putBlobs(t, db.DB, 0, n)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := checkBlobs(db.DB, n); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Grows the file by 32 MiB in steps: each growth past the mapped
		// size remaps it.
		if err := writeBlobs(db.DB, n, 3*n); err != nil {
			errs <- err
		}
	}()
	for range 50 {
		if err := db.trimMapped(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := checkBlobs(db.DB, 3*n); err != nil {
		t.Fatal(err)
	}
}

// TestMappedResidentLimit: with a limit below what the process maps, the
// store's own loop trims the mapping (it checks every trimInterval); with
// the bound off it does not run.
func TestMappedResidentLimit(t *testing.T) {
	tests := []struct {
		name  string
		limit int64
		trims bool
	}{
		{"limit 1 MiB", 1 << 20, true},
		{"off", -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(filepath.Join(t.TempDir(), "h.db"), Options{MappedResidentLimit: tt.limit})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if running := db.trimStop != nil; running != tt.trims {
				t.Fatalf("trim loop running: %v, want %v", running, tt.trims)
			}
			if !tt.trims {
				return
			}
			db.bolt.NoSync = true
			base := residentMiB(t) // the executable's pages and the like
			const n = 32 << 20 / blobSize
			putBlobs(t, db, 0, n)
			if err := checkBlobs(db, n); err != nil {
				t.Fatal(err)
			}
			// The reads mapped the whole 32 MiB file; the loop (a check
			// every trimInterval) brings the mapping back near the limit.
			deadline := time.Now().Add(30 * time.Second)
			for residentMiB(t) > base+4 {
				if time.Now().After(deadline) {
					t.Fatalf("resident file memory still %.1f MiB (%.1f before the file was read)", residentMiB(t), base)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := checkBlobs(db, n); err != nil {
				t.Fatal(err)
			}
		})
	}
}
