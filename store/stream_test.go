package store

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// TestStreamTables: StreamTables sees every log entry Stream sees, in the
// same order, and decodes exactly those of the wanted tables, identical
// to Stream's.
func TestStreamTables(t *testing.T) {
	s := mustOpen(t, Options{Dir: filepath.Join(t.TempDir(), "db"), NoSync: true})
	defer s.Close()
	c := hlc.NewClock(func() int64 { return t0 + 10_000 }, time.Minute)
	const origin hlc.NodeID = 77
	var ws []*crdt.Write
	tables := []string{"a", "bb", "a_long_table_name_of_more_than_thirty_two_bytes"}
	for i := range 300 {
		ws = append(ws, &crdt.Write{Table: tables[i%3], ID: fmt.Sprint("r", i), Origin: origin, Seq: uint64(i + 1),
			TS: hlc.New(t0, 0) + hlc.Timestamp(i), Fields: []crdt.FieldValue{{Name: "f", Value: crdt.MustValue(i)}}})
	}
	if _, err := s.ApplyRemote(c, ws, nil); err != nil {
		t.Fatal(err)
	}
	var all []*crdt.Write
	if err := s.Stream(origin, 10, func(w *crdt.Write) error { all = append(all, w); return nil }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a", "a_long_table_name_of_more_than_thirty_two_bytes", "none"} {
		i, decoded := 0, 0
		err := s.StreamTables(origin, 10, func(tb []byte) bool { return string(tb) == want }, func(seq uint64, w *crdt.Write) error {
			if seq != all[i].Seq {
				t.Fatalf("entry %d: seq %d, Stream saw %d", i, seq, all[i].Seq)
			}
			switch {
			case all[i].Table == want && !reflect.DeepEqual(w, all[i]):
				t.Fatalf("entry %d: %+v, Stream decoded %+v", i, w, all[i])
			case all[i].Table != want && w != nil:
				t.Fatalf("entry %d of table %q decoded, want only %q", i, all[i].Table, want)
			}
			if w != nil {
				decoded++
			}
			i++
			return nil
		})
		if err != nil || i != len(all) {
			t.Fatalf("want %q: %d entries, %v; Stream saw %d", want, i, err, len(all))
		}
		expect := 0
		for _, w := range all {
			if w.Table == want {
				expect++
			}
		}
		if decoded != expect || (want != "none" && expect < 90) {
			t.Fatalf("want %q: %d decoded, want %d", want, decoded, expect)
		}
	}
}
