package crdt

import (
	"testing"

	"github.com/replicad/replicad/hlc"
)

func TestBasicLWW(t *testing.T) {
	var a, b Record
	w1 := &Write{Origin: 1, Seq: 1, TS: hlc.New(100, 0), Fields: []FieldValue{{"x", MustValue(1)}, {"y", MustValue("a")}}}
	a.Apply(w1, nil)
	w2 := &Write{Origin: 1, Seq: 2, TS: hlc.New(101, 0), Ctx: a.Context(), Fields: []FieldValue{{"x", MustValue(2)}}}
	w3 := &Write{Origin: 2, Seq: 1, TS: hlc.New(102, 0), Ctx: a.Context(), Fields: []FieldValue{{"x", MustValue(3)}}}
	a.Apply(w2, nil)
	var out Outcome
	a.Apply(w3, &out)
	if len(out.Fields) != 1 || len(out.Fields[0].Concurrent) != 1 {
		t.Fatalf("outcome %+v", out)
	}
	b.Apply(w1, nil)
	b.Apply(w3, nil)
	b.Apply(w2, nil)
	b.Apply(w2, nil)
	if a.Digest() != b.Digest() {
		t.Fatalf("diverged:\n%+v\n%+v", a, b)
	}
	if v, _ := a.Get("x"); v.String() != "3" {
		t.Fatalf("x = %s", v)
	}
	if got := a.Conflicted(); len(got) != 1 || got[0] != "x" {
		t.Fatalf("conflicted %v", got)
	}
	del := &Write{Origin: 2, Seq: 2, TS: hlc.New(103, 0), Ctx: a.Context(), Delete: true}
	a.Apply(del, nil)
	if a.Exists() {
		t.Fatal("exists after delete")
	}
	if msg := a.Check(); msg != "" {
		t.Fatal(msg)
	}
	enc, err := a.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var c Record
	if err := c.UnmarshalBinary(enc); err != nil {
		t.Fatal(err)
	}
	if c.Digest() != a.Digest() {
		t.Fatal("encoding round trip changed digest")
	}
	t.Logf("%d bytes: %+v", len(enc), a)
}

func TestWriteCodecRoundTrip(t *testing.T) {
	w := &Write{Table: "t", ID: "x", Origin: 7, Seq: 3, TS: hlc.New(5, 1), Ctx: VV{{1, 2}, {7, 2}},
		Fields: []FieldValue{{"a", MustValue(map[string]any{"k": []any{1, "two", nil}})}, {"b", Null}}}
	b, err := AppendWrite(nil, w)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeWrite(b, true)
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := AppendWrite(nil, got)
	if string(b) != string(b2) {
		t.Fatalf("round trip changed encoding")
	}
	for i := 0; i < len(b); i++ {
		if _, err := DecodeWrite(b[:i], true); err == nil {
			t.Fatalf("truncated at %d decoded without error", i)
		}
	}
	e := w.Elide()
	b3, _ := AppendWrite(nil, e)
	if got, err := DecodeWrite(b3, true); err != nil || !got.Elided || got.Fields[0].Value != nil {
		t.Fatalf("elided: %v %+v", err, got)
	}
}
