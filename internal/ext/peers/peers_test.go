package peers

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

type bookFixture struct {
	t     *testing.T
	fs    vfs.FS
	st    *store.Store
	clock *hlc.Clock
	now   time.Time
	log   *bytes.Buffer
	b     *Book
}

func newBookFixture(t *testing.T) *bookFixture {
	f := &bookFixture{t: t, fs: vfs.NewMem(), now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), log: &bytes.Buffer{}}
	f.reopen()
	f.clock = hlc.NewClock(hlc.SystemClock, time.Minute)
	return f
}

// reopen closes the store (if open) and opens it and the book again.
func (f *bookFixture) reopen() {
	f.t.Helper()
	if f.st != nil {
		if err := f.st.Close(); err != nil {
			f.t.Fatal(err)
		}
	}
	st, err := store.Open(store.Options{Dir: "d", FS: f.fs, NoSync: true})
	if err != nil {
		f.t.Fatal(err)
	}
	f.st = st
	f.t.Cleanup(func() { st.Close() })
	log := hclog.New(&hclog.LoggerOptions{Output: f.log, Level: hclog.Info})
	if f.b, err = New(st, log, func() time.Time { return f.now }); err != nil {
		f.t.Fatal(err)
	}
}

func (f *bookFixture) write(table, id string) {
	f.t.Helper()
	if _, err := f.st.Write(f.clock, table, id, []crdt.FieldValue{{Name: "x", Value: crdt.MustValue(1)}}, false); err != nil {
		f.t.Fatal(err)
	}
}

// session runs one session's callbacks: the handshake's Have (theirs),
// then its end.
func (f *bookFixture) session(in replication.SessionInfo, theirs map[hlc.NodeID]store.Held) {
	if in.Peer.Node != 0 && theirs != nil {
		f.b.Started(in.Peer, theirs)
	}
	f.b.Ended(in)
}

func device(n hlc.NodeID, tables ...string) replication.Peer {
	sc := replication.FullScope()
	if len(tables) > 0 {
		sc = replication.TablesScope(tables...)
	}
	return replication.Peer{Node: n, Role: "device", Scope: sc, SkewMs: -40, Version: "v1.2.3"}
}

func (f *bookFixture) total() uint64 {
	var n uint64
	for _, h := range f.st.Holdings() {
		n += heldCount(h)
	}
	return n
}

func (f *bookFixture) pending(n hlc.NodeID) uint64 {
	r := f.b.nodes[n]
	if r == nil || !r.KnownSet {
		f.t.Fatalf("no pending count for %v", n)
	}
	return f.total() - min(f.total(), r.Known)
}

// TestPeerBookSessions: each session's end updates its peer's row for its
// direction: result, writes each way, failures, skew and version; a dialed
// session that failed before its handshake is put on the node last
// reached at that address; one with nothing to name it by is not kept.
func TestPeerBookSessions(t *testing.T) {
	f := newBookFixture(t)
	a, hub := hlc.NodeID(0xa1), hlc.NodeID(0xb2)
	f.session(replication.SessionInfo{Addr: "127.0.0.1:50001", Peer: device(a, "jobs"), Stats: replication.Stats{WritesApplied: 3, WritesSent: 2}, Duration: 5 * time.Millisecond}, map[hlc.NodeID]store.Held{})
	f.now = f.now.Add(time.Minute)
	f.session(replication.SessionInfo{Addr: "127.0.0.1:50002", Peer: device(a, "jobs"), Err: errors.New("read: connection reset")}, map[hlc.NodeID]store.Held{})
	r := f.b.nodes[a]
	if r == nil || r.Served == nil || r.Dialed != nil {
		t.Fatalf("record %+v: want a served side only", r)
	}
	s := r.Served
	if s.Sessions != 2 || s.WritesIn != 3 || s.WritesOut != 2 || s.Result != "failed" || s.Failures != 1 || !strings.Contains(s.LastError, "reset") ||
		s.LastSuccess != f.now.Add(-time.Minute).UnixMilli() || s.LastSession != f.now.UnixMilli() || s.Addr != "127.0.0.1:50002" || s.SkewMs != -40 || r.Version != "v1.2.3" || r.Role != "device" {
		t.Errorf("served side %+v (record %+v)", s, r)
	}
	// A dialed hub, then a refusal before its handshake (no node).
	f.session(replication.SessionInfo{Dialed: true, Addr: "hub:7401", Peer: replication.Peer{Node: hub, Role: "hub", Scope: replication.FullScope()}}, map[hlc.NodeID]store.Held{})
	f.session(replication.SessionInfo{Dialed: true, Addr: "hub:7401", Err: &replication.RefusedError{Reason: "busy"}}, nil)
	if d := f.b.nodes[hub].Dialed; d == nil || d.Result != "refused" || d.Failures != 1 || d.Sessions != 2 || f.b.nodes[hub].Role != "hub" {
		t.Errorf("dialed side of the hub: %+v", d)
	}
	f.session(replication.SessionInfo{Addr: "127.0.0.1:50003", Err: &replication.RefusedError{Reason: "busy"}}, nil)
	f.session(replication.SessionInfo{Dialed: true, Addr: "elsewhere:1", Err: errors.New("connection refused")}, nil)
	if len(f.b.nodes) != 2 {
		t.Errorf("%d records, want 2 (sessions with no node are not kept)", len(f.b.nodes))
	}
	if c := f.b.Counts(); c["served"] != 1 || c["dialed"] != 1 {
		t.Errorf("counts %v", c)
	}
	if len(f.b.starts) != 0 {
		t.Errorf("%d handshakes still kept after their sessions ended", len(f.b.starts))
	}
}

// TestPeerBookPending: what a peer lacks is what this node holds beyond
// what the peer held at the end of its last session: what it declared,
// plus, once a session finished, everything held here at its start.
func TestPeerBookPending(t *testing.T) {
	f := newBookFixture(t)
	self := f.st.NodeID()
	for i := 0; i < 5; i++ {
		f.write("jobs", fmt.Sprint("j", i))
	}
	a, b := hlc.NodeID(0xa1), hlc.NodeID(0xb2)
	f.session(replication.SessionInfo{Peer: device(a)}, map[hlc.NodeID]store.Held{})
	if p := f.pending(a); p != 0 {
		t.Errorf("after a finished session: pending %d, want 0", p)
	}
	var three store.Held
	three.Add(1, 3)
	f.session(replication.SessionInfo{Peer: device(b), Err: errors.New("cut")}, map[hlc.NodeID]store.Held{self: three, 0x99: three})
	if p := f.pending(b); p != 2 {
		t.Errorf("after a cut session where the peer held 3 of 5: pending %d, want 2", p)
	}
	f.write("jobs", "j5")
	f.write("jobs", "j6")
	if pa, pb := f.pending(a), f.pending(b); pa != 2 || pb != 4 {
		t.Errorf("after 2 more writes: pending %d and %d, want 2 and 4", pa, pb)
	}
}

// TestPeerBookTables: a table's last sync is the last successful session
// that exchanged it (the peer's scope listed it, or the peer holds
// everything); a failed session changes nothing.
func TestPeerBookTables(t *testing.T) {
	f := newBookFixture(t)
	f.write("jobs", "j1")
	f.write("crews", "c1")
	t0 := f.now
	f.session(replication.SessionInfo{Peer: device(0xa1, "jobs")}, map[hlc.NodeID]store.Held{})
	if got := f.b.TableSync("jobs"); !got.Equal(t0) {
		t.Errorf("jobs last sync %v, want %v", got, t0)
	}
	if got := f.b.TableSync("crews"); !got.IsZero() {
		t.Errorf("crews last sync %v, want never (no session exchanged it)", got)
	}
	f.now = f.now.Add(time.Hour)
	f.session(replication.SessionInfo{Peer: device(0xa2), Err: errors.New("cut")}, map[hlc.NodeID]store.Held{})
	if got := f.b.TableSync("crews"); !got.IsZero() {
		t.Errorf("crews last sync %v after a failed session, want never", got)
	}
	f.session(replication.SessionInfo{Peer: device(0xa2)}, map[hlc.NodeID]store.Held{})
	for _, tb := range []string{"jobs", "crews"} {
		if got := f.b.TableSync(tb); !got.Equal(f.now) {
			t.Errorf("%s last sync %v after a full-scope session, want %v", tb, got, f.now)
		}
	}
}

// TestPeerBookPersists: the table survives a restart (store reopened),
// per-table last syncs included.
func TestPeerBookPersists(t *testing.T) {
	f := newBookFixture(t)
	f.write("jobs", "j1")
	f.write("crews", "c1")
	t0 := f.now
	f.session(replication.SessionInfo{Addr: "127.0.0.1:1", Peer: device(0xa1, "jobs"), Stats: replication.Stats{WritesApplied: 7}}, map[hlc.NodeID]store.Held{})
	f.now = f.now.Add(time.Minute)
	f.session(replication.SessionInfo{Dialed: true, Addr: "hub:1", Peer: replication.Peer{Node: 0xb2, Role: "hub", Scope: replication.FullScope()}}, map[hlc.NodeID]store.Held{})
	if err := f.b.Flush(); err != nil {
		t.Fatal(err)
	}
	f.reopen()
	r := f.b.nodes[0xa1]
	if r == nil || r.Served == nil || r.Served.WritesIn != 7 || r.Served.Addr != "127.0.0.1:1" || !r.KnownSet || len(f.b.nodes) != 2 || f.b.nodes[0xb2].Dialed == nil {
		t.Fatalf("after a restart: %+v (%d records)", r, len(f.b.nodes))
	}
	if got := f.b.TableSync("jobs"); !got.Equal(f.now) {
		t.Errorf("jobs last sync %v after a restart, want %v", got, f.now)
	}
	if got := f.b.TableSync("crews"); !got.Equal(f.now) {
		t.Errorf("crews last sync %v after a restart, want %v (the hub's full session)", got, f.now)
	}
	_ = t0
}

// TestPeerBookBounded: at most maxPeerRecords peers, the least recently
// seen forgotten first, and none unseen for peerForgetAfter; forgotten
// peers leave the store too.
func TestPeerBookBounded(t *testing.T) {
	f := newBookFixture(t)
	for i := 1; i <= maxPeerRecords+10; i++ {
		f.now = f.now.Add(time.Second)
		f.session(replication.SessionInfo{Peer: device(hlc.NodeID(i), "jobs")}, map[hlc.NodeID]store.Held{})
	}
	if len(f.b.nodes) != maxPeerRecords {
		t.Fatalf("%d records, want %d", len(f.b.nodes), maxPeerRecords)
	}
	for i := 1; i <= 10; i++ {
		if f.b.nodes[hlc.NodeID(i)] != nil {
			t.Errorf("peer %d (among the least recently seen) kept", i)
		}
	}
	if err := f.b.Flush(); err != nil {
		t.Fatal(err)
	}
	infos, err := f.st.PeerInfos()
	if err != nil || len(infos) != maxPeerRecords {
		t.Fatalf("%d peers in the store (%v), want %d", len(infos), err, maxPeerRecords)
	}
	// Months later one peer syncs: every other is forgotten.
	f.now = f.now.Add(peerForgetAfter + time.Hour)
	f.session(replication.SessionInfo{Peer: device(1, "jobs")}, map[hlc.NodeID]store.Held{})
	if err := f.b.Flush(); err != nil {
		t.Fatal(err)
	}
	infos, _ = f.st.PeerInfos()
	states, _ := f.st.ListPeerStates(0)
	if len(f.b.nodes) != 1 || len(infos) != 1 || len(states) != 1 {
		t.Errorf("after %v: %d records, %d in the store, %d peer states; want 1 each", peerForgetAfter, len(f.b.nodes), len(infos), len(states))
	}
}

// TestSessionLogRateLimited: the INFO summary of sessions is a token
// bucket: a burst, then one a second, the next line counting the ones
// left out.
func TestSessionLogRateLimited(t *testing.T) {
	f := newBookFixture(t)
	in := replication.SessionInfo{Addr: "127.0.0.1:9", Peer: device(0xa1), Stats: replication.Stats{WritesApplied: 4, WritesSent: 1}, Duration: 12 * time.Millisecond}
	for i := 0; i < 100; i++ {
		f.b.LogSession(in)
	}
	if n := strings.Count(f.log.String(), "sync session"); n != sessionLogBurst {
		t.Fatalf("%d lines for 100 sessions at once, want %d", n, sessionLogBurst)
	}
	first := strings.SplitN(f.log.String(), "\n", 2)[0]
	for _, w := range []string{"[INFO]", "direction=served", "peer=00000000000000a1", "result=ok", "writes_in=4", "writes_out=1", "duration=12ms"} {
		if !strings.Contains(first, w) {
			t.Errorf("line %q lacks %q", first, w)
		}
	}
	f.log.Reset()
	f.now = f.now.Add(sessionLogEvery)
	f.b.LogSession(in)
	f.b.LogSession(in)
	if out := f.log.String(); strings.Count(out, "sync session") != 1 || !strings.Contains(out, fmt.Sprintf("not_logged_before=%d", 100-sessionLogBurst)) {
		t.Errorf("a second later: %q", out)
	}
}
