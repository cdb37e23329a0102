package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/replicad/replicad/crdt"
)

// fullDiskFS is a crashable memory filesystem whose disk is full while
// the toggle is on: the log's writes and syncs fail as they do then (the
// bytes the log takes beyond its end need blocks).
func fullDiskFS() (vfs.FS, *errorfs.Toggle) {
	full := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if strings.HasSuffix(op.Path, ".log") {
				return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
			}
		}
		return nil
	})}
	return errorfs.Wrap(vfs.NewCrashableMem(), full), full
}

// TestFullDiskGrownWAL: a write on a full disk that takes the write-ahead
// log past the bound at which the store flushes (noteWAL) fails with
// ErrFailed, and the process lives on; the store reopens with every
// acknowledged write. A flush then would rotate the log, and Pebble ends
// the process when it cannot close the old one (its unsynced write failed),
// so the scenario runs in a child process: its end is the failure seen.
func TestFullDiskGrownWAL(t *testing.T) {
	if os.Getenv("REPLICAD_STORE_FULLDISK_CHILD") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFullDiskGrownWAL$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "REPLICAD_STORE_FULLDISK_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !bytes.Contains(out, []byte("--- PASS: TestFullDiskGrownWAL")) {
			if len(out) > 3000 {
				out = out[:3000]
			}
			t.Fatalf("the full-disk write ended the test process (%v):\n%s", err, out)
		}
		return
	}
	fs, full := fullDiskFS()
	// A 1 MiB memtable: the store flushes past 64 KiB of log.
	s := mustOpen(t, Options{Dir: "/db", FS: fs, MemTableSize: 1 << 20})
	c := fakeClock(t0)
	big := strings.Repeat("x", 40<<10)
	w, err := s.Write(c, "t", "a", []crdt.FieldValue{fv("f", big)}, false)
	if err != nil {
		t.Fatal(err)
	}
	acked := []crdt.Dot{w.Dot()}
	full.On()
	// 80 KiB of log since the last flush: past the bound.
	if _, err := s.Write(c, "t", "b", []crdt.FieldValue{fv("f", big)}, false); !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write on a full disk: %v, want ErrFailed naming ENOSPC", err)
	}
	if _, err := s.Write(c, "t", "c", []crdt.FieldValue{fv("f", 1)}, false); !errors.Is(err, ErrFailed) {
		t.Fatalf("write after the failure: %v, want ErrFailed", err)
	}
	full.Off()
	s.Close() // may report the error; must not end the process
	if err := checkReopened(fs, "/db", dots(acked), nil); err != nil {
		t.Fatal(err)
	}
}

// TestNoFlushOnNearlyFullDisk: the flush the store starts when its log
// grows (noteWAL) waits for room: with less free space than a memtable
// and flushSpare, none starts; with room, one does.
func TestNoFlushOnNearlyFullDisk(t *testing.T) {
	for _, tc := range []struct {
		name  string
		avail uint64
		flush bool
	}{{"nearly full", 1 << 20, false}, {"room", 1 << 30, true}} {
		t.Run(tc.name, func(t *testing.T) {
			mem := vfs.NewMem()
			mem.TestingSetDiskUsage(vfs.DiskUsage{AvailBytes: tc.avail, TotalBytes: 2 << 30, UsedBytes: 2<<30 - tc.avail})
			s := mustOpen(t, Options{Dir: "/db", FS: mem, MemTableSize: 1 << 20})
			defer s.Close()
			c := fakeClock(t0)
			before := s.Metrics().Flush.Count
			big := strings.Repeat("y", 40<<10)
			for _, id := range []string{"a", "b", "c"} { // 120 KiB of log: past the 64 KiB bound
				if _, err := s.Write(c, "t", id, []crdt.FieldValue{fv("f", big)}, false); err != nil {
					t.Fatal(err)
				}
			}
			s.awaitSettled(5 * time.Second)
			if got := s.Metrics().Flush.Count > before; got != tc.flush {
				t.Fatalf("%s (%d bytes free): flushed %v, want %v", tc.name, tc.avail, got, tc.flush)
			}
		})
	}
}

// TestFullDiskConcurrentWrites: writers racing on a disk that is full
// (every write and sync of the log fails with ENOSPC). The first failed
// write of the log ends Pebble's log writer for good, and it hands that
// error to every batch written after it, panicking in its commit
// pipeline with the pipeline's mutex held: a store that let a batch
// through then failed with a recovered panic, and its Close (the agent's
// reopen of a failed store) waited on that mutex forever. Each write must
// succeed or fail with ErrFailed naming ENOSPC, never with a recovered
// panic; Close must return; the store reopens with every acknowledged
// write. Each writer makes at most two writes of 20 KiB (more than a log
// block each, less than Pebble's first memtable in all: no memtable
// rotation, whose failure on a dead log ends the process).
func TestFullDiskConcurrentWrites(t *testing.T) {
	const rounds, writers = 500, 6
	big := strings.Repeat("x", 20<<10)
	for round := 0; round < rounds; round++ {
		fs, full := fullDiskFS()
		s := mustOpen(t, Options{Dir: "/db", FS: fs})
		c := fakeClock(t0)
		full.On()
		start := make(chan struct{})
		var mu sync.Mutex
		var acked []crdt.Dot
		var bad []string
		var wg sync.WaitGroup
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := 0; i < 2; i++ {
					w, err := s.Write(c, "t", fmt.Sprint(g, "-", i), []crdt.FieldValue{fv("f", big)}, false)
					mu.Lock()
					switch {
					case err == nil:
						acked = append(acked, w.Dot())
					case !errors.Is(err, ErrFailed) || !errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "pebble: "):
						bad = append(bad, err.Error())
					}
					mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		full.Off()
		closed := make(chan struct{})
		go func() { s.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close of the failed store does not return (writes failed with %q)", round, bad)
		}
		if len(bad) > 0 {
			t.Fatalf("round %d: writes on a full disk failed otherwise than with ErrFailed naming ENOSPC: %q", round, bad)
		}
		if err := checkReopened(fs, "/db", dots(acked), nil); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
	}
}
