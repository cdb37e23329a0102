package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

func TestContractMem(t *testing.T) {
	runContract(t, func(t *testing.T) Options {
		return Options{Dir: "/db", FS: vfs.NewMem()}
	})
}

func TestContractDisk(t *testing.T) {
	runContract(t, func(t *testing.T) Options {
		return Options{Dir: filepath.Join(t.TempDir(), "db")}
	})
}

// runContract is the store's contract suite. mk returns Options for a
// fresh location; the suite reopens with the same Options.
func runContract(t *testing.T, mk func(t *testing.T) Options) {
	t.Run("WriteGetStream", func(t *testing.T) {
		o := mk(t)
		s := mustOpen(t, o)
		clock := fakeClock(t0)
		if s.NodeID() == 0 {
			t.Fatal("node id 0")
		}
		w1, err := s.Write(clock, "tasks", "a", []crdt.FieldValue{fv("title", "x"), fv("done", false)}, false)
		if err != nil {
			t.Fatal(err)
		}
		w2, err := s.Write(clock, "tasks", "a", []crdt.FieldValue{fv("done", true)}, false)
		if err != nil {
			t.Fatal(err)
		}
		if w1.Seq != 1 || w2.Seq != 2 || w2.Ctx.Get(s.NodeID()) != 1 || w1.Fields[0].Name != "done" {
			t.Fatalf("writes %+v %+v", w1, w2)
		}
		rec, err := s.Get("tasks", "a")
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := rec.Get("done"); string(v) != string(crdt.MustValue(true)) {
			t.Fatalf("done = %v", v)
		}
		if _, err := s.Get("tasks", "b"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get missing: %v", err)
		}
		var got []uint64
		if err := s.Stream(s.NodeID(), 1, func(w *crdt.Write) error { got = append(got, w.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != "[2]" {
			t.Fatalf("stream after 1: %v", got)
		}
		if h := s.Holdings()[s.NodeID()]; h.Contig != 2 || len(h.Ranges) != 0 {
			t.Fatalf("holdings %v", h)
		}
		node, hw := s.NodeID(), s.HighWater()
		if hw == 0 || hw != clock.HighWater() {
			t.Fatalf("high water %v, clock %v", hw, clock.HighWater())
		}
		s.Close()
		s = mustOpen(t, o)
		defer s.Close()
		if s.NodeID() != node || s.HighWater() != hw {
			t.Fatalf("after reopen node %v hw %v", s.NodeID(), s.HighWater())
		}
		w3, err := s.Write(clock, "tasks", "b", []crdt.FieldValue{fv("x", 1)}, false)
		if err != nil || w3.Seq != 3 {
			t.Fatalf("write after reopen: %v %v", w3, err)
		}
		if err := s.Verify(); err != nil {
			t.Fatal(err)
		}
		feed, err := s.Feed(0, 0)
		if err != nil || len(feed) != 3 || feed[2].Seq != 3 || feed[2].ID != "b" || s.FeedHead() != 3 {
			t.Fatalf("feed %+v %v", feed, err)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		s := mustOpen(t, mk(t))
		defer s.Close()
		c := fakeClock(t0)
		for _, tc := range []struct{ table, id string }{{"", "a"}, {"a b", "a"}, {"t", ""}, {"t", "a\x00b"}, {"t", "\xff"}} {
			if _, err := s.Write(c, tc.table, tc.id, []crdt.FieldValue{fv("f", 1)}, false); !errors.Is(err, ErrInvalid) {
				t.Errorf("write %q/%q: %v", tc.table, tc.id, err)
			}
		}
		if _, err := s.Write(c, "t", "a", []crdt.FieldValue{fv("f", 1), fv("f", 2)}, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("duplicate field: %v", err)
		}
		if _, err := s.Write(c, "t", "a", []crdt.FieldValue{{Name: "f"}}, false); !errors.Is(err, ErrInvalid) {
			t.Errorf("nil value: %v", err)
		}
		if w, err := s.Write(c, "t", "a", []crdt.FieldValue{fv("f", 1)}, false); err != nil || w.Seq != 1 {
			t.Errorf("seq advanced on failure: %v %v", w, err)
		}
	})

	t.Run("DeleteTombstone", func(t *testing.T) {
		s := mustOpen(t, mk(t))
		defer s.Close()
		c := fakeClock(t0)
		s.Write(c, "t", "a", []crdt.FieldValue{fv("f", 1)}, false)
		if _, err := s.Write(c, "t", "a", nil, true); err != nil {
			t.Fatal(err)
		}
		rec, _ := s.Get("t", "a")
		if !rec.Deleted() {
			t.Fatal("not deleted")
		}
		ts, err := s.GetTombstone("t", "a")
		if err != nil || ts.Node != uint64(s.NodeID()) || len(ts.VV) != 1 {
			t.Fatalf("tombstone %+v %v", ts, err)
		}
		s.Write(c, "t", "a", []crdt.FieldValue{fv("f", 2)}, false)
		if _, err := s.GetTombstone("t", "a"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("tombstone after re-create: %v", err)
		}
		if err := s.Verify(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ApplyRemote", func(t *testing.T) {
		s := mustOpen(t, mk(t))
		defer s.Close()
		c := fakeClock(t0)
		p := newPeer(t, t0)
		w1 := p.write(t, "t", "a", fv("f", 1))
		w2 := p.write(t, "t", "a", fv("f", 2))
		w3 := p.write(t, "t", "b", fv("f", 3))
		w4 := p.write(t, "t", "a", fv("g", 4))
		// w2 before w1 in another call: deferred.
		res, err := s.ApplyRemote(c, []*crdt.Write{w2, w3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status[0] != Deferred || res.Status[1] != Applied || res.Applied != 1 {
			t.Fatalf("statuses %v", res.Status)
		}
		h := s.HeldOf(p.s.NodeID())
		if h.Contig != 0 || fmt.Sprint(h.Gaps()) != "[1-2]" {
			t.Fatalf("held %v gaps %v", h, h.Gaps())
		}
		res, err = s.ApplyRemote(c, []*crdt.Write{w1, w2, w3, w4}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(res.Status) != "[applied applied duplicate applied]" {
			t.Fatalf("statuses %v", res.Status)
		}
		if len(res.Outcomes[1].Fields) != 1 || len(res.Outcomes[1].Fields[0].Superseded) != 1 {
			t.Fatalf("outcome %+v", res.Outcomes[1])
		}
		rec, _ := s.Get("t", "a")
		prec, _ := p.s.Get("t", "a")
		if rec.Digest() != prec.Digest() {
			t.Fatal("digests differ")
		}
		// Parked: stamp far in the future.
		far := &crdt.Write{Table: "t", ID: "z", Origin: 77, Seq: 1, TS: hlc.New(t0+3_600_000, 0), Fields: []crdt.FieldValue{fv("f", 1)}}
		res, err = s.ApplyRemote(c, []*crdt.Write{far}, map[hlc.NodeID][]SeqRange{77: {{3, 5}}})
		if err != nil || res.Status[0] != Parked {
			t.Fatalf("park: %v %v", res, err)
		}
		if h := s.HeldOf(77); h.Contains(1) || !h.Contains(4) {
			t.Fatalf("held 77: %v", h)
		}
		parked, err := s.ListParked()
		if err != nil || len(parked) != 1 || parked[0].Write.Seq != 1 || parked[0].AheadMs < 3_000_000 {
			t.Fatalf("parked %+v %v", parked, err)
		}
		pw, err := s.ReleaseParked(77, 1)
		if err != nil || pw.Write.ID != "z" {
			t.Fatalf("release %v %v", pw, err)
		}
		if _, err := s.ReleaseParked(77, 1); !errors.Is(err, ErrNotFound) {
			t.Fatalf("release twice: %v", err)
		}
		// Empties close gaps: 1-2 empty for origin 77.
		if _, err := s.ApplyRemote(c, nil, map[hlc.NodeID][]SeqRange{77: {{1, 2}}}); err != nil {
			t.Fatal(err)
		}
		if h := s.HeldOf(77); h.Contig != 5 {
			t.Fatalf("held 77 after empties: %v", h)
		}
		if _, err := s.ApplyRemote(c, []*crdt.Write{{Table: "t"}}, nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("invalid write: %v", err)
		}
		if err := s.Verify(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ScanTables", func(t *testing.T) {
		s := mustOpen(t, mk(t))
		defer s.Close()
		c := fakeClock(t0)
		for _, tb := range []string{"b", "a", "c"} {
			for i := 0; i < 25; i++ {
				if _, err := s.Write(c, tb, fmt.Sprintf("id%02d", i), []crdt.FieldValue{fv("f", i)}, false); err != nil {
					t.Fatal(err)
				}
			}
		}
		tables, err := s.Tables()
		if err != nil || fmt.Sprint(tables) != "[a b c]" {
			t.Fatalf("tables %v %v", tables, err)
		}
		var ids []string
		after := ""
		for {
			page, next, err := s.Scan("b", after, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page {
				ids = append(ids, e.ID)
			}
			if next == "" {
				break
			}
			after = next
		}
		if len(ids) != 25 || ids[0] != "id00" || ids[24] != "id24" {
			t.Fatalf("scan %v", ids)
		}
	})

	t.Run("Bookkeeping", func(t *testing.T) {
		o := mk(t)
		s := mustOpen(t, o)
		ps := &PeerState{Peer: 9, Table: "t", LastSync: 123, Acked: map[hlc.NodeID]Held{5: {Contig: 3, Ranges: []SeqRange{{7, 9}}}}}
		if err := s.PutPeerState(ps); err != nil {
			t.Fatal(err)
		}
		id1, err := s.AppendSyncError(&SyncError{Table: "t", Record: "a", Fields: []string{"f"}, Policy: "server-wins"})
		if err != nil || id1 != 1 {
			t.Fatal(id1, err)
		}
		if err := s.PutConflict(&Conflict{Table: "t", ID: "a", Field: "f", Candidates: []crdt.Entry{{Origin: 1, Seq: 2, TS: 3, Value: crdt.MustValue("v")}}}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = mustOpen(t, o)
		defer s.Close()
		got, err := s.GetPeerState(9, "t")
		if err != nil || got.LastSync != 123 || !got.Acked[5].Equal(ps.Acked[5]) {
			t.Fatalf("peer state %+v %v", got, err)
		}
		if l, err := s.ListPeerStates(0); err != nil || len(l) != 1 {
			t.Fatalf("list peers %v %v", l, err)
		}
		id2, _ := s.AppendSyncError(&SyncError{Table: "t"})
		if id2 != 2 {
			t.Fatalf("second sync error id %d", id2)
		}
		if err := s.MarkSyncErrorRetried(1); err != nil {
			t.Fatal(err)
		}
		errs, err := s.ListSyncErrors(0, 0)
		if err != nil || len(errs) != 2 || !errs[0].Retried || errs[0].Policy != "server-wins" {
			t.Fatalf("sync errors %+v %v", errs, err)
		}
		cs, err := s.ListConflicts("t")
		if err != nil || len(cs) != 1 || string(cs[0].Candidates[0].Value) != string(crdt.MustValue("v")) {
			t.Fatalf("conflicts %+v %v", cs, err)
		}
		s.DeleteConflict("t", "a", "f")
		if cs, _ := s.ListConflicts(""); len(cs) != 0 {
			t.Fatal("conflict not deleted")
		}
		s.DeletePeerState(9, "t")
		if _, err := s.GetPeerState(9, "t"); !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	})

	t.Run("HooksAtomic", func(t *testing.T) {
		s := mustOpen(t, mk(t))
		defer s.Close()
		c := fakeClock(t0)
		_, err := s.WriteWith(c, "t", "a", []crdt.FieldValue{fv("f", 1)}, false, func(b *Batch, r *WriteResult) error {
			b.PutConflict(&Conflict{Table: "t", ID: "a", Field: "f"})
			b.AppendSyncError(&SyncError{Table: "t", Record: "a"})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		_, err = s.WriteWith(c, "t", "b", []crdt.FieldValue{fv("f", 1)}, false, func(b *Batch, r *WriteResult) error {
			b.AppendSyncError(&SyncError{})
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatal(err)
		}
		if _, err := s.Get("t", "b"); !errors.Is(err, ErrNotFound) {
			t.Fatal("aborted write visible")
		}
		if cs, _ := s.ListConflicts(""); len(cs) != 1 {
			t.Fatal("hook conflict missing")
		}
		w, _ := s.Write(c, "t", "c", []crdt.FieldValue{fv("f", 1)}, false)
		id, _ := s.AppendSyncError(&SyncError{})
		if w.Seq != 2 || id != 2 {
			t.Fatalf("counters advanced on abort: seq %d err id %d", w.Seq, id)
		}
		if err := s.Verify(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("CompactLogConverges", func(t *testing.T) {
		s := mustOpen(t, mk(t))
		defer s.Close()
		c := fakeClock(t0)
		for i := 0; i < 50; i++ {
			s.Write(c, "t", fmt.Sprint("r", i%5), []crdt.FieldValue{fv("f", i)}, false)
		}
		s.Write(c, "t", "r0", nil, true)
		n, err := s.CompactLog(0)
		if err != nil || n < 40 {
			t.Fatalf("elided %d %v", n, err)
		}
		if err := s.Verify(); err != nil {
			t.Fatal(err)
		}
		// A fresh replica fed the compacted log converges.
		p := newPeer(t, t0)
		var ws []*crdt.Write
		elided := 0
		s.Stream(s.NodeID(), 0, func(w *crdt.Write) error {
			if w.Elided {
				elided++
			}
			ws = append(ws, w)
			return nil
		})
		if len(ws) != 51 || elided != n {
			t.Fatalf("streamed %d, %d elided", len(ws), elided)
		}
		if _, err := p.s.ApplyRemote(p.clock, ws, nil); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			a, _ := s.Get("t", fmt.Sprint("r", i))
			b, _ := p.s.Get("t", fmt.Sprint("r", i))
			if a.Digest() != b.Digest() {
				t.Fatalf("record r%d differs after compacted stream", i)
			}
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		s := mustOpen(t, mk(t))
		defer s.Close()
		c := fakeClock(t0)
		var wg sync.WaitGroup
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					if _, err := s.Write(c, "t", fmt.Sprint("r", i%3), []crdt.FieldValue{fv(fmt.Sprint("g", g), i)}, false); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if h := s.HeldOf(s.NodeID()); h.Contig != 160 {
			t.Fatalf("held %v", h)
		}
		if err := s.Verify(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("OpenChecks", func(t *testing.T) {
		o := mk(t)
		o.ClusterID = "alpha"
		s := mustOpen(t, o)
		s.Close()
		o2 := o
		o2.ClusterID = "beta"
		if _, err := Open(o2); !errors.Is(err, ErrClusterMismatch) {
			t.Fatalf("cluster mismatch: %v", err)
		}
		// Newer format.
		setRaw(t, o, metaKey(metaFormat), u64val(FormatVersion+1))
		if _, err := Open(o); !errors.Is(err, ErrNewerFormat) {
			t.Fatalf("newer format: %v", err)
		}
		setRaw(t, o, metaKey(metaFormat), u64val(FormatVersion))
		s = mustOpen(t, o)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); !errors.Is(err, ErrClosed) {
			t.Fatalf("close twice: %v", err)
		}
		if _, err := s.Get("t", "a"); !errors.Is(err, ErrClosed) {
			t.Fatalf("get after close: %v", err)
		}
		// A Pebble database that is not ours.
		o3 := mk(t)
		setRaw(t, o3, []byte("hello"), []byte("world"))
		if _, err := Open(o3); !errors.Is(err, ErrNotReplicadStore) {
			t.Fatalf("foreign pebble: %v", err)
		}
		// A directory with other files.
		o4 := mk(t)
		fs := o4.FS
		if fs == nil {
			fs = vfs.Default
		}
		fs.MkdirAll(o4.Dir, 0o755)
		f, _ := fs.Create(fs.PathJoin(o4.Dir, "notes.txt"), vfs.WriteCategoryUnspecified)
		f.Write([]byte("hi"))
		f.Close()
		if _, err := Open(o4); !errors.Is(err, ErrNotReplicadStore) {
			t.Fatalf("other files: %v", err)
		}
		names, _ := fs.List(o4.Dir)
		if len(names) != 1 {
			t.Fatalf("failed open changed the dir: %v", names)
		}
	})
}

// setRaw writes a key directly with Pebble.
func setRaw(t testing.TB, o Options, k, v []byte) {
	t.Helper()
	fs := o.FS
	if fs == nil {
		fs = vfs.Default
	}
	db, err := pebble.Open(o.Dir, &pebble.Options{FS: fs, FormatMajorVersion: PebbleFormat, Logger: hclogAdapter{hclog.NewNullLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(k, v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}
