package client

import "github.com/replicad/replicad/api"

// The API's request and answer bodies are declared once, in package api,
// for the agent and this client alike; these names keep the client's
// API as it was.
type (
	Candidate           = api.Candidate
	Record              = api.Record
	Page                = api.Page
	Conflict            = api.Conflict
	SyncError           = api.SyncError
	Stats               = api.Stats
	Summary             = api.Summary
	Decisions           = api.Decisions
	Partner             = api.Partner
	Peer                = api.Peer
	TableStatus         = api.TableStatus
	SyncState           = api.SyncState
	Status              = api.Status
	Change              = api.Change
	Changes             = api.Changes
	DiskUsage           = api.DiskUsage
	CompactResult       = api.CompactResult
	ResetResult         = api.ResetResult
	Draft               = api.Draft
	DraftedRecord       = api.DraftedRecord
	DraftPage           = api.DraftPage
	OnlineRecord        = api.OnlineRecord
	OnlinePage          = api.OnlinePage
	Duplicate           = api.Duplicate
	DuplicateResolution = api.DuplicateResolution
	Workflow            = api.Workflow
	Delivery            = api.Delivery
	TableCount          = api.TableCount
	Preview             = api.Preview
	Plan                = api.Plan
	View                = api.View
	WatchEvent          = api.WatchEvent
	WatchPage           = api.WatchPage
	IndexStatus         = api.IndexStatus
)
