package filter

import (
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

func record(t *testing.T, kv ...any) *crdt.Record {
	t.Helper()
	var rec crdt.Record
	w := &crdt.Write{Table: "t", ID: "r", Origin: 1, Seq: 1, TS: hlc.New(1, 0)}
	for i := 0; i < len(kv); i += 2 {
		w.Fields = append(w.Fields, crdt.FieldValue{Name: kv[i].(string), Value: crdt.MustValue(kv[i+1])})
	}
	rec.Apply(w, nil)
	return &rec
}

var noon = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixMilli()

func TestMatch(t *testing.T) {
	rec := record(t, "start", "2026-11-30T09:00:00Z", "status", "open", "owner", "alice", "n", 3, "due-date", "2026-12-24")
	env := Env{NowMs: noon, Device: map[string]string{"user": "alice"}}
	for _, c := range []struct {
		expr string
		want bool
	}{
		{"start >= today", true},
		{"start >= now", false},
		{"start < today + days(1)", true},
		{"start >= today - hours(1) && start < today", false},
		{"status != 'completed'", true},
		{"status == 'completed'", false},
		{"owner == device.user", true},
		{"owner == device.user && status != 'completed' && start >= today", true},
		{"n > 2", true},
		{"n > 2.5", true},
		{`record["due-date"] > today + days(20)`, true},
		{"id == 'r1'", true},
		{"missing == 'x'", false},
		{"missing == null", true},
		{"start >= missing", false}, // fails on the record: not selected
		{"has(record.status)", true},
	} {
		x, err := Compile(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got := x.Match("r1", rec, env); got != c.want {
			t.Errorf("%s = %v, want %v", c.expr, got, c.want)
		}
	}
	// Tomorrow, the same booking no longer starts today or later.
	x, _ := Compile("start >= today")
	if x.Match("r1", rec, Env{NowMs: noon + 24*3600*1000}) {
		t.Error("start >= today still selects the booking a day later")
	}
	if !x.UsesTime() || len(x.Fields()) != 1 || x.Fields()[0] != "start" {
		t.Errorf("UsesTime %v, Fields %v", x.UsesTime(), x.Fields())
	}
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{"", "empty"},
		{"start >=", "1:9"},
		{"status == 'a' &&\n  (owner ==", "2:"},
		{"status + 1", "want a bool"},
		{"days('x') > now", "days"},
		{"device.user == 3", "1:13"},
	} {
		_, err := Compile(c.expr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Compile(%q) = %v, want an error containing %q", c.expr, err, c.want)
		}
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"start >= today", "a == 'x' || b != 2", `record["x"] in [1, 2]`, "days(3) > hours(2)"} {
		f.Add(s)
	}
	rec := &crdt.Record{}
	f.Fuzz(func(t *testing.T, src string) {
		x, err := Compile(src)
		if err != nil {
			return
		}
		x.Match("id", rec, Env{NowMs: noon})
	})
}

// BenchmarkMatch: one evaluation of a technician's booking filter.
func BenchmarkMatch(b *testing.B) {
	var rec crdt.Record
	w := &crdt.Write{Table: "t", ID: "r", Origin: 1, Seq: 1, TS: hlc.New(1, 0)}
	for _, kv := range [][2]any{{"owner", "alice"}, {"start", "2026-11-30T09:00:00Z"}, {"status", "open"}, {"title", "pump"}} {
		w.Fields = append(w.Fields, crdt.FieldValue{Name: kv[0].(string), Value: crdt.MustValue(kv[1])})
	}
	rec.Apply(w, nil)
	x, err := Compile("owner == device.user && status != 'completed' && start >= today")
	if err != nil {
		b.Fatal(err)
	}
	env := Env{NowMs: noon, Device: map[string]string{"user": "alice"}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if !x.Match("r", &rec, env) {
			b.Fatal("no match")
		}
	}
}
