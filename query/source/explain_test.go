package source

import (
	"fmt"
	"testing"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/query"
	"github.com/replicad/replicad/query/internal/modeltest"
	"github.com/replicad/replicad/store"
)

// TestExplain: the plans the engine picks and how many records each
// examines: an equality on an index reads little more than its page, an
// order by an indexed field after an equality reads the index in order,
// and a query no index serves scans every record.
func TestExplain(t *testing.T) {
	r := modeltest.Open(t, "/explain", t0)
	for i := 0; i < 1000; i++ {
		fs := []crdt.FieldValue{
			{Name: "owner", Value: crdt.MustValue(fmt.Sprintf("o%d", i%20))},
			{Name: "prio", Value: crdt.MustValue(int64(i % 10))},
			{Name: "status", Value: crdt.MustValue([]string{"open", "done", "open", "parked"}[i%4])},
		}
		if _, err := r.S.Write(r.Clock, "t", fmt.Sprintf("%04d", i), fs, false); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []store.IndexDef{
		{Name: "by_owner", Table: "t", Fields: []string{"owner"}},
		{Name: "by_status_prio", Table: "t", Fields: []string{"status", "prio"}},
	} {
		if err := r.S.DeclareIndex(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.S.WaitIndexes(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q           query.Query
		index       string // "" a scan
		records     int
		maxExamined int
		count       int
	}{
		{q: query.Query{Where: "owner == 'o3'", Limit: 10}, index: "by_owner", records: 10, maxExamined: 11},
		{q: query.Query{Where: "owner == 'o3' && prio == 3", Limit: 10}, index: "by_owner", records: 10, maxExamined: 50},
		// The highest prio of open records (8) has 100 of them: a group read whole, as ties go by ascending id.
		{q: query.Query{Where: "status == 'open'", Order: []string{"-prio"}, Limit: 5}, index: "by_status_prio", records: 5, maxExamined: 100},
		{q: query.Query{Where: "status == 'open' && prio >= 8", Limit: 1000}, index: "by_status_prio", records: 100, maxExamined: 100},
		{q: query.Query{Order: []string{"status", "prio"}, Limit: 3}, index: "by_status_prio", records: 3, maxExamined: 100},
		{q: query.Query{Where: "prio > 7", Limit: 5}, records: 5, maxExamined: 1000},
		// Read in owner order until the page is full (prio > 7 matches one in five).
		{q: query.Query{Where: "prio > 7", Order: []string{"owner"}, Limit: 5}, index: "by_owner", records: 5, maxExamined: 600},
		{q: query.Query{Where: "status == 'open'", Count: true}, index: "by_status_prio", maxExamined: 500, count: 500},
	} {
		c.q.Table, c.q.Explain = "t", true
		res, err := Run(r.S, c.q, env)
		if err != nil {
			t.Fatalf("%+v: %v", c.q, err)
		}
		got := ""
		if res.Plan.Index != nil {
			got = *res.Plan.Index
		}
		if got != c.index || len(res.Records) != c.records || res.Plan.Examined > c.maxExamined || res.Count != c.count {
			t.Errorf("%q order %v: plan %q, %d records, examined %d, count %d; want plan %q, %d records, examined at most %d, count %d",
				c.q.Where, c.q.Order, got, len(res.Records), res.Plan.Examined, res.Count, c.index, c.records, c.maxExamined, c.count)
		}
	}
	// A comparison with a device attribute fixes the index field as a
	// literal does (a view's owner == device.user reads its page only).
	denv := env
	denv.Device = map[string]string{"user": "o3", "state": "open"}
	for _, c := range []struct {
		where, index         string
		records, maxExamined int
	}{
		{"owner == device.user", "by_owner", 10, 11},
		{"device.state == status && prio >= 8", "by_status_prio", 10, 100}, // the range read whole: ties go by id
		{"owner == device.nobody || prio == 1", "", 10, 1000},
	} {
		res, err := Run(r.S, query.Query{Table: "t", Where: c.where, Limit: 10, Explain: true}, denv)
		if err != nil {
			t.Fatalf("%s: %v", c.where, err)
		}
		got := ""
		if res.Plan.Index != nil {
			got = *res.Plan.Index
		}
		if got != c.index || len(res.Records) != c.records || res.Plan.Examined > c.maxExamined {
			t.Errorf("%s with device %v: plan %q, %d records, examined %d; want %q, %d, at most %d",
				c.where, denv.Device, got, len(res.Records), res.Plan.Examined, c.index, c.records, c.maxExamined)
		}
		for _, rec := range res.Records {
			if o, _ := rec.Fields["owner"].Decode(); c.index == "by_owner" && o != "o3" {
				t.Errorf("%s: record %s of owner %v", c.where, rec.ID, o)
			}
		}
	}

	// An index declared but not built yet is not used.
	if err := r.S.DropIndex("by_owner"); err != nil {
		t.Fatal(err)
	}
	res, err := Run(r.S, query.Query{Table: "t", Where: "owner == 'o3'", Limit: 10, Explain: true}, env)
	if err != nil || res.Plan.Index != nil || res.Plan.Examined < 60 {
		t.Fatalf("after the drop: %v, plan %+v", err, res.Plan)
	}
}
