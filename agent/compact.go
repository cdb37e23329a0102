package agent

import (
	"github.com/replicad/replicad/store"
)

// storeOptions are the store's options for this agent's role. A hub
// keeps Pebble's defaults for its write-ahead logs (preallocated to 110%
// of a 32 MiB memtable, up to three obsolete ones kept for reuse: synced
// writes from a fleet reuse written blocks); a device takes an 8 MiB
// memtable and logs that take only the blocks they are written, deleted
// once flushed (ARCHITECTURE.md, "Disk").
func (a *Agent) storeOptions() store.Options {
	cfg := a.cfg
	o := store.Options{Dir: a.storeDir(), Logger: a.log.Named("pebble"), ClusterID: cfg.ClusterID, NodeID: a.sec.NewNodeID(), EncryptionKey: a.atRestKey,
		MaxParkedPerOrigin: cfg.Security.Guard.WithDefaults().MaxParked}
	if cfg.Role == "hub" {
		o.WALPreallocate, o.WALRecycling = true, true
	} else {
		o.MemTableSize = store.DeviceMemTableSize
	}
	return o
}
