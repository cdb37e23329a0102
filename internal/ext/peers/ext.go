package peers

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// Ext is the peer table as one of the agent's extensions: loaded at
// Configure, told of every session's start (after the replica's own
// observer) and end (before the observer set before it), written to the
// store every FlushEvery and once more at Stop.
type Ext struct {
	*Book // nil until Configure
	st    *store.Store
	log   hclog.Logger
}

// NewExt returns the peer table of the replica whose store is st.
func NewExt(st *store.Store, log hclog.Logger) *Ext { return &Ext{st: st, log: log} }

// Name is "peers".
func (e *Ext) Name() string { return "peers" }

// Configure loads the table and observes the sessions.
func (e *Ext) Configure(_ extapi.Parts, ecfg *replication.Config) (err error) {
	if e.Book, err = New(e.st, e.log, nil); err != nil {
		return fmt.Errorf("reading the peer table: %w", err)
	}
	observe := ecfg.Local.OnPeerHave
	ecfg.Local.OnPeerHave = func(p replication.Peer, have map[hlc.NodeID]store.Held) {
		observe(p, have)
		e.Started(p, have)
	}
	ended := ecfg.OnSession
	ecfg.OnSession = func(in replication.SessionInfo) {
		e.Ended(in)
		e.LogSession(in)
		if ended != nil {
			ended(in)
		}
	}
	return nil
}

// Start writes the table to the store every FlushEvery until ctx is done.
func (e *Ext) Start(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() { defer wg.Done(); e.FlushLoop(ctx.Done()) }()
}

// Stop writes the table to the store.
func (e *Ext) Stop() {
	if e.Book != nil {
		if err := e.Flush(); err != nil {
			e.log.Warn("writing the peer table", "error", err)
		}
	}
}

// IsHub reports whether the table knows n as a hub (false before
// Configure).
func (e *Ext) IsHub(n hlc.NodeID) bool { return e != nil && e.Book != nil && e.Book.IsHub(n) }
