package store

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAccept measures durable, group-committed accepts (journal
// fdatasync per batch; the applier moves them into bbolt behind) with 16,
// 64 and 256 concurrent callers. Dedupe keys are random-looking (like
// webhook invocation ids), so dedupe inserts land all over the B-tree. It
// reports accepts/s and the mean number of requests per group commit.
func BenchmarkAccept(b *testing.B) {
	for _, callers := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			var seq atomic.Uint64
			commits0, items0 := db.commits.Load(), db.committed.Load()
			b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					key := strconv.FormatUint(splitmix64(seq.Add(1)), 36)
					if _, err := db.Accept(ctx, newItem("zendesk", key), time.Hour); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "accepts/s")
			if n := db.commits.Load() - commits0; n > 0 {
				b.ReportMetric(float64(db.committed.Load()-items0)/float64(n), "items/commit")
			}
		})
	}
}

// splitmix64 scrambles a counter into a well-spread 64-bit value.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
