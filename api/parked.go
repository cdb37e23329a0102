package api

import "encoding/json"

// ParkedWrite is a remote write parked because its stamp is further
// ahead of the node's clock than the maximum clock offset
// (GET /v1/parked).
type ParkedWrite struct {
	Origin     string                     `json:"origin"`
	Seq        uint64                     `json:"seq"`
	Table      string                     `json:"table"`
	ID         string                     `json:"id"`
	HLC        string                     `json:"hlc"`
	Delete     bool                       `json:"delete"`
	Fields     map[string]json.RawMessage `json:"fields"`
	Reason     string                     `json:"reason"`
	ParkedAtMs int64                      `json:"parked_at_ms"`
	AheadMs    int64                      `json:"ahead_ms"`
}

// ParkedPage is the answer of GET /v1/parked: a page in (origin, seq)
// order; Next ("ORIGIN:SEQ") is the after of the next page, "" at the
// end; Total and ByOrigin count every parked write.
type ParkedPage struct {
	Parked       []ParkedWrite  `json:"parked"`
	Next         string         `json:"next"`
	Total        int            `json:"total"`
	ByOrigin     map[string]int `json:"by_origin"`
	MaxPerOrigin int            `json:"max_per_origin"`
}

// ParkedRelease is the answer of POST /v1/parked/{origin}/{seq}/release:
// the write's values applied as a new write of the node (Node, Seq,
// HLC), not at the parked stamp.
type ParkedRelease struct {
	Released  bool   `json:"released"`
	Status    string `json:"status"`
	ParkedHLC string `json:"parked_hlc"`
	HLC       string `json:"hlc"`
	Node      string `json:"node"`
	Seq       uint64 `json:"seq"`
}
