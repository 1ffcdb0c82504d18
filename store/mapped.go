package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Residency of the mapped database file.
//
// bbolt reads the database through a read-only shared mapping of the whole
// file, and every page a read touches stays mapped into the process: the
// kernel counts it in the process's resident memory (VmRSS, as RssFile)
// although it is page cache that the kernel can drop and read back at any
// time. A store that walks a large file (the timer scheduler and the admin
// API over a million entities) would show the file's size as its memory.
// The store therefore bounds it: a goroutine checks the process's resident
// file-backed memory every trimInterval and, when it exceeds
// Options.MappedResidentLimit, drops the mapping's pages from the process
// (madvise MADV_DONTNEED) inside a read transaction (trimMapped). The data
// stays in the page cache and in the file; the next read of a dropped page
// is a minor fault that maps it again. Linux only; elsewhere a no-op.

// DefaultMappedResidentLimit is the MappedResidentLimit used when the
// option is zero.
const DefaultMappedResidentLimit = 256 << 20

// trimInterval is how often the resident file-backed memory is checked
// (one read of /proc/self/statm, a few microseconds). The bound is soft:
// between two checks the process may map more than the limit. A bulk load
// touches pages of a large file at several hundred MiB a second, so a
// check every second let VmRSS pass 1 GiB over a 256 MiB limit; ten a
// second keep the overshoot to tens of MiB.
const trimInterval = 100 * time.Millisecond

// trimLoop checks the resident file-backed memory every trimInterval until
// trimStop is closed, and trims the mapping when it exceeds limit.
func (db *DB) trimLoop(limit int64) {
	defer close(db.trimDone)
	t := time.NewTicker(trimInterval)
	defer t.Stop()
	for {
		select {
		case <-db.trimStop:
			return
		case <-t.C:
		}
		if rss, ok := residentFileBytes(); ok && rss > limit {
			// An error here means the store is closing: the loop is
			// stopped right after.
			_ = db.trimMapped()
		}
	}
}

// trimMapped drops the pages of the database mapping from the process's
// resident memory.
//
// It runs inside a bbolt read transaction, and that is what makes it safe:
// a read transaction holds bbolt's mmap lock for reading, and bbolt remaps
// the file (when a write transaction grows it) only under that lock for
// writing. So while this function runs, the mapping cannot be unmapped
// or moved, and the address and length used are those of the live
// mapping. (Outside a transaction, a remap at the same moment could leave
// the madvise on an address range that Go has since reused for its heap,
// and DONTNEED would zero live memory.) The length is the data size of the
// transaction's meta, which is never more than the mapped size.
//
// MADV_DONTNEED on bbolt's mapping only unmaps pages from this process:
// the mapping is MAP_SHARED and read-only (bbolt writes with pwrite, not
// through the mapping), so there is nothing private to lose; the pages
// stay in the page cache (and on disk) and the next access faults them
// back in with the file's current contents. Readers in other transactions
// that touch a page at the same moment simply fault it in again.
func (db *DB) trimMapped() error {
	err := db.bolt.View(func(btx *bolt.Tx) error {
		return dropMapped(db.bolt.Info().Data, btx.Size())
	})
	if err != nil {
		return fmt.Errorf("trim mapped database %s: %w", db.path, err)
	}
	return nil
}
