package agent

// The record routes' modes, ?draft=true (internal/ext/drafts) and
// ?online=true (onlinereads.go): httpapi.Modes.

// draftStatus adds to the status the number of drafts and, on a device,
// the hub API online reads go to.
func (rp *replica) draftStatus(st map[string]any) {
	n, err := rp.store.CountDrafts()
	if err != nil {
		rp.a.log.Warn("counting drafts", "error", err)
	}
	st["drafts"] = n
	if rp.a.cfg.Role != "hub" {
		if base := rp.a.hubAPIBase(rp); base != "" {
			st["hub_api"] = base
		}
	}
}
