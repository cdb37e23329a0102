package httpapi

import (
	"context"
	"net/http"

	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replica"
)

// Current is the current replica as every route host reaches it: the
// agent's slot (internal/replicaslot), which a reset or a store recovery
// replaces. With runs fn with the replica held (no reset or recovery
// replaces it meanwhile); ErrResetting or ErrRecovering while there is
// none.
type Current interface {
	With(fn func(Held) (any, error)) (any, error)
}

// Held is the current replica, held, as the routes see it: the
// embeddable replica, its node (the write pipeline) and the figures the
// status reports beyond its store.
type Held struct {
	*replica.Replica
	Node    *node.Node
	Figures func() StatusFigures
}

// Host is the core routes' Core and the query routes' QueryCore over the
// current replica: its node, its live queries, views and device
// attributes, with the system tables' guard and the read rules of the
// restricted node a request reads for.
type Host struct {
	Cur Current
	// Guard refuses an API write to a table (a system table's: 403).
	Guard func(table string) error
	// ReaderOf returns the restricted node r reads for (nil:
	// unrestricted); one that is a FieldReader tells the fields it may
	// read.
	ReaderOf func(r *http.Request) Reader
}

// With runs fn on the current replica's node (Core).
func (h Host) With(fn func(*node.Node) (any, error)) (any, error) {
	return h.Cur.With(func(r Held) (any, error) { return fn(r.Node) })
}

// GuardWrite refuses an API write to table (Core).
func (h Host) GuardWrite(table string) error { return h.Guard(table) }

// Reader is the restricted node r reads for (Core).
func (h Host) Reader(r *http.Request) Reader { return h.ReaderOf(r) }

// withReplica runs fn on the current replica.
func (h Host) withReplica(fn func(*replica.Replica) error) error {
	_, err := h.Cur.With(func(r Held) (any, error) { return nil, fn(r.Replica) })
	return err
}

// WatchFrom keeps q live on the current replica; a reset or a store
// recovery closes the replica, which ends the watch (QueryCore).
func (h Host) WatchFrom(ctx context.Context, q replica.Query, lastEventID string) (<-chan replica.Event, error) {
	var ch <-chan replica.Event
	err := h.withReplica(func(r *replica.Replica) (err error) {
		ch, err = r.WatchFrom(ctx, q, lastEventID)
		return err
	})
	return ch, err
}

// DeviceAttrs returns the attributes device.* reads in a query: the
// replica's (QueryCore).
func (h Host) DeviceAttrs() map[string]string {
	var out map[string]string
	h.withReplica(func(r *replica.Replica) error { out = r.DeviceAttrs(); return nil })
	return out
}

// Views returns the views the hubs declared (none while the replica is
// being reset; QueryCore).
func (h Host) Views() []replica.View {
	var out []replica.View
	h.withReplica(func(r *replica.Replica) error { out = r.Views(); return nil })
	return out
}

// CurrentFeed is the change feed's source (Feed): the current replica's
// store and a notifier that outlives resets.
type CurrentFeed struct {
	Cur    Current
	Notify *node.Feed
}

// Read returns up to limit changes after cursor after of the current
// replica's store.
func (f CurrentFeed) Read(after uint64, limit int) ([]api.Change, uint64, error) {
	type page struct {
		cs   []api.Change
		head uint64
	}
	v, err := f.Cur.With(func(r Held) (any, error) {
		cs, head, err := StoreChanges(r.Node.Store(), after, limit)
		return page{cs, head}, err
	})
	if err != nil {
		return nil, 0, err
	}
	p := v.(page)
	return p.cs, p.head, nil
}

// Wait returns a channel closed at the next change.
func (f CurrentFeed) Wait() <-chan struct{} { return f.Notify.Wait() }

// Closed reports whether the feed was closed (shutdown).
func (f CurrentFeed) Closed() bool { return f.Notify.Closed() }
