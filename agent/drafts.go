package agent

// The record routes' modes, ?draft=true (internal/ext/drafts) and
// ?online=true (onlinereads.go): httpapi.Modes.

// drafts is the number of drafts kept on this node, for the status.
func (rp *running) drafts() int {
	n, err := rp.store.CountDrafts()
	if err != nil {
		rp.a.log.Warn("counting drafts", "error", err)
	}
	return n
}

// statusHubAPI is, on a device, the hub API online reads go to, for the
// status ("" on a hub or unknown).
func (rp *running) statusHubAPI() string {
	if rp.a.cfg.Role == "hub" {
		return ""
	}
	return rp.a.hubAPIBase(rp)
}
