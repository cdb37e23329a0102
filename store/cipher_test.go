package store

import (
	"bytes"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

func testKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := io.ReadFull(crand.Reader, k); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestContractEncrypted runs the whole contract suite on a store whose
// values are sealed.
func TestContractEncrypted(t *testing.T) {
	runContract(t, func(t *testing.T) Options {
		return Options{Dir: "/db", FS: vfs.NewMem(), EncryptionKey: testKey(t)}
	})
}

// secret is a marker that must never be found in a sealed store's files.
const secret = "SECRET-7f3a9c-plaintext"

// populate writes every kind of value the store keeps, each carrying
// secret somewhere when it can hold bytes of the caller's.
func populate(t testing.TB, s *Store) {
	t.Helper()
	c := fakeClock(t0)
	for i := 0; i < 40; i++ {
		if _, err := s.Write(c, "tasks", fmt.Sprint("r", i%9), []crdt.FieldValue{fv("title", fmt.Sprint(secret, "-title-", i)), fv("n", i)}, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Write(c, "tasks", "r8", nil, true); err != nil { // a tombstone
		t.Fatal(err)
	}
	// Remote writes (log, holdings of another origin, feed), an empty
	// range, a parked write.
	p := newPeer(t, t0)
	for i := 0; i < 12; i++ {
		p.write(t, "notes", fmt.Sprint("n", i%4), fv("body", secret+"-note"))
	}
	ws := p.stream(t, 0)
	if _, err := s.ApplyRemote(c, ws, map[hlc.NodeID][]SeqRange{77: {{3, 5}}}); err != nil {
		t.Fatal(err)
	}
	far := &crdt.Write{Table: "t", ID: "z", Origin: 77, Seq: 1, TS: hlc.New(t0+3_600_000, 0), Fields: []crdt.FieldValue{fv("f", secret+"-parked")}}
	if res, err := s.ApplyRemote(c, []*crdt.Write{far}, nil); err != nil || res.Status[0] != Parked {
		t.Fatalf("park: %v %v", res, err)
	}
	// A whole-record merge (v key).
	q := newPeer(t, t0)
	q.write(t, "merged", "m1", fv("x", secret+"-merged"))
	rec, err := q.s.Get("merged", "m1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.MergeRecord(c, "merged", "m1", rec); err != nil {
		t.Fatal(err)
	}
	// Bookkeeping.
	if err := s.PutPeerState(&PeerState{Peer: p.s.NodeID(), Table: "tasks", LastSync: 5, Acked: map[hlc.NodeID]Held{p.s.NodeID(): {Contig: 3}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendSyncError(&SyncError{Table: "tasks", Record: "r1", Detail: secret + "-syncerror", Losing: map[string][]byte{"title": crdt.MustValue(secret)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutConflict(&Conflict{Table: "tasks", ID: "r2", Field: "title", Base: crdt.MustValue(secret + "-conflict"), Policy: "manual"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RaiseGCHorizon(crdt.VV{{Node: 5, Seq: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDraft("tasks", "d1", []crdt.FieldValue{fv("title", secret+"-draft")}, t0, nil); err != nil {
		t.Fatal(err)
	}
	digest := bytes.Repeat([]byte{7}, KeyDigestLen)
	if err := s.Update(func(b *Batch) error {
		b.Enqueue([]byte(secret + "-queued"))
		b.PutKeyIndex("tasks", "r1", digest)
		b.PutKeyIndexDef("tasks", []byte(`["title"]`))
		b.PutDupPending("tasks", "r1", []byte(secret+"-dup"))
		b.PutConsumer("wf", []byte(`{"cursor":3,"secret":"`+secret+`"}`))
		b.PutConsumerOutcome("wf", 3, []byte(secret+"-outcome"))
		b.PutBase("tasks", "r3", "title", crdt.Entry{Value: crdt.MustValue(secret + "-base")})
		b.PutRestamp(crdt.Dot{Node: s.NodeID(), Seq: 1}, crdt.Dot{Node: 9, Seq: 4})
		b.SetHidden("tasks", "r4", true, crdt.VV{{Node: 9, Seq: 2}})
		return b.Err()
	}); err != nil {
		t.Fatal(err)
	}
}

// contents returns every key of s with its value as written (opened),
// but the bootstrap values (which say how the others are stored) and the
// boots (each Open records one, boots.go).
func contents(t testing.TB, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		if isBootstrap(it.Key()) || bytes.Equal(it.Key(), metaKey(metaBoots)) {
			continue
		}
		v, err := s.itValue(it, &buf)
		if err != nil {
			t.Fatalf("%s: %v", FormatKey(it.Key()), err)
		}
		out[string(it.Key())] = string(v)
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

func sameContents(t testing.TB, want, got map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing "+FormatKey([]byte(k)))
		} else if g != v {
			diffs = append(diffs, "changed "+FormatKey([]byte(k)))
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "extra "+FormatKey([]byte(k)))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		t.Fatalf("%d differences: %v", len(diffs), diffs)
	}
}

// checkAPI reads back through the public API what populate wrote.
func checkAPI(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Verify(); err != nil {
		t.Fatalf("verify: %v", err)
	}
	rec, err := s.Get("tasks", "r1")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := rec.Get("title"); !strings.Contains(string(v), secret) {
		t.Fatalf("title %q", v)
	}
	if _, err := s.Get("tasks", "r4"); !errors.Is(err, ErrOutOfScope) {
		t.Fatalf("hidden r4: %v", err)
	}
	n := 0
	if err := s.Stream(s.NodeID(), 0, func(*crdt.Write) error { n++; return nil }); err != nil || n != 41 {
		t.Fatalf("stream own: %d %v", n, err)
	}
	if h := s.HeldOf(77); !h.Contains(4) || h.Contains(1) {
		t.Fatalf("held 77 %v", h)
	}
	if f, err := s.Feed(0, 1000); err != nil || len(f) != 41+12+1 {
		t.Fatalf("feed %d %v", len(f), err)
	}
	if q, err := s.Queue(-1); err != nil || len(q) != 1 || string(q[0].Value) != secret+"-queued" {
		t.Fatalf("queue %v %v", q, err)
	}
	if d, err := s.GetDraft("tasks", "d1"); err != nil || !strings.Contains(string(d.Fields["title"]), secret) {
		t.Fatalf("draft %v %v", d, err)
	}
	if n, err := s.CountDrafts(); err != nil || n != 1 {
		t.Fatalf("drafts %d %v", n, err)
	}
	if p, err := s.ListParked(); err != nil || len(p) != 1 {
		t.Fatalf("parked %v %v", p, err)
	}
	if e, err := s.ListSyncErrors(0, 10); err != nil || len(e) != 1 || e[0].Detail != secret+"-syncerror" {
		t.Fatalf("sync errors %v %v", e, err)
	}
	if c, err := s.ListConflicts(""); err != nil || len(c) != 1 {
		t.Fatalf("conflicts %v %v", c, err)
	}
	if ps, err := s.ListPeerStates(0); err != nil || len(ps) != 1 || ps[0].LastSync != 5 {
		t.Fatalf("peers %v %v", ps, err)
	}
	if ts, err := s.ListTombstones("", 10); err != nil || len(ts) != 1 {
		t.Fatalf("tombstones %v %v", ts, err)
	}
	if h, err := s.GCHorizon(); err != nil || len(h) != 1 {
		t.Fatalf("horizon %v %v", h, err)
	}
	if d, ok, err := s.KeyIndexOf("tasks", "r1"); err != nil || !ok || len(d) != KeyDigestLen {
		t.Fatalf("key index %v %v %v", d, ok, err)
	}
	if ids, err := s.KeyIndexIDs("tasks", bytes.Repeat([]byte{7}, KeyDigestLen), 0); err != nil || len(ids) != 1 {
		t.Fatalf("key index ids %v %v", ids, err)
	}
	if def, ok, err := s.KeyIndexDef("tasks"); err != nil || !ok || string(def) != `["title"]` {
		t.Fatalf("key index def %q %v %v", def, ok, err)
	}
	if dp, err := s.DupPendings(0); err != nil || len(dp) != 1 || string(dp[0].Value) != secret+"-dup" {
		t.Fatalf("dup pending %v %v", dp, err)
	}
	if st, ok, err := s.Consumer("wf"); err != nil || !ok || !strings.Contains(string(st), secret) {
		t.Fatalf("consumer %q %v %v", st, ok, err)
	}
	if oc, err := s.ConsumerOutcomes("wf", 0, 10); err != nil || len(oc) != 1 || string(oc[0].Value) != secret+"-outcome" {
		t.Fatalf("outcomes %v %v", oc, err)
	}
	if e, ok, err := s.Base("tasks", "r3", "title"); err != nil || !ok || !strings.Contains(string(e.Value), secret) {
		t.Fatalf("base %v %v %v", e, ok, err)
	}
	if d, ok, err := s.Restamp(crdt.Dot{Node: s.NodeID(), Seq: 1}); err != nil || !ok || d.Seq != 4 {
		t.Fatalf("restamp %v %v %v", d, ok, err)
	}
	if sk, ok := s.HiddenSkipped("tasks", "r4"); !ok || sk.Get(9) != 2 {
		t.Fatalf("hidden skipped %v %v", sk, ok)
	}
	if s.HighWater() == 0 {
		t.Fatal("high-water 0")
	}
}

// TestEncryptedRoundTrip: every kind of value, written sealed, reads back
// after a reopen; the raw values are sealed (none equals what was written,
// each opens only under its own key) and the bootstrap values plain.
func TestEncryptedRoundTrip(t *testing.T) {
	key := testKey(t)
	o := Options{Dir: "/db", FS: vfs.NewMem(), EncryptionKey: key}
	s := mustOpen(t, o)
	if !s.Encrypted() {
		t.Fatal("not encrypted")
	}
	populate(t, s)
	checkAPI(t, s)
	want := contents(t, s)
	node := s.NodeID()
	s.Close()
	s = mustOpen(t, o)
	defer s.Close()
	if s.NodeID() != node {
		t.Fatalf("node %v, was %v", s.NodeID(), node)
	}
	checkAPI(t, s)
	sameContents(t, want, contents(t, s))
	// Raw: every value but the bootstrap ones is sealed.
	it, _ := s.db.NewIter(nil)
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		if isBootstrap(k) || bytes.Equal(k, metaKey(metaBoots)) {
			continue
		}
		n++
		if len(v) != sealOverhead+len(want[string(k)]) || v[0] != sealVersion {
			t.Fatalf("%s: raw value of %d bytes for %d", FormatKey(k), len(v), len(want[string(k)]))
		}
		if bytes.Contains(v, []byte(secret)) {
			t.Fatalf("%s holds the plaintext", FormatKey(k))
		}
		if _, err := s.ciph.open(nil, append([]byte{k[0] + 1}, k[1:]...), v); err == nil {
			t.Fatalf("%s: value opens under another key", FormatKey(k))
		}
	}
	if n < 50 {
		t.Fatalf("only %d values", n)
	}
	if string(raw(t, s, metaKey(metaMagic))) != magicValue || be(raw(t, s, metaKey(metaFormat))) != formatSealed {
		t.Fatal("bootstrap values not plain")
	}
}

func raw(t testing.TB, s *Store, k []byte) []byte {
	t.Helper()
	v, c, err := s.db.Get(k)
	if err != nil {
		t.Fatalf("%s: %v", FormatKey(k), err)
	}
	defer c.Close()
	return append([]byte(nil), v...)
}

// fsState lists every file of dir with its contents, to show that a
// refused Open changed nothing.
func fsState(t testing.TB, fs vfs.FS, dir string) map[string]string {
	t.Helper()
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, n := range names {
		f, err := fs.Open(fs.PathJoin(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[n] = string(b)
	}
	return out
}

func sameFiles(t testing.TB, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("files changed: %d before, %d after", len(before), len(after))
	}
	for n, b := range before {
		if after[n] != b {
			t.Fatalf("file %s changed", n)
		}
	}
}

// TestEncryptedOpenRefusals: an encrypted store without its key, with
// another key, a key of the wrong length, an encrypted store read by a
// replicad that predates encryption: each refused with a clear error and
// nothing changed on disk.
func TestEncryptedOpenRefusals(t *testing.T) {
	fs := vfs.NewMem()
	key := testKey(t)
	o := Options{Dir: "/db", FS: fs, EncryptionKey: key}
	s := mustOpen(t, o)
	populate(t, s)
	s.Close()
	before := fsState(t, fs, "/db")

	noKey := o
	noKey.EncryptionKey = nil
	_, err := Open(noKey)
	if !errors.Is(err, ErrKeyRequired) || !strings.Contains(err.Error(), "encrypted at rest") {
		t.Fatalf("no key: %v", err)
	}
	sameFiles(t, before, fsState(t, fs, "/db"))

	other := o
	other.EncryptionKey = testKey(t)
	_, err = Open(other)
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), "not the key the store was encrypted with") {
		t.Fatalf("wrong key: %v", err)
	}
	sameFiles(t, before, fsState(t, fs, "/db"))

	for _, n := range []int{0, 16, 31, 33, 64} {
		short := o
		short.EncryptionKey = make([]byte, n)
		if _, err := Open(short); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("%d bytes", n)) {
			t.Fatalf("key of %d bytes: %v", n, err)
		}
	}
	sameFiles(t, before, fsState(t, fs, "/db"))

	// A replicad reading format 1 at most refuses the sealed store.
	db, err := pebble.Open("/db", &pebble.Options{FS: fs, FormatMajorVersion: PebbleFormat, Logger: hclogAdapter{hclog.NewNullLogger()}, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	m, err := readMeta(db, nil)
	db.Close()
	if !errors.Is(err, ErrKeyRequired) {
		t.Fatalf("readMeta without key: %v %v", m, err)
	}
	s = mustOpen(t, o)
	defer s.Close()
	if v := be(raw(t, s, metaKey(metaFormat))); v != formatSealed || v <= formatPlain {
		t.Fatalf("format %d", v)
	}
}

// TestEncryptedBadData: a sealed value garbled, truncated, or moved under
// another key is ErrCorrupt naming the key, never a panic or a wrong value.
func TestEncryptedBadData(t *testing.T) {
	key := testKey(t)
	build := func(t *testing.T) Options {
		o := Options{Dir: "/db", FS: vfs.NewMem(), EncryptionKey: key}
		s := mustOpen(t, o)
		c := fakeClock(t0)
		for _, id := range []string{"a", "b"} {
			if _, err := s.Write(c, "t", id, []crdt.FieldValue{fv("f", id+" long enough value")}, false); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		return o
	}
	rawSet := func(t *testing.T, o Options, k []byte, v func(db *pebble.DB) []byte) {
		db, err := pebble.Open(o.Dir, &pebble.Options{FS: o.FS, FormatMajorVersion: PebbleFormat, Logger: hclogAdapter{hclog.NewNullLogger()}})
		if err != nil {
			t.Fatal(err)
		}
		nv := v(db)
		if err := db.Set(k, nv, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	get := func(db *pebble.DB, k []byte) []byte {
		v, c, err := db.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return append([]byte(nil), v...)
	}
	ka, kb := recordKey(nil, "t", "a"), recordKey(nil, "t", "b")
	for name, mut := range map[string]func(db *pebble.DB) []byte{
		"garbled":   func(db *pebble.DB) []byte { v := get(db, ka); v[len(v)-20] ^= 1; return v },
		"truncated": func(db *pebble.DB) []byte { return get(db, ka)[:20] },
		"version":   func(db *pebble.DB) []byte { v := get(db, ka); v[0] = 9; return v },
		"moved":     func(db *pebble.DB) []byte { return get(db, kb) }, // b's sealed value under a's key
		"plain":     func(db *pebble.DB) []byte { return []byte("plain bytes, not sealed at all") },
	} {
		t.Run(name, func(t *testing.T) {
			o := build(t)
			rawSet(t, o, ka, mut)
			s := mustOpen(t, o)
			defer s.Close()
			_, err := s.Get("t", "a")
			wantCorrupt(t, err, ka)
			_, _, err = s.Scan("t", "", 10)
			wantCorrupt(t, err, ka)
			wantCorrupt(t, s.Verify(), ka)
			if _, err := s.Get("t", "b"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMigratePlainStore: a populated plain store opened with a key is
// rewritten sealed, in bounded batches, with progress logged; everything
// reads back the same, and afterwards it opens only with the key.
func TestMigratePlainStore(t *testing.T) {
	fs := vfs.NewMem()
	o := Options{Dir: "/db", FS: fs}
	s := mustOpen(t, o)
	populate(t, s)
	checkAPI(t, s)
	want := contents(t, s)
	s.Close()

	var logBuf bytes.Buffer
	var logMu sync.Mutex
	key := testKey(t)
	ko := o
	ko.EncryptionKey = key
	ko.migrateBatch = 7
	ko.Logger = hclog.New(&hclog.LoggerOptions{Output: &lockedWriter{w: &logBuf, mu: &logMu}, Level: hclog.Info})
	var batches int
	var last uint64
	ko.testMigrate = func(stage string, done uint64) {
		if stage == "batch" {
			batches++
			if done < last || done-last > 7 {
				t.Errorf("batch sealed %d values (bound 7)", done-last)
			}
			last = done
		}
	}
	s = mustOpen(t, ko)
	if !s.Encrypted() {
		t.Fatal("not encrypted")
	}
	if min := (len(want) + 6) / 7; batches < min {
		t.Fatalf("%d batches for %d values", batches, len(want))
	}
	if last != uint64(len(want))+1 { // and m"boots"
		t.Fatalf("sealed %d values of %d", last, len(want)+1)
	}
	checkAPI(t, s)
	sameContents(t, want, contents(t, s))
	// It keeps working: a write after the migration.
	if _, err := s.Write(fakeClock(t0+1_000_000), "tasks", "after", []crdt.FieldValue{fv("x", 1)}, false); err != nil {
		t.Fatal(err)
	}
	s.Close()
	logMu.Lock()
	logs := logBuf.String()
	logMu.Unlock()
	for _, m := range []string{"migration started", "every value is sealed", "done"} {
		if !strings.Contains(logs, m) {
			t.Fatalf("log lacks %q:\n%s", m, logs)
		}
	}
	if _, err := Open(o); !errors.Is(err, ErrKeyRequired) {
		t.Fatalf("open without key after migration: %v", err)
	}
	ko.testMigrate = nil
	s = mustOpen(t, ko)
	defer s.Close()
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("tasks", "after"); err != nil {
		t.Fatal(err)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestMigrateCrash: crash clones of the filesystem taken at every step of
// a migration (after it starts, after each batch, after the compaction,
// with some unsynced data kept or lost), and in the middle of batches
// (clones taken from a concurrent goroutine). Each clone opens with the
// key (resuming the migration), reads back exactly what the plain store
// held and passes Verify; one that crashed after the migration started
// refuses to open without the key instead of reading sealed bytes.
func TestMigrateCrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	o := Options{Dir: "/db", FS: fs}
	s := mustOpen(t, o)
	populate(t, s)
	want := contents(t, s)
	s.Close()

	key := testKey(t)
	ko := o
	ko.EncryptionKey = key
	ko.migrateBatch = 5
	rng := mathrand(1)
	type clone struct {
		fs      *vfs.MemFS
		stage   string
		started bool
	}
	var clones []clone
	var mu sync.Mutex
	take := func(stage string, started bool) {
		mu.Lock()
		defer mu.Unlock()
		pct := []int{0, 30, 100}[rng.IntN(3)]
		clones = append(clones, clone{fs: fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: mathrand(uint64(len(clones) + 2))}), stage: stage, started: started})
	}
	take("before", false)
	rng2 := mathrand(99)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // clones at arbitrary moments, mid-batch included
		defer wg.Done()
		for i := 0; i < 40; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Duration(rng2.IntN(3000)) * time.Microsecond):
				take("async", false)
			}
		}
	}()
	ko.testMigrate = func(stage string, done uint64) { take(fmt.Sprint(stage, "@", done), true) }
	s = mustOpen(t, ko)
	close(stop)
	wg.Wait()
	checkAPI(t, s)
	s.Close()
	take("after", true)

	if len(clones) < 20 {
		t.Fatalf("only %d crash points", len(clones))
	}
	refused := 0
	for i, c := range clones {
		// Without the key: plain (crashed before the migration's first
		// batch was durable) or refused; never sealed bytes read as values.
		no := Options{Dir: "/db", FS: c.fs}
		if ps, err := Open(no); err == nil {
			if got := contents(t, ps); len(got) != len(want) {
				t.Fatalf("clone %d (%s): opened without key with %d values", i, c.stage, len(got))
			}
			if err := ps.Verify(); err != nil {
				t.Fatalf("clone %d (%s): plain verify: %v", i, c.stage, err)
			}
			ps.Close()
			if c.started {
				t.Fatalf("clone %d (%s) opens without the key after the migration started", i, c.stage)
			}
		} else if errors.Is(err, ErrKeyRequired) {
			refused++
		} else {
			t.Fatalf("clone %d (%s): open without key: %v", i, c.stage, err)
		}
		wo := Options{Dir: "/db", FS: c.fs, EncryptionKey: key, migrateBatch: 3}
		es, err := Open(wo)
		if err != nil {
			t.Fatalf("clone %d (%s): open with key: %v", i, c.stage, err)
		}
		checkAPI(t, es)
		sameContents(t, want, contents(t, es))
		es.Close()
	}
	if refused == 0 {
		t.Fatal("no clone was mid-migration")
	}
	t.Logf("%d crash points, %d refused without the key", len(clones), refused)
}

func mathrand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

// TestMigrateLeavesNoPlaintextOnDisk: a plain store on a real directory
// holds the marker in its files (so this test can fail); after the
// migration and its compaction, no file of the directory holds it, nor
// after more writes and a reopen.
func TestMigrateLeavesNoPlaintextOnDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	o := Options{Dir: dir, testNoFlushAtClose: true} // the last writes stay in the WAL
	s := mustOpen(t, o)
	populate(t, s)
	if err := s.db.Flush(); err != nil { // some of it in an sstable, the rest in the WAL
		t.Fatal(err)
	}
	c := fakeClock(t0 + 100_000)
	for i := 0; i < 20; i++ {
		if _, err := s.Write(c, "tasks", fmt.Sprint("late", i), []crdt.FieldValue{fv("title", secret+"-in-wal")}, false); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	if n := filesHolding(t, dir, secret); n < 2 {
		t.Fatalf("the plain store's files hold the marker %d times: this test would prove nothing", n)
	}
	if n := filesHolding(t, dir, secret+"-in-wal"); n == 0 {
		t.Fatal("the plain WAL does not hold the marker")
	}
	ko := o
	ko.EncryptionKey = testKey(t)
	ko.testNoFlushAtClose = false
	s = mustOpen(t, ko)
	for i := 0; i < 20; i++ {
		if _, err := s.Write(c, "tasks", fmt.Sprint("sealed", i), []crdt.FieldValue{fv("title", secret+"-sealed")}, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := filesHolding(t, dir, secret); n != 0 {
		t.Fatalf("after migration %d files still hold plaintext", n)
	}
	s = mustOpen(t, ko)
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if n := filesHolding(t, dir, secret); n != 0 {
		t.Fatalf("after reopen %d files hold plaintext", n)
	}
}

// filesHolding counts the files under dir whose bytes contain marker.
func filesHolding(t testing.TB, dir, marker string) int {
	t.Helper()
	n := 0
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Logf("%s holds %q", filepath.Base(p), marker)
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestNonces: nonces of one cipher never repeat, and two ciphers (two
// opens) draw different prefixes.
func TestNonces(t *testing.T) {
	k := testKey(t)
	a, _ := newValueCipher(k)
	b, _ := newValueCipher(k)
	seen := map[[nonceSize]byte]bool{}
	var n [nonceSize]byte
	for i := 0; i < 10000; i++ {
		for _, c := range []*valueCipher{a, b} {
			if err := c.nonce(n[:]); err != nil {
				t.Fatal(err)
			}
			if seen[n] {
				t.Fatalf("nonce %x repeated", n)
			}
			seen[n] = true
		}
	}
	// The counter's end draws a new prefix.
	a.ctr = ^uint32(0) - 1
	a.nonce(n[:])
	p := a.prefix
	a.nonce(n[:])
	if a.prefix == p || a.ctr != 1 {
		t.Fatalf("prefix not redrawn at the counter's end: %x %d", a.prefix, a.ctr)
	}
}

// BenchmarkAtRest isolates the CPU cost of sealing and opening values:
// the same work on a plain and an encrypted store, NoSync (no fsync to
// hide or blur it), on a temporary directory (Pebble's memory
// filesystem grows each file by copying it: sealed values, being larger,
// would mostly measure that). The durable
// comparisons are BenchmarkLocalWrite and BenchmarkApplyRemote1000
// (store vs store-encrypted).
func BenchmarkAtRest(b *testing.B) {
	// Plain and encrypted alternate at the innermost level, so that with
	// -count each pair runs close in time (the machine's load varies).
	open := func(b *testing.B, key []byte) *Store {
		s := mustOpen(b, Options{Dir: filepath.Join(b.TempDir(), "db"), NoSync: true, EncryptionKey: key})
		b.Cleanup(func() { s.Close() })
		return s
	}
	ops := []struct {
		name string
		run  func(b *testing.B, key []byte)
	}{
		{"write", func(b *testing.B, key []byte) {
			s := open(b, key)
			c := fakeClock(t0)
			val := crdt.MustValue("a value of some thirty bytes..")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Write(c, "bench", strconv.Itoa(i%1000), []crdt.FieldValue{{Name: "f", Value: val}}, false); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"apply1000", func(b *testing.B, key []byte) {
			s := open(b, key)
			c := hlc.NewClock(func() int64 { return t0 + 10_000 }, time.Minute)
			g := newRemoteGen(99, 20_000)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				ws := g.next(1000)
				b.StartTimer()
				if _, err := s.ApplyRemote(c, ws, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "fieldchanges/s")
		}},
		{"scan1000", func(b *testing.B, key []byte) {
			s := open(b, key)
			c := hlc.NewClock(func() int64 { return t0 + 10_000 }, time.Minute)
			if _, err := s.ApplyRemote(c, newRemoteGen(99, 1000).next(1000), nil); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				recs, _, err := s.Scan("bench", "", 1000)
				if err != nil || len(recs) != 1000 {
					b.Fatal(len(recs), err)
				}
			}
		}},
	}
	// cpu-µs/op is the process's CPU time (user + system, Pebble's
	// background work included) per op: on a loaded machine it compares
	// the two better than the wall time.
	withCPU := func(run func(*testing.B, []byte), key []byte) func(*testing.B) {
		return func(b *testing.B) {
			before := processCPU()
			run(b, key)
			b.ReportMetric(float64((processCPU()-before).Microseconds())/float64(b.N), "cpu-µs/op")
		}
	}
	for _, op := range ops {
		b.Run(op.name+"/plain", withCPU(op.run, nil))
		b.Run(op.name+"/encrypted", withCPU(op.run, benchKey))
	}
}

// processCPU returns the CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
