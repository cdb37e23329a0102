package node

import (
	"fmt"
	"sync"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// Options configure a Node.
type Options struct {
	Store *store.Store
	Clock *hlc.Clock
	// Policies are the table policies this node is configured with
	// (table → lww, client-wins, server-wins or manual); they win over
	// what a hub distributed (PolicyOf).
	Policies map[string]string
	// Hub: the node is a hub (nothing is pending on a hub: it decides as
	// it applies).
	Hub bool
}

// Notifier is told of a local write once it is committed (the
// replication engine: replication.Engine.Notify).
type Notifier interface {
	Notify(w *crdt.Write)
}

// LocalHook runs inside the batch of a local write, after the write is
// computed and before the batch commits.
type LocalHook func(b *store.Batch, res *store.WriteResult) error

// ApplyHook runs inside the batch that applies writes from other
// replicas (replication.Local.ApplyHook).
type ApplyHook func(b *store.Batch, ws []*crdt.Write, res *store.Result) error

type named[F any] struct {
	name string
	fn   F
}

// Node is the host of one replica. Register the hooks before the first
// write; they are not changed afterwards.
type Node struct {
	id       hlc.NodeID
	st       *store.Store
	clock    *hlc.Clock
	policies map[string]string
	sys      sysCache  // cached system-table records (policies.go)
	decls    declCache // index and view declarations (decls.go)
	hub      bool
	hubs     hubView // what the hubs hold (views.go)

	local    []named[LocalHook]
	apply    []named[ApplyHook]
	written  []named[func(*crdt.Write)]
	remote   []named[func(hlc.NodeID, []*crdt.Write, *store.Result)]
	assigned []named[func(replication.Scope)]

	mu     sync.Mutex
	engine Notifier
}

// New returns the host of the open store o.Store.
func New(o Options) *Node {
	return &Node{id: o.Store.NodeID(), st: o.Store, clock: o.Clock, policies: o.Policies, hub: o.Hub}
}

// ID returns the node id (the store's).
func (n *Node) ID() hlc.NodeID { return n.id }

// Store returns the store.
func (n *Node) Store() *store.Store { return n.st }

// Clock returns the hybrid logical clock local writes are stamped with.
func (n *Node) Clock() *hlc.Clock { return n.clock }

// SetEngine sets what the epilogue tells of each local write (the
// replication engine, built after the node).
func (n *Node) SetEngine(e Notifier) {
	n.mu.Lock()
	n.engine = e
	n.mu.Unlock()
}

// OnLocalWrite registers h to run inside the batch of every local write,
// after the conflict bases and the hooks registered before it.
func (n *Node) OnLocalWrite(name string, h LocalHook) {
	n.local = append(n.local, named[LocalHook]{name, h})
}

// OnApply registers h to run inside every batch of writes applied from
// other replicas, after the conflict bases and the hooks registered
// before it. The first error ends the batch.
func (n *Node) OnApply(name string, h ApplyHook) {
	n.apply = append(n.apply, named[ApplyHook]{name, h})
}

// OnWritten registers fn to be told of every committed local write, in
// registration order, before the engine.
func (n *Node) OnWritten(name string, fn func(w *crdt.Write)) {
	n.written = append(n.written, named[func(*crdt.Write)]{name, fn})
}

// Hooks returns the names of the registered hooks in the order they run:
// the in-batch steps of a local write, those of an applied batch, the
// observers of the epilogue and those of committed applied batches.
func (n *Node) Hooks() (local, apply, written, remote []string) {
	local = []string{"bases"}
	for _, h := range n.local {
		local = append(local, h.name)
	}
	apply = []string{"bases"}
	for _, h := range n.apply {
		apply = append(apply, h.name)
	}
	for _, h := range n.written {
		written = append(written, h.name)
	}
	for _, h := range n.remote {
		remote = append(remote, h.name)
	}
	return local, apply, append(written, "engine"), remote
}

// Write makes a local write of fields (or a delete) on table/id. Its batch
// also carries the in-batch steps and what also adds (nil: nothing);
// after the commit the epilogue runs.
func (n *Node) Write(table, id string, fields []crdt.FieldValue, del bool, also LocalHook) (*store.WriteResult, error) {
	res, err := n.st.WriteWith(n.clock, table, id, fields, del, n.inBatch(also))
	if err != nil {
		return nil, err
	}
	n.Wrote(res.Write)
	return res, nil
}

// WriteDecided makes the local write decide chooses from the record as it
// stands, under the store's write mutex (store.Store.WriteDecided), with
// the same in-batch steps and epilogue as Write. It returns nil, nil when
// decide chose to write nothing: then nothing ran, also neither.
func (n *Node) WriteDecided(table, id string, decide func(rec *crdt.Record) ([]crdt.FieldValue, bool, bool), also LocalHook) (*store.WriteResult, error) {
	res, err := n.st.WriteDecided(n.clock, table, id, decide, n.inBatch(also))
	if err != nil || res == nil {
		return nil, err
	}
	n.Wrote(res.Write)
	return res, nil
}

func (n *Node) inBatch(also LocalHook) func(b *store.Batch, res *store.WriteResult) error {
	return func(b *store.Batch, res *store.WriteResult) error {
		n.bases().track(b, res.Write, &res.Outcome)
		for _, h := range n.local {
			if err := h.fn(b, res); err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
		}
		if also != nil {
			if err := also(b, res); err != nil {
				return err
			}
		}
		return b.Err()
	}
}

// Wrote is the epilogue of every local write: the observers, then the
// engine, which pushes the write.
func (n *Node) Wrote(w *crdt.Write) {
	for _, o := range n.written {
		o.fn(w)
	}
	n.mu.Lock()
	e := n.engine
	n.mu.Unlock()
	if e != nil {
		e.Notify(w)
	}
}

// ApplyHook returns the hook of the batches that apply writes from other
// replicas (replication.Local.ApplyHook): the conflict bases, then the
// registered apply hooks in order.
func (n *Node) ApplyHook() func(b *store.Batch, ws []*crdt.Write, res *store.Result) error {
	return func(b *store.Batch, ws []*crdt.Write, res *store.Result) error {
		t := n.bases()
		for i, w := range ws {
			if res.Status[i] == store.Applied {
				t.track(b, w, &res.Outcomes[i])
			}
		}
		for _, h := range n.apply {
			if err := h.fn(b, ws, res); err != nil {
				return err
			}
		}
		return b.Err()
	}
}
