package agent

import (
	"net/http"
	"strconv"
	"time"

	"github.com/replicad/replicad/internal/httpapi"
)

// The record routes' modes: ?draft=true (internal/ext/drafts) and
// ?online=true (onlinereads.go).

// boolParam parses the query flag name: absent means false, present
// without a value ("?draft") true, else strconv.ParseBool.
func boolParam(r *http.Request, name string) (bool, error) {
	q := r.URL.Query()
	if _, ok := q[name]; !ok {
		return false, nil
	}
	s := q.Get(name)
	if s == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, httpapi.Errorf(http.StatusBadRequest, "%s=%q: want true or false", name, s)
	}
	return b, nil
}

// readModes returns the ?draft and ?online flags of a request, refusing
// the ones the call does not take.
func readModes(r *http.Request, draftOK, onlineOK bool) (draft, online bool, err error) {
	if draft, err = boolParam(r, "draft"); err != nil {
		return
	}
	if online, err = boolParam(r, "online"); err != nil {
		return
	}
	switch {
	case draft && !draftOK:
		err = httpapi.Errorf(http.StatusBadRequest, "draft=true applies to reading and writing one record (GET and PUT /v1/tables/{table}/records/{id}); list drafts with GET /v1/drafts, discard one with DELETE /v1/drafts/{table}/{id}")
	case online && !onlineOK:
		err = httpapi.Errorf(http.StatusBadRequest, "online=true applies to reads (GET) only: writes are always local")
	case draft && online:
		err = httpapi.Errorf(http.StatusBadRequest, "draft=true and online=true do not go together: drafts are on this device, online reads on the hub")
	}
	return
}

// The record routes, with their ?draft and ?online (onlinereads.go)
// modes.

func (a *Agent) putRecordModes(w http.ResponseWriter, r *http.Request) (any, error) {
	draft, _, err := readModes(r, true, false)
	if err != nil {
		return nil, err
	}
	if draft {
		return a.drafts.PutDraft(w, r)
	}
	return a.records().Put(w, r)
}

func (a *Agent) getRecordModes(w http.ResponseWriter, r *http.Request) (any, error) {
	draft, online, err := readModes(r, true, true)
	switch {
	case err != nil:
		return nil, err
	case draft:
		return a.drafts.GetDrafted(w, r)
	case online:
		return a.online.GetRecord(w, r)
	}
	return a.records().Get(w, r)
}

func (a *Agent) deleteRecordModes(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, _, err := readModes(r, false, false); err != nil {
		return nil, err
	}
	return a.records().Delete(w, r)
}

func (a *Agent) listRecordsModes(w http.ResponseWriter, r *http.Request) (any, error) {
	_, online, err := readModes(r, false, true)
	if err != nil {
		return nil, err
	}
	if online {
		return a.online.ListRecords(w, r)
	}
	return a.records().List(w, r)
}

func msTime(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

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
