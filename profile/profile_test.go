package profile

import (
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

const sample = `
profile "technician" {
  table "bookings" {
    filter   = "owner == device.user && start >= today"
    interval = "5m"
    priority = 10
  }
  table "workorders" {
    related  = ["bookings.workorder"]
    interval = "1h"
  }
  table "customers" {
    related = ["workorders.customer"]
    interval = "24h"
  }
  table "products" {}
}

profile "dispatcher" {
  table "bookings" {}
}

group "field" {
  profile = "technician"
  devices = ["00000000000000a1"]
}

device "00000000000000a1" {
  attributes = { user = "alice" }
}

device "00000000000000b2" {
  profile = "dispatcher"
}

default_profile = "dispatcher"
`

func TestParseAndAssign(t *testing.T) {
	set, err := Parse("p.hcl", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Profiles(), ","); got != "dispatcher,technician" {
		t.Fatalf("profiles %s", got)
	}
	alice, ok := set.For(0xa1)
	if !ok || alice.Profile != "technician" {
		t.Fatalf("alice: %+v %v", alice, ok)
	}
	attrs := map[string]string{}
	for _, a := range alice.Device {
		attrs[a.Name] = a.Value
	}
	if attrs["user"] != "alice" || attrs["group"] != "field" || attrs["id"] != "00000000000000a1" {
		t.Fatalf("alice's attributes %v", attrs)
	}
	ivl := map[string]time.Duration{}
	for _, ts := range alice.Tables {
		ivl[ts.Table] = time.Duration(ts.IntervalMs) * time.Millisecond
	}
	// Work orders follow their bookings' 5 minutes, customers their work
	// orders' (and so the bookings'); products keep the default.
	if ivl["bookings"] != 5*time.Minute || ivl["workorders"] != 5*time.Minute || ivl["customers"] != 5*time.Minute || ivl["products"] != DefaultInterval {
		t.Fatalf("intervals %v", ivl)
	}
	if sc, ok := set.For(0xb2); !ok || sc.Profile != "dispatcher" {
		t.Fatalf("b2: %+v", sc)
	}
	if sc, ok := set.For(0xc3); !ok || sc.Profile != "dispatcher" {
		t.Fatalf("an unlisted device gets the default: %+v %v", sc, ok)
	}
	noDefault, err := Parse("p.hcl", []byte(strings.Replace(sample, `default_profile = "dispatcher"`, "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := noDefault.For(0xc3); ok {
		t.Fatal("a device with no profile and no default was assigned one")
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"profile \"p\" {\n  table \"t\" {\n    filter = \"status ==\"\n  }\n}", `p.hcl:3,14: profile "p", table "t": filter "status ==": at 1:10: Syntax error`},
		{"profile \"p\" {\n  table \"t\" { filter = \"status + 1\" }\n}", "want a bool"},
		{"profile \"p\" {\n  table \"t\" { filter = 3 }\n}", "filter must be a string"},
		{"profile \"p\" {\n  table \"t\" { interval = \"1m\" }\n}", "outside 5m0s to 24h"},
		{"profile \"p\" {\n  table \"t\" { interval = \"soon\" }\n}", `interval "soon"`},
		{"profile \"p\" {\n  table \"t\" { related = [\"u.x\"] }\n}", `related "u.x"`},
		{`profile "p" {
  table "a" { related = ["b.x"] }
  table "b" { related = ["a.y"] }
}`, "cycle"},
		{"profile \"p\" {\n  table \"bad name\" {}\n}", "invalid table name"},
		{`group "g" { profile = "nope" }`, `profile "nope" is not defined`},
		{`device "xyz" {}`, `device "xyz"`},
		{`profile "p" {}
device "00000000000000a1" { attributes = { id = "x" } }`, "reserved"},
		{`default_profile = "x"`, "default_profile"},
		{`profile "p" {`, "p.hcl:1"},
		{"profile \"p\" {\n  table \"t\" { colour = \"red\" }\n}", "colour"},
	} {
		_, err := Parse("p.hcl", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", c.src, err, c.want)
		}
	}
}

func TestPreview(t *testing.T) {
	st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/h", NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	clock := hlc.NewClock(func() int64 { return now.UnixMilli() }, time.Minute)
	put := func(table, id string, kv ...string) {
		var fs []crdt.FieldValue
		for i := 0; i < len(kv); i += 2 {
			fs = append(fs, crdt.FieldValue{Name: kv[i], Value: crdt.MustValue(kv[i+1])})
		}
		if _, err := st.Write(clock, table, id, fs, false); err != nil {
			t.Fatal(err)
		}
	}
	put("customers", "c1", "name", "Acme")
	put("customers", "c2", "name", "Other")
	put("workorders", "w1", "customer", "c1")
	put("workorders", "w2", "customer", "c2")
	put("bookings", "b1", "owner", "alice", "start", "2026-11-30", "workorder", "w1")
	put("bookings", "b2", "owner", "alice", "start", "2026-11-29", "workorder", "w2")
	put("bookings", "b3", "owner", "bob", "start", "2026-12-01", "workorder", "w2")
	put("products", "p1", "name", "pump")
	set, err := Parse("p.hcl", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := set.For(0xa1)
	counts, err := Preview(st, sc, now.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, c := range counts {
		got[c.Table] = c.Records
		if c.Records > 0 && c.Bytes <= 0 {
			t.Errorf("%s: %d records of %d bytes", c.Table, c.Records, c.Bytes)
		}
	}
	want := map[string]int{"bookings": 1, "workorders": 1, "customers": 1, "products": 1}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("preview %v, want %v", got, want)
		}
	}
}

// TestExampleFile: the sample shipped in examples/ loads.
func TestExampleFile(t *testing.T) {
	set, err := Load("../examples/profiles.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Profiles(), ","); got != "dispatcher,technician" {
		t.Fatalf("profiles %s", got)
	}
}
