package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replica"
	"github.com/replicad/replicad/store"
)

// slotOf is a Current holding node n, or none (err: the slot's error).
type slotOf struct {
	n   *node.Node
	err error
}

func (s slotOf) With(fn func(Held) (any, error)) (any, error) {
	if s.err != nil {
		return nil, s.err
	}
	return fn(Held{Node: s.n})
}

// TestCurrentHost: the core routes' Host and the change feed reach the
// current replica's node through Current, and answer Current's error
// while there is none (a reset: 503), reading nothing.
func TestCurrentHost(t *testing.T) {
	st, err := store.Open(store.Options{Dir: "s", FS: vfs.NewMem(), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := node.New(node.Options{Store: st, Clock: hlc.NewClock(nil, time.Minute)})
	if _, err := n.Write("jobs", "a", []crdt.FieldValue{{Name: "f", Value: crdt.MustValue(`"x"`)}}, false, nil); err != nil {
		t.Fatal(err)
	}
	feed := node.NewFeed()
	guard := func(string) error { return nil }
	none := func(*http.Request) Reader { return nil }

	h := Host{Cur: slotOf{n: n}, Guard: guard, ReaderOf: none}
	got, err := h.With(func(m *node.Node) (any, error) { return m, nil })
	if err != nil || got != n {
		t.Fatalf("With: %v %v, want the node", got, err)
	}
	cs, head, err := CurrentFeed{Cur: h.Cur, Notify: feed}.Read(0, 10)
	if err != nil || len(cs) != 1 || cs[0].Table != "jobs" || head == 0 {
		t.Fatalf("the feed: %+v head %d %v", cs, head, err)
	}
	w := httptest.NewRecorder()
	rt := NewRouter(nil)
	rt.Handle("GET /v1/tables/{table}/records/{id}", Records{Core: h}.Get)
	rt.Handler(1<<20).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/tables/jobs/records/a", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET a record: %d %s", w.Code, w.Body)
	}

	h = Host{Cur: slotOf{err: ErrResetting}, Guard: guard, ReaderOf: none}
	called := false
	if _, err := h.With(func(*node.Node) (any, error) { called = true; return nil, nil }); called || !errors.Is(err, ErrResetting) {
		t.Fatalf("While resetting: called %v, %v", called, err)
	}
	if _, _, err := (CurrentFeed{Cur: h.Cur, Notify: feed}).Read(0, 10); !errors.Is(err, ErrResetting) {
		t.Fatalf("the feed while resetting: %v", err)
	}
	if _, err := h.WatchFrom(context.Background(), replica.Query{Table: "jobs"}, ""); !errors.Is(err, ErrResetting) {
		t.Fatalf("a watch while resetting: %v", err)
	}
	if h.Views() != nil || h.DeviceAttrs() != nil {
		t.Fatal("views or device attributes while resetting")
	}
	w = httptest.NewRecorder()
	rt = NewRouter(nil)
	rt.Handle("GET /v1/tables/{table}/records/{id}", Records{Core: h}.Get)
	rt.Handler(1<<20).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/tables/jobs/records/a", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET a record while resetting: %d %s", w.Code, w.Body)
	}
}
