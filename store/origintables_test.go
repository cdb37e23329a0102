package store

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

func only(tables ...string) func([]byte) bool {
	return func(t []byte) bool {
		for _, x := range tables {
			if string(t) == x {
				return true
			}
		}
		return false
	}
}

// TestOriginTables: the store knows which tables each origin's log
// entries write (local writes and remote batches), keeps it across a
// reopen, and rebuilds it from the log when its completion mark is
// missing.
func TestOriginTables(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, Options{Dir: "/s", FS: fs, NoSync: true})
	clock := fakeClock(t0)
	p := newPeer(t, t0+3)
	for i := range 20 {
		if _, err := s.Write(clock, "mine", fmt.Sprint(i), []crdt.FieldValue{fv("a", i)}, false); err != nil {
			t.Fatal(err)
		}
		var ws []*crdt.Write
		ws = append(ws, p.write(t, "jobs", fmt.Sprint(i), fv("a", i)))
		if i == 7 {
			ws = append(ws, p.write(t, "notes", "n", fv("a", i)))
		}
		if _, err := s.ApplyRemote(clock, ws, nil); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		for _, c := range []struct {
			origin hlc.NodeID
			want   func([]byte) bool
			may    bool
		}{
			{s.NodeID(), only("mine"), true},
			{s.NodeID(), only("jobs", "notes"), false},
			{p.s.NodeID(), only("jobs"), true},
			{p.s.NodeID(), only("notes"), true},
			{p.s.NodeID(), only("mine", "other"), false},
			{hlc.NodeID(12345), only("jobs", "mine"), false},
		} {
			if got := s.OriginMayWrite(c.origin, c.want); got != c.may {
				t.Errorf("%s: origin %s may write: %v, want %v", when, c.origin, got, c.may)
			}
		}
	}
	check("open")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, Options{Dir: "/s", FS: fs, NoSync: true})
	check("reopened")
	// Drop the completion mark and the entries, as a store made before the
	// index (or a build a crash interrupted) has them.
	b := s.db.NewBatch()
	if err := b.Delete(metaKey(metaOriginTables), nil); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteRange([]byte{pOriginTable}, []byte{pOriginTable + 1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Apply(b, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, Options{Dir: "/s", FS: fs, NoSync: true})
	defer s.Close()
	check("rebuilt")
}
