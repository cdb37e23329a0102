package replication

import (
	"fmt"
	"strings"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
)

// What a session needs of a store beyond Store: one interface per
// capability, found once per Local (Local.Capabilities). *store.Store has
// them all; a store without one is refused by the sessions whose scopes
// need it (Capabilities.Need), and does without the others (the lab's
// replicas hold full scope and no log).

// RecordScanner lists a table's records (hidden ones skipped) and the
// tables held: reconciling and serving filtered scopes, the records
// related tables select, read-permission changes.
type RecordScanner interface {
	Scan(table, after string, limit int) ([]store.RecordEntry, string, error)
	Tables() ([]string, error)
}

// HiddenRecords tells the records hidden out of this replica's scope
// (Batch.SetHidden, Batch.Purge keep them): any filtered scope.
type HiddenRecords interface {
	HiddenSkipped(table, id string) (crdt.VV, bool)
	ListHidden(limit int) [][2]string
}

// TableLog streams an origin's log without decoding other tables' writes
// and knows which tables each origin wrote: a peer whose scope lists
// tables is served without reading the others (speed only).
type TableLog interface {
	StreamTables(origin hlc.NodeID, after uint64, want func(table []byte) bool, fn func(seq uint64, w *crdt.Write) error) error
	OriginMayWrite(origin hlc.NodeID, want func(table []byte) bool) bool
}

// HeldReader returns one origin's holdings without copying every
// origin's (speed only).
type HeldReader interface {
	HeldOf(origin hlc.NodeID) store.Held
}

// FeedReader returns the local change feed's head: the scope's
// evaluation is recomputed when it moves.
type FeedReader interface {
	FeedHead() uint64
}

// EmptyClaims forgets empty claims that an origin contradicts (the
// origin's authority over its own numbers; forged claims healed).
type EmptyClaims interface {
	DropEmpties(origin hlc.NodeID, within *store.Held) (store.Held, error)
	DropAllEmpties() (map[hlc.NodeID]store.Held, error)
}

// VoidKeeper keeps the book of false empty claims across restarts.
type VoidKeeper interface {
	SetVoids([]byte) error
	Voids() ([]byte, error)
}

// Capabilities are a store's optional parts, each nil when it lacks it.
type Capabilities struct {
	Scan    RecordScanner
	Hidden  HiddenRecords
	Log     TableLog
	Held    HeldReader
	Feed    FeedReader
	Empties EmptyClaims
	Voids   VoidKeeper
	// State: record states in place of the log (statexfer.go); without
	// it the store neither takes nor sends them.
	State StateStore
}

// CapabilitiesOf finds st's capabilities.
func CapabilitiesOf(st Store) Capabilities {
	var c Capabilities
	c.Scan, _ = st.(RecordScanner)
	c.Hidden, _ = st.(HiddenRecords)
	c.Log, _ = st.(TableLog)
	c.Held, _ = st.(HeldReader)
	c.Feed, _ = st.(FeedReader)
	c.Empties, _ = st.(EmptyClaims)
	c.Voids, _ = st.(VoidKeeper)
	c.State, _ = st.(StateStore)
	return c
}

// Need returns an error naming what a store lacks to hold own and serve
// a peer of scope peer (nil: nothing): a filtered or projected scope of
// its own needs Scan and Hidden (records leave and enter it; it is
// reconciled by listings); serving a filtered scope needs Scan (related
// records, listings).
func (c Capabilities) Need(own, peer Scope) error {
	var missing []string
	if len(own.FilteredTables()) > 0 || own.projects() {
		if c.Scan == nil {
			missing = append(missing, "Scan and Tables (this replica's scope is filtered or projected)")
		}
		if c.Hidden == nil {
			missing = append(missing, "HiddenSkipped and ListHidden (this replica's scope is filtered or projected)")
		}
	}
	if len(peer.FilteredTables()) > 0 && c.Scan == nil {
		missing = append(missing, "Scan and Tables (the peer's scope is filtered)")
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("replication: the store lacks %s", strings.Join(missing, "; "))
}

// projects reports whether the scope holds some table projected to some
// fields.
func (s Scope) projects() bool {
	for i := range s.Tables {
		if s.Tables[i].Projected {
			return true
		}
	}
	return false
}

// Capabilities returns the store's capabilities. NewEngine and NewSession
// find them once, before any goroutine shares the Local.
func (l *Local) Capabilities() *Capabilities {
	if l.caps == nil {
		c := CapabilitiesOf(l.Store)
		l.caps = &c
	}
	return l.caps
}
