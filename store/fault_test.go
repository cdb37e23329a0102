package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// TestInjectedIOErrors injects WAL write and sync errors: the write fails
// with an error (no panic), later calls fail with ErrFailed, and the store
// reopens with every acknowledged write and passes Verify.
func TestInjectedIOErrors(t *testing.T) {
	for _, kind := range []errorfs.OpKind{errorfs.OpFileSync, errorfs.OpFileWrite} {
		t.Run(map[errorfs.OpKind]string{errorfs.OpFileSync: "sync", errorfs.OpFileWrite: "write"}[kind], func(t *testing.T) {
			mem := vfs.NewCrashableMem()
			tog := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
				if (op.Kind == kind || kind == errorfs.OpFileSync && op.Kind == errorfs.OpFileSyncData) && strings.HasSuffix(op.Path, ".log") {
					return errorfs.ErrInjected
				}
				return nil
			})}
			fs := errorfs.Wrap(mem, tog)
			s := mustOpen(t, Options{Dir: "/db", FS: fs})
			c := fakeClock(t0)
			var acked []crdt.Dot
			for i := 0; i < 10; i++ {
				w, err := s.Write(c, "t", "a", []crdt.FieldValue{fv("f", i)}, false)
				if err != nil {
					t.Fatal(err)
				}
				acked = append(acked, w.Dot())
			}
			tog.On()
			_, err := s.Write(c, "t", "a", []crdt.FieldValue{fv("f", 99)}, false)
			if err == nil {
				t.Fatal("write succeeded with injected errors")
			}
			if !errors.Is(err, ErrFailed) {
				t.Fatalf("want ErrFailed, got %v", err)
			}
			if _, err := s.Write(c, "t", "b", []crdt.FieldValue{fv("f", 1)}, false); !errors.Is(err, ErrFailed) {
				t.Fatalf("second write: %v", err)
			}
			if _, err := s.Get("t", "a"); !errors.Is(err, ErrFailed) {
				t.Fatalf("get after failure: %v", err)
			}
			tog.Off()
			s.Close() // may report the error; must not panic or hang
			// Reopen what a crash would leave (only synced data).
			crashed := mem.CrashClone(vfs.CrashCloneCfg{})
			if err := checkReopened(crashed, "/db", dots(acked), nil); err != nil {
				t.Fatal(err)
			}
			// And the live filesystem too.
			if err := checkReopened(fs, "/db", dots(acked), nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func dots(ds []crdt.Dot) map[crdt.Dot]bool {
	m := map[crdt.Dot]bool{}
	for _, d := range ds {
		m[d] = true
	}
	return m
}

// TestOpenIOError: an error while opening is reported, not a panic.
func TestOpenIOError(t *testing.T) {
	mem := vfs.NewMem()
	s := mustOpen(t, Options{Dir: "/db", FS: mem})
	s.Write(fakeClock(t0), "t", "a", []crdt.FieldValue{fv("f", 1)}, false)
	s.Close()
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpFileRead || op.Kind == errorfs.OpFileReadAt {
			return errorfs.ErrInjected
		}
		return nil
	}))
	if _, err := Open(Options{Dir: "/db", FS: fs}); err == nil || !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("open with read errors: %v", err)
	}
	s = mustOpen(t, Options{Dir: "/db", FS: mem})
	defer s.Close()
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
}

// TestBadData writes garbled and truncated values under record, log and
// holdings keys with Pebble directly: reads, Stream, Verify and Open report
// ErrCorrupt naming the key, never panic.
func TestBadData(t *testing.T) {
	build := func(t *testing.T) (Options, hlc.NodeID) {
		o := Options{Dir: "/db", FS: vfs.NewMem()}
		s := mustOpen(t, o)
		c := fakeClock(t0)
		for i := 0; i < 3; i++ {
			if _, err := s.Write(c, "t", "a", []crdt.FieldValue{fv("f", i), fv("g", "long enough value")}, false); err != nil {
				t.Fatal(err)
			}
		}
		node := s.NodeID()
		s.Close()
		return o, node
	}
	raw := func(t *testing.T, o Options, k []byte, mutate func([]byte) []byte) {
		db, err := pebble.Open(o.Dir, &pebble.Options{FS: o.FS, FormatMajorVersion: PebbleFormat, Logger: hclogAdapter{hclog.NewNullLogger()}})
		if err != nil {
			t.Fatal(err)
		}
		v, c, err := db.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		nv := mutate(append([]byte(nil), v...))
		c.Close()
		db.Set(k, nv, pebble.Sync)
		db.Close()
	}
	truncate := func(v []byte) []byte { return v[:len(v)/2] }
	garble := func(v []byte) []byte {
		for i := range v {
			v[i] ^= 0xa5
		}
		return v
	}
	for _, mut := range []struct {
		name string
		f    func([]byte) []byte
	}{{"truncated", truncate}, {"garbled", garble}} {
		t.Run("record-"+mut.name, func(t *testing.T) {
			o, _ := build(t)
			k := recordKey(nil, "t", "a")
			raw(t, o, k, mut.f)
			s := mustOpen(t, o)
			defer s.Close()
			_, err := s.Get("t", "a")
			wantCorrupt(t, err, k)
			_, err = s.Write(fakeClock(t0+10_000), "t", "a", []crdt.FieldValue{fv("f", 1)}, false)
			wantCorrupt(t, err, k)
			_, _, err = s.Scan("t", "", 10)
			wantCorrupt(t, err, k)
			wantCorrupt(t, s.Verify(), k)
		})
		t.Run("log-"+mut.name, func(t *testing.T) {
			o, node := build(t)
			k := logKey(nil, node, 2)
			raw(t, o, k, mut.f)
			s := mustOpen(t, o)
			defer s.Close()
			wantCorrupt(t, s.Stream(node, 0, func(*crdt.Write) error { return nil }), k)
			wantCorrupt(t, s.Verify(), k)
			_, err := s.CompactLog(0)
			wantCorrupt(t, err, k)
		})
		t.Run("holdings-"+mut.name, func(t *testing.T) {
			o, node := build(t)
			k := originKey(node)
			raw(t, o, k, mut.f)
			_, err := Open(o)
			wantCorrupt(t, err, k)
		})
	}
}

func wantCorrupt(t *testing.T, err error, key []byte) {
	t.Helper()
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("want ErrCorrupt for %s, got %v", FormatKey(key), err)
	}
	if !strings.Contains(err.Error(), FormatKey(key)) {
		t.Fatalf("error does not name key %s: %v", FormatKey(key), err)
	}
}
