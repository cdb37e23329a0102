package agent

import (
	"context"
	"time"

	"github.com/replicad/replicad/internal/cmem"
)

// Pebble's block cache and memtables live in C malloc's memory (cgo),
// which the Go runtime neither sees nor scavenges: the agent hands the
// free pages of malloc's arenas back every cmemTrimEvery and makes no
// more arenas once it opens its store (internal/cmem), so resident memory
// follows what the caches hold rather than what malloc kept since the
// start.
const (
	cmemArenas    = 2
	cmemTrimEvery = 30 * time.Second
)

// startCmem trims malloc's arenas until ctx is done; the returned channel
// closes when the trimming has stopped.
func startCmem(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	go func() { defer close(done); cmem.Run(ctx, cmemTrimEvery) }()
	return done
}
