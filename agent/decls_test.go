package agent

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// statusIndexes is GET /v1/status's indexes.
func statusIndexes(t *testing.T, a *Agent) []api.IndexStatus {
	t.Helper()
	resp, err := http.Get("http://" + a.APIAddr() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st api.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Indexes
}

func (a *Agent) storeIndexes() []store.IndexInfo {
	a.cur.RLock()
	defer a.cur.RUnlock()
	return a.cur.Get().store.Indexes()
}

// TestDeclarationsFromHubConfig: a hub publishes the indexes and views of
// its configuration; a device builds the index (GET /v1/status shows
// it) and holds the view; a device's forged declarations are refused by
// the hub, written back over, and the device drops what it built of them.
func TestDeclarationsFromHubConfig(t *testing.T) {
	hcfg := testConfig(t, "hub")
	hcfg.Indexes = []config.IndexConfig{{Name: "owner_start", Table: "bookings", Fields: []string{"owner", "start"}}}
	hcfg.Views = []config.ViewConfig{{Name: "mine", Table: "bookings", Where: "owner == device.user", Order: []string{"start"}}}
	hub, hubLogs := runAgent(t, hcfg)
	dcfg := testConfig(t, "device")
	dcfg.Hubs = []string{hub.syncAddr()}
	dev, devLogs := runAgent(t, dcfg)
	dev.write(t, "bookings", "b1", "owner", "ann")
	if f := dev.syncT(t); len(f) > 0 {
		t.Fatalf("sync: %v", f)
	}
	want := api.IndexStatus{Name: "owner_start", Table: "bookings", Fields: []string{"owner", "start"}, Built: true, Indexed: 1}
	eventually(t, "the device builds the hub's index", func() bool {
		ix := statusIndexes(t, dev)
		return len(ix) == 1 && reflect.DeepEqual(ix[0], want)
	})
	waitLog(t, devLogs, "index built")
	if v, _ := dev.value(t, viewTable, "mine", "where"); v != "owner == device.user" {
		t.Fatalf("the device's view: %q", v)
	}

	// The device forges declarations.
	dev.cur.RLock()
	for _, f := range []struct {
		table, id string
		fields    map[string]any
	}{
		{indexTable, "forged", map[string]any{"table": "bookings", "fields": []any{"owner"}}},
		{indexTable, "owner_start", map[string]any{"fields": []any{"start"}}},
		{viewTable, "forged_view", map[string]any{"table": "bookings", "where": "", "order": []any{}}},
	} {
		var fv []crdt.FieldValue
		for name, v := range f.fields {
			fv = append(fv, crdt.FieldValue{Name: name, Value: crdt.MustValue(v)})
		}
		if _, err := dev.cur.Get().localWrite(f.table, f.id, fv, false); err != nil {
			t.Fatal(err)
		}
	}
	dev.cur.RUnlock()
	if f := dev.syncT(t); len(f) > 0 {
		t.Fatalf("sync: %v", f)
	}
	waitLog(t, hubLogs, "system-table write refused")
	eventually(t, "the hub refuses the forged declarations", func() bool {
		return len(hub.syncErrors(t, node.SystemPolicy)) == 3
	})
	if errs := strings.Join(hub.syncErrors(t, node.SystemPolicy), "\n"); !strings.Contains(errs, "the secondary indexes the hubs declare") ||
		!strings.Contains(errs, "the views the hubs declare") {
		t.Errorf("hub sync errors: %q", errs)
	}
	hub.cur.RLock()
	decl, err := hub.cur.Get().n.DeclaredIndexes()
	views, _ := hub.cur.Get().n.DeclaredViews()
	hub.cur.RUnlock()
	if err != nil || len(decl) != 1 || !reflect.DeepEqual(decl[0].Fields, []string{"owner", "start"}) || len(views) != 1 {
		t.Fatalf("hub's declarations after the forged ones: %+v %+v %v", decl, views, err)
	}
	eventually(t, "the device takes the hub's declarations back", func() bool {
		if f := dev.syncT(t); len(f) > 0 {
			t.Fatalf("sync: %v", f)
		}
		xs := dev.storeIndexes()
		_, forgedView := dev.value(t, viewTable, "forged_view", "table")
		return len(xs) == 1 && xs[0].Name == "owner_start" && reflect.DeepEqual(xs[0].Fields, []string{"owner", "start"}) && !forgedView
	})
	for _, x := range hub.storeIndexes() {
		if x.Name != "owner_start" || !reflect.DeepEqual(x.Fields, []string{"owner", "start"}) {
			t.Errorf("the hub keeps index %+v", x)
		}
	}
}

// TestIndexesOffWhenEncrypted: a store encrypted at rest keeps no index;
// the log says so once and the status names why.
func TestIndexesOffWhenEncrypted(t *testing.T) {
	cfg := testConfig(t, "hub")
	cfg.AtRest.KeyFile = writeKeyFile(t, bytes.Repeat([]byte{7}, store.KeySize), 0o600)
	cfg.Indexes = []config.IndexConfig{{Name: "by_owner", Table: "jobs", Fields: []string{"owner"}}}
	a, logs := runAgent(t, cfg)
	waitLog(t, logs, "indexes: off, the store is encrypted at rest")
	ix := statusIndexes(t, a)
	if len(ix) != 1 || ix[0].Name != "by_owner" || ix[0].Built || ix[0].Error != node.IndexesOff {
		t.Fatalf("status indexes: %+v", ix)
	}
	if xs := a.storeIndexes(); len(xs) != 0 {
		t.Fatalf("the encrypted store keeps %+v", xs)
	}
}
