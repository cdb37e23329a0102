package api

// Status is the answer of GET /v1/status.
type Status struct {
	Node          string   `json:"node"`
	Role          string   `json:"role"`
	ClusterID     string   `json:"cluster_id"`
	Online        bool     `json:"online"`
	APIAddr       string   `json:"api_addr"`
	SyncAddr      string   `json:"sync_addr"`
	GossipAddr    string   `json:"gossip_addr"`
	GossipMembers int      `json:"gossip_members,omitempty"` // alive members, when gossip runs
	Hubs          []string `json:"hubs"`
	UptimeS       int64    `json:"uptime_s"`
	// Peers: every node that synced with this one, per direction.
	Peers  []Peer        `json:"peers"`
	Tables []TableStatus `json:"tables"`
	// PendingOutbound: local writes not yet known to be held by a hub;
	// absent (0, PendingNote "") on a hub that syncs with no other hub.
	PendingOutbound uint64            `json:"pending_outbound"`
	PendingNote     string            `json:"pending_outbound_note"`
	Conflicts       int               `json:"conflicts"`
	SyncErrors      int               `json:"sync_errors"` // rejected changes not retried
	Overridden      int               `json:"overridden"`  // values lww or client-wins overrode, not retried
	Parked          int               `json:"parked"`
	Policies        map[string]string `json:"policies"`
	PolicyNote      string            `json:"policy_note"`
	FeedHead        string            `json:"feed_head"`
	Drafts          int               `json:"drafts"`            // drafts kept on this node (never synced)
	HubAPI          string            `json:"hub_api,omitempty"` // where online reads go, if known
	EncryptedAtRest bool              `json:"encrypted_at_rest"` // the store's values are encrypted at rest
	// Insecure: sync listens off loopback without mutual TLS.
	Insecure bool      `json:"insecure"`
	Sync     SyncState `json:"sync"`
	Disk     DiskUsage `json:"disk"` // the store's disk use (allocated bytes)
	// Indexes: the secondary indexes in force here and their builds.
	Indexes []IndexStatus `json:"indexes,omitempty"`
}

// TableStatus is a table's sync state.
type TableStatus struct {
	Table    string `json:"table"`
	LastSync string `json:"last_sync"` // the last session that exchanged it; "" never
	Policy   string `json:"policy"`
}

// SyncState is the progress of a sync asked for through the API.
type SyncState struct {
	Running  bool   `json:"running"`
	Started  string `json:"started"`
	Progress Stats  `json:"progress"`
}

// DiskUsage is a store's data directory on disk (allocated bytes), by
// kind of file. In the status, Error replaces the counts when the
// directory could not be read.
type DiskUsage struct {
	Total int64  `json:"total_bytes"`
	SST   int64  `json:"sst_bytes"`   // sstables (*.sst, blob files)
	WAL   int64  `json:"wal_bytes"`   // write-ahead logs (*.log), recycled ones included
	Other int64  `json:"other_bytes"` // MANIFEST, OPTIONS, markers, the lock
	Error string `json:"error,omitempty"`
}

// CompactResult is the answer of POST /v1/compact: the store's disk use
// before and after a full online compaction, and how long it took.
type CompactResult struct {
	Before     DiskUsage `json:"before"`
	After      DiskUsage `json:"after"`
	FreedBytes int64     `json:"freed_bytes"`
	DurationMs int64     `json:"duration_ms"`
}

// ResetRequest is the body of POST /v1/reset; Confirm must be true.
type ResetRequest struct {
	Confirm bool `json:"confirm"`
}

// ResetResult is the answer of POST /v1/reset: the fresh replica's node
// id, where the old store was moved, and the sync round that refilled it.
type ResetResult struct {
	Node    string  `json:"node"`
	MovedTo string  `json:"moved_to"`
	Sync    Summary `json:"sync"`
}
