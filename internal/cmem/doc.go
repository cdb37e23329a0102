// Package cmem keeps the C heap of a process in check. With cgo, Pebble
// allocates its block cache's blocks and its memtables with C malloc,
// outside the Go heap and the Go runtime's scavenger. glibc's malloc
// serves each thread from one of its arenas (up to 8 per core) and keeps
// what is freed inside them: as cache blocks of many sizes are evicted
// and refilled from whichever threads the Go scheduler runs cgo calls on,
// the arenas' free memory stays resident and grows while the memory in
// use stays at the cache's size. Trim hands the arenas' free pages back
// to the OS (malloc_trim); Run trims periodically; LimitArenas caps the
// arenas made from then on. ReadStats reads malloc's own figures
// (mallinfo2). Without cgo or glibc they do nothing and say so: Pebble's
// memory is then Go memory.
package cmem

import (
	"context"
	"time"
)

// Stats is C malloc's memory, in bytes.
type Stats struct {
	// Arena is the memory malloc's arenas took from the OS (brk and
	// mmap'd heaps); InUse of it is allocated, Free is free but held.
	Arena, InUse, Free int64
	// Mapped is the memory of large allocations mmap'd one each
	// (Pebble's memtables), returned to the OS when freed.
	Mapped int64
	// Releasable is the free memory at the top of the arenas that a trim
	// would release for certain (a trim also releases whole free pages
	// inside them).
	Releasable int64
}

// What a daemon that opens one Pebble store does (the agent): no more
// than Arenas arenas once it opens its store, and a trim every TrimEvery,
// so that resident memory follows what the caches hold rather than what
// malloc kept since the start.
const (
	Arenas    = 2
	TrimEvery = 30 * time.Second
)

// Start runs Run in its own goroutine; the returned channel closes when
// it has returned.
func Start(ctx context.Context, every time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, every) }()
	return done
}

// Run calls Trim every interval until ctx is done (at once if the
// platform has no trim).
func Run(ctx context.Context, every time.Duration) {
	if !Supported() || every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			Trim()
		}
	}
}
