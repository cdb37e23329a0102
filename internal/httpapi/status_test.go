package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

type figures struct {
	pending   uint64
	pendingOK bool
	gossip    bool
	hubAPI    string
}

func (f figures) Online() bool                    { return true }
func (f figures) SyncAddr() string                { return "127.0.0.1:1" }
func (f figures) GossipAddr() string              { return "127.0.0.1:2" }
func (f figures) GossipMembers() (int, bool)      { return 3, f.gossip }
func (f figures) Peers() []api.Peer               { return []api.Peer{} }
func (f figures) TableSync(string) time.Time      { return time.Unix(5, 0) }
func (f figures) PendingOutbound() (uint64, bool) { return f.pending, f.pendingOK }
func (f figures) Counts() (int, int, int, int)    { return 1, 2, 3, 4 }
func (f figures) Drafts() int                     { return 6 }
func (f figures) HubAPI() string                  { return f.hubAPI }
func (f figures) Sync() api.SyncState             { return api.SyncState{Started: ""} }

// statusCur is a current replica of node n with figures f.
type statusCur struct {
	n *node.Node
	f figures
}

func (h statusCur) With(fn func(Held) (any, error)) (any, error) {
	return fn(Held{Node: h.n, Figures: func() StatusFigures { return h.f }})
}

// TestStatusRoute: GET /v1/status decodes strictly into api.Status, lists
// the user tables only, and leaves out the figures that mean nothing here
// (pending_outbound where not meaningful, gossip_members without gossip,
// hub_api when unknown).
func TestStatusRoute(t *testing.T) {
	st, err := store.Open(store.Options{Dir: "s", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := node.New(node.Options{Store: st, Clock: hlc.NewClock(nil, time.Minute), Policies: map[string]string{"jobs": "manual"}})
	for _, table := range []string{"jobs", "_sys"} {
		if _, err := n.Write(table, "a", []crdt.FieldValue{{Name: "f", Value: crdt.MustValue(`"x"`)}}, false, nil); err != nil {
			t.Fatal(err)
		}
	}
	get := func(f figures) (map[string]json.RawMessage, api.Status) {
		rt := NewRouter(nil)
		rt.Handle("GET /v1/status", StatusRoute{Cur: statusCur{n, f}, APIAddr: func() string { return "127.0.0.1:3" }, Role: "device", ClusterID: "c", Started: time.Now(),
			System: func(t string) bool { return t == "_sys" }}.Get)
		w := httptest.NewRecorder()
		rt.Handler(1<<20).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		var s api.Status
		dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("%v: %s", err, w.Body)
		}
		return raw, s
	}
	raw, s := get(figures{})
	for _, k := range []string{"pending_outbound", "pending_outbound_note", "gossip_members", "hub_api"} {
		if _, ok := raw[k]; ok {
			t.Errorf("%s present: %s", k, raw[k])
		}
	}
	if string(raw["hubs"]) != "[]" {
		t.Errorf("hubs %s, want []", raw["hubs"])
	}
	want := []api.TableStatus{{Table: "jobs", LastSync: "1970-01-01T00:00:05Z", Policy: "manual"}}
	if len(s.Tables) != 1 || s.Tables[0] != want[0] {
		t.Errorf("tables %+v, want %+v", s.Tables, want)
	}
	if s.Node != n.ID().String() || s.Conflicts != 1 || s.SyncErrors != 2 || s.Overridden != 3 || s.Parked != 4 || s.Drafts != 6 || s.APIAddr != "127.0.0.1:3" || s.FeedHead == "" {
		t.Errorf("status %+v", s)
	}
	_, s = get(figures{pending: 7, pendingOK: true, gossip: true, hubAPI: "http://hub"})
	if s.PendingOutbound != 7 || s.PendingNote == "" || s.GossipMembers != 3 || s.HubAPI != "http://hub" {
		t.Errorf("status %+v", s)
	}
}
