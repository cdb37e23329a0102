package cmem

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestStatsSeePebblesMemory: Pebble's block cache and memtables are C
// memory here (cgo): malloc's figures grow by at least what the cache
// holds, and once Pebble has freed it all a trim hands pages back.
func TestStatsSeePebblesMemory(t *testing.T) {
	if !Supported() {
		t.Skip("malloc is not glibc's here (cgo off, or another C library): Pebble's memory is Go memory")
	}
	if raceEnabled {
		t.Skip("under the race detector Pebble may allocate its cache from the Go heap")
	}
	before, ok := ReadStats()
	if !ok {
		t.Skip("glibc before 2.33: no mallinfo2")
	}
	cache := pebble.NewCache(32 << 20)
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Cache: cache})
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 1024)
	for i := range 30000 {
		if err := db.Set(fmt.Appendf(nil, "k%08d", i), val, pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	for it.First(); it.Valid(); it.Next() {
	}
	it.Close()
	cached := db.Metrics().BlockCache.Size
	after, _ := ReadStats()
	grew := (after.InUse + after.Mapped) - (before.InUse + before.Mapped)
	t.Logf("block cache %d bytes; malloc in use %d -> %d, mmap'd %d -> %d, free %d", cached, before.InUse, after.InUse, before.Mapped, after.Mapped, after.Free)
	if cached < 16<<20 || grew < cached {
		t.Errorf("malloc's memory grew %d bytes with %d bytes in the block cache", grew, cached)
	}
	db.Close()
	cache.Unref()
	freed, _ := ReadStats()
	if freed.InUse >= after.InUse-cached/2 {
		t.Errorf("malloc in use %d after Pebble freed its cache of %d (was %d)", freed.InUse, cached, after.InUse)
	}
	start := time.Now()
	if !Trim() {
		t.Errorf("no memory returned by a trim after %d bytes were freed", after.InUse-freed.InUse)
	}
	t.Logf("a trim after %d bytes were freed took %v", after.InUse-freed.InUse, time.Since(start))
}

// TestRunStops: Run returns once its context ends.
func TestRunStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, time.Millisecond) }()
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}
