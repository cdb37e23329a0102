package httpapi

import (
	"net/http"
	"strconv"
)

// Modes serves the record routes with their modes: ?draft=true (a draft
// of one record, kept on this device) and ?online=true (a read answered
// by the hub's API).
type Modes struct {
	Records Records
	Drafts  interface {
		PutDraft(w http.ResponseWriter, r *http.Request) (any, error)
		GetDrafted(w http.ResponseWriter, r *http.Request) (any, error)
	}
	Online interface {
		GetRecord(w http.ResponseWriter, r *http.Request) (any, error)
		ListRecords(w http.ResponseWriter, r *http.Request) (any, error)
	}
}

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
		return false, Errorf(http.StatusBadRequest, "%s=%q: want true or false", name, s)
	}
	return b, nil
}

// ReadModes returns the ?draft and ?online flags of a request, refusing
// the ones the call does not take.
func ReadModes(r *http.Request, draftOK, onlineOK bool) (draft, online bool, err error) {
	if draft, err = boolParam(r, "draft"); err != nil {
		return
	}
	if online, err = boolParam(r, "online"); err != nil {
		return
	}
	switch {
	case draft && !draftOK:
		err = Errorf(http.StatusBadRequest, "draft=true applies to reading and writing one record (GET and PUT /v1/tables/{table}/records/{id}); list drafts with GET /v1/drafts, discard one with DELETE /v1/drafts/{table}/{id}")
	case online && !onlineOK:
		err = Errorf(http.StatusBadRequest, "online=true applies to reads (GET) only: writes are always local")
	case draft && online:
		err = Errorf(http.StatusBadRequest, "draft=true and online=true do not go together: drafts are on this device, online reads on the hub")
	}
	return
}

// Put is PUT /v1/tables/{table}/records/{id}[?draft].
func (m Modes) Put(w http.ResponseWriter, r *http.Request) (any, error) {
	draft, _, err := ReadModes(r, true, false)
	if err != nil {
		return nil, err
	}
	if draft {
		return m.Drafts.PutDraft(w, r)
	}
	return m.Records.Put(w, r)
}

// Get is GET /v1/tables/{table}/records/{id}[?draft|?online].
func (m Modes) Get(w http.ResponseWriter, r *http.Request) (any, error) {
	draft, online, err := ReadModes(r, true, true)
	switch {
	case err != nil:
		return nil, err
	case draft:
		return m.Drafts.GetDrafted(w, r)
	case online:
		return m.Online.GetRecord(w, r)
	}
	return m.Records.Get(w, r)
}

// Delete is DELETE /v1/tables/{table}/records/{id}.
func (m Modes) Delete(w http.ResponseWriter, r *http.Request) (any, error) {
	if _, _, err := ReadModes(r, false, false); err != nil {
		return nil, err
	}
	return m.Records.Delete(w, r)
}

// List is GET /v1/tables/{table}/records[?online].
func (m Modes) List(w http.ResponseWriter, r *http.Request) (any, error) {
	_, online, err := ReadModes(r, false, true)
	if err != nil {
		return nil, err
	}
	if online {
		return m.Online.ListRecords(w, r)
	}
	return m.Records.List(w, r)
}
