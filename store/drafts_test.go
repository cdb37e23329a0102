package store

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
)

func TestDrafts(t *testing.T) {
	fs := vfs.NewMem()
	s := mustOpen(t, Options{Dir: "/d", FS: fs})
	clock := fakeClock(t0)
	if _, err := s.Write(clock, "jobs", "j1", []crdt.FieldValue{fv("title", "pump")}, false); err != nil {
		t.Fatal(err)
	}
	rec, _ := s.Get("jobs", "j1")
	feed, held := s.FeedHead(), s.HeldOf(s.NodeID())

	d, err := s.PutDraft("jobs", "j1", []crdt.FieldValue{fv("title", "new pump"), fv("prio", 2)}, 10, rec.Context())
	if err != nil {
		t.Fatal(err)
	}
	if d.Rev != 1 || d.Created != 10 || len(d.Fields) != 2 || !d.BaseVV().Equal(rec.Context()) {
		t.Fatalf("first draft: %+v", d)
	}
	d, err = s.PutDraft("jobs", "j1", []crdt.FieldValue{fv("prio", 3), fv("note", "x")}, 20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Rev != 2 || d.Created != 10 || d.Updated != 20 || len(d.Fields) != 3 || string(d.Fields["prio"]) != string(crdt.MustValue(3)) ||
		!d.BaseVV().Equal(rec.Context()) {
		t.Fatalf("second draft: %+v", d)
	}
	if _, err := s.PutDraft("jobs", "j2", []crdt.FieldValue{fv("a", 1)}, 30, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutDraft("aa", "z", []crdt.FieldValue{fv("a", 1)}, 30, nil); err != nil {
		t.Fatal(err)
	}
	// A draft is no write: no feed entry, no holdings, no record, and the
	// record's state is unchanged.
	if s.FeedHead() != feed || !s.HeldOf(s.NodeID()).Equal(held) {
		t.Fatalf("a draft moved the feed (%d→%d) or holdings", feed, s.FeedHead())
	}
	if _, err := s.Get("jobs", "j2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("draft-only record readable: %v", err)
	}
	if r2, _ := s.Get("jobs", "j1"); !r2.Applied.Equal(rec.Applied) {
		t.Fatal("a draft changed the record")
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}

	// Bad input stores nothing.
	for _, bad := range [][]crdt.FieldValue{nil, {fv("", 1)}, {fv("a", 1), fv("a", 2)}, {{Name: "a", Value: crdt.Value{0xc1}}}} {
		if _, err := s.PutDraft("jobs", "j3", bad, 1, nil); !errors.Is(err, ErrInvalid) {
			t.Fatalf("PutDraft(%v): %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.PutDraft("bad table", "x", []crdt.FieldValue{fv("a", 1)}, 1, nil); !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
	if _, err := s.GetDraft("jobs", "j3"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("j3: %v", err)
	}

	if n, err := s.CountDrafts(); err != nil || n != 3 {
		t.Fatalf("CountDrafts = %d, %v", n, err)
	}
	all, err := s.ListDrafts("", "", "", 0)
	if err != nil || len(all) != 3 || all[0].Table != "aa" || all[1].ID != "j1" || all[2].ID != "j2" {
		t.Fatalf("list: %v %+v", err, all)
	}
	page, err := s.ListDrafts("", "jobs", "j1", 10)
	if err != nil || len(page) != 1 || page[0].ID != "j2" {
		t.Fatalf("list after jobs/j1: %v %+v", err, page)
	}
	page, err = s.ListDrafts("jobs", "", "", 1)
	if err != nil || len(page) != 1 || page[0].ID != "j1" {
		t.Fatalf("list jobs limit 1: %v %+v", err, page)
	}
	page, err = s.ListDrafts("jobs", "aa", "z", 10) // a cursor before the table
	if err != nil || len(page) != 2 {
		t.Fatalf("list jobs after aa/z: %v %+v", err, page)
	}

	// Publish j1: the write and the draft's removal are one batch, and
	// only at the revision read.
	d, _ = s.GetDraft("jobs", "j1")
	_, err = s.WriteWith(clock, "jobs", "j1", d.FieldValues(), false, func(b *Batch, _ *WriteResult) error {
		b.TakeDraft("jobs", "j1", d.Rev-1)
		return b.Err()
	})
	if !errors.Is(err, ErrDraftChanged) {
		t.Fatalf("take at a stale revision: %v", err)
	}
	if s.FeedHead() != feed {
		t.Fatal("a failed publish wrote")
	}
	if _, err := s.WriteWith(clock, "jobs", "j1", d.FieldValues(), false, func(b *Batch, _ *WriteResult) error {
		b.TakeDraft("jobs", "j1", d.Rev)
		return b.Err()
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetDraft("jobs", "j1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("published draft still there: %v", err)
	}
	if _, err := s.WriteWith(clock, "jobs", "j1", d.FieldValues(), false, func(b *Batch, _ *WriteResult) error {
		b.TakeDraft("jobs", "j1", d.Rev)
		return b.Err()
	}); !errors.Is(err, ErrDraftChanged) {
		t.Fatalf("published twice: %v", err)
	}
	if got, _ := s.Get("jobs", "j1"); got == nil || len(got.Fields) != 3 {
		t.Fatalf("published record: %+v", got)
	}

	// Discard, and drafts survive a reopen.
	if _, err := s.DeleteDraft("aa", "z"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteDraft("aa", "z"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second discard: %v", err)
	}
	if err := s.Verify(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, Options{Dir: "/d", FS: fs})
	defer s.Close()
	all, err = s.ListDrafts("", "", "", 0)
	if err != nil || len(all) != 1 || all[0].ID != "j2" || string(all[0].Fields["a"]) != string(crdt.MustValue(1)) {
		t.Fatalf("after reopen: %v %+v", err, all)
	}
}
