package replication

import (
	"reflect"
	"strings"
	"testing"

	"github.com/replicad/replicad/crdt"
)

// TestStoreHasEveryCapability: *store.Store has every optional part a
// session may use; a method renamed on one side would otherwise leave a
// capability silently missing.
func TestStoreHasEveryCapability(t *testing.T) {
	s := newSim(t)
	n := s.add("a", "device", FullScope())
	c := CapabilitiesOf(n.st)
	v := reflect.ValueOf(c)
	for i := range v.NumField() {
		if v.Field(i).IsNil() {
			t.Errorf("*store.Store lacks the %s capability", v.Type().Field(i).Name)
		}
	}
}

// bareStore is a store with only the methods of Store: none of the
// optional capabilities.
type bareStore struct{ Store }

// TestStoreWithoutScanRefused: a hub whose store cannot list records
// refuses a device with a filtered scope at the handshake, saying what
// it lacks; it used to serve it and answer its listings empty (as if
// every record had left the scope). A full-scope device still syncs.
func TestStoreWithoutScanRefused(t *testing.T) {
	s := newSim(t)
	hub := s.add("hub", "hub", FullScope())
	s.write(hub, "t", "a", map[string]any{"f1": "x"}, false)
	hub.local.Store = bareStore{hub.st}
	filtered := s.add("filt", "device", Scope{Tables: []TableScope{{Table: "t", Where: []FieldMatch{{Field: "f1", Value: crdt.MustValue("x")}}}}})
	_, _, err := s.session(filtered, hub, 0)
	if err == nil || !strings.Contains(err.Error(), "lacks Scan") {
		t.Fatalf("got %v, want the session refused for a store that lacks Scan", err)
	}
	if _, err := filtered.st.Get("t", "a"); err == nil {
		t.Fatal("the refused session brought the record")
	}
	full := s.add("full", "device", FullScope())
	s.mustSync(full, hub)
	if _, err := full.st.Get("t", "a"); err != nil {
		t.Fatalf("a full device syncs with the bare store: %v", err)
	}
}

// TestNewEngineCheckedRefusesBareStore: NewEngineChecked refuses a store
// lacking what the engine's own filtered scope needs, naming it; a full
// scope needs nothing optional.
func TestNewEngineCheckedRefusesBareStore(t *testing.T) {
	s := newSim(t)
	n := s.add("a", "device", FullScope())
	local := Local{Node: n.st.NodeID(), Cluster: "sim", Role: "device", Clock: n.clock, Store: bareStore{n.st},
		Scope: Scope{Tables: []TableScope{{Table: "t", Projected: true, Fields: []string{"f1"}}}}}
	if e, err := NewEngineChecked(Config{Local: local}); err == nil || e != nil || !strings.Contains(err.Error(), "lacks Scan and Tables (this replica's scope is filtered or projected)") {
		t.Fatalf("got %v, %v; want the engine refused for a store that lacks Scan", e, err)
	}
	local.Scope, local.caps = FullScope(), nil
	e, err := NewEngineChecked(Config{Local: local})
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
}
