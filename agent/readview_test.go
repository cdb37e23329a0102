package agent

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// TestReadViewSameAsSync: what the hub's API shows a restricted device of
// a record is what the device holds of it after a sync, field for field
// (read permissions narrow the record once, the same way, for both), and
// the API shows it no record sync does not send it.
func TestReadViewSameAsSync(t *testing.T) {
	c := newReadCluster(t)
	c.hub.write(t, "jobs", "j1", "status", "open")
	c.hub.write(t, "jobs", "j1", "notes", "secret")
	c.hub.cur.RLock()
	for id, n := range map[string]hlc.NodeID{"e-tech": techID, "e-lead": leadID} {
		e := &store.SyncError{Table: "jobs", Record: "j1", Fields: []string{"notes"}, Losing: map[string][]byte{"notes": []byte("x")},
			Policy: "permission", Kind: "rejected", Nodes: []uint64{uint64(n)}, Detail: "test"}
		if err := c.hub.cur.Get().n.PublishSyncError(id, e); err != nil {
			t.Fatal(err)
		}
	}
	c.hub.cur.RUnlock()
	if f := c.tech.syncT(t); len(f) > 0 {
		t.Fatal(f)
	}
	api := func(table, id string) (int, api.Record) {
		req := httptest.NewRequest(http.MethodGet, "/v1/tables/"+table+"/records/"+id, nil)
		req.Host = c.hub.APIAddr()
		req.Header.Set(nodeHeader, techID.String())
		rec := httptest.NewRecorder()
		c.hub.http.Handler.ServeHTTP(rec, req)
		var v api.Record
		if rec.Code == http.StatusOK {
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatal(err)
			}
		}
		return rec.Code, v
	}
	held := func(table, id string) (*crdt.Record, bool) {
		c.tech.cur.RLock()
		defer c.tech.cur.RUnlock()
		rec, err := c.tech.cur.Get().store.Get(table, id)
		return rec, err == nil && rec.Exists()
	}
	for _, k := range [][2]string{{"jobs", "j1"}, {errorTable, "e-tech"}, {errorTable, "e-lead"}} {
		code, view := api(k[0], k[1])
		rec, ok := held(k[0], k[1])
		if !ok {
			if code != http.StatusNotFound {
				t.Errorf("%s/%s: the device does not hold it after a sync, the API shows it (%d): %v", k[0], k[1], code, view.Fields)
			}
			continue
		}
		if code != http.StatusOK {
			t.Fatalf("%s/%s: the device holds it, the API answers %d", k[0], k[1], code)
		}
		c.tech.cur.RLock()
		local := c.tech.cur.Get().n.View(k[0], k[1], rec)
		c.tech.cur.RUnlock()
		if !reflect.DeepEqual(local.Fields, view.Fields) || len(local.Conflicts) != len(view.Conflicts) {
			t.Errorf("%s/%s: the API shows %v (conflicts %v), the device holds %v (%v)", k[0], k[1], view.Fields, view.Conflicts, local.Fields, local.Conflicts)
		}
	}
	if _, ok := held(errorTable, "e-lead"); ok {
		t.Error("the device holds a sync error naming another node")
	}
	if code, v := api("jobs", "j1"); code != http.StatusOK || len(v.Fields) != 1 || v.Fields["status"] == nil {
		t.Errorf("the API shows jobs/j1 as %d %v, want status only", code, v.Fields)
	}
}
