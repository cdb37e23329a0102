package store

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/replicad/replicad/crdt"
)

// TestHoldingsOnlyDurableOwnWrites: while a local write waits for its
// fsync, Holdings and HeldOf must not report it, because Stream does not
// yield it yet and a sync sender declares every held number Stream does
// not yield empty to its peer (which would then hold the write without
// ever receiving it: found by the fault harness, test/e2e TestFaults).
func TestHoldingsOnlyDurableOwnWrites(t *testing.T) {
	var mu sync.Mutex
	block := false
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if (op.Kind == errorfs.OpFileSync || op.Kind == errorfs.OpFileSyncData) && strings.HasSuffix(op.Path, ".log") {
			mu.Lock()
			b := block
			mu.Unlock()
			if b {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-release
			}
		}
		return nil
	}))
	s := mustOpen(t, Options{Dir: "/db", FS: fs})
	defer s.Close()
	c := fakeClock(t0)
	for i := 0; i < 3; i++ {
		if _, err := s.Write(c, "t", "a", []crdt.FieldValue{fv("f", i)}, false); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	block = true
	mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := s.Write(c, "t", "a", []crdt.FieldValue{fv("f", 99)}, false)
		done <- err
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the write never reached its fsync")
	}
	// The write's batch is in Pebble, its fsync blocked: what Holdings
	// reports of this node must be exactly what Stream yields.
	streamed := Held{}
	if err := s.Stream(s.NodeID(), 0, func(w *crdt.Write) error {
		streamed.Add(w.Seq, w.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if h := s.Holdings()[s.NodeID()]; !h.Equal(streamed) {
		t.Errorf("Holdings reports %+v of this node while Stream yields %+v", h, streamed)
	}
	if h := s.HeldOf(s.NodeID()); !h.Equal(streamed) {
		t.Errorf("HeldOf reports %+v of this node while Stream yields %+v", h, streamed)
	}
	mu.Lock()
	block = false
	mu.Unlock()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h := s.HeldOf(s.NodeID()); h.Max() != 4 {
		t.Errorf("after the fsync HeldOf reports %+v, want 1-4", h)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}
