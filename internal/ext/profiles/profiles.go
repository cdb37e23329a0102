package profiles

import (
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/profile"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

const profileReloadEvery = 2 * time.Second

// State is a hub's loaded profiles file.
type State struct {
	path string

	mu      sync.Mutex
	set     *profile.Set
	modTime time.Time
	size    int64
	lastErr string
	loaded  time.Time
}

// New loads the profiles file path.
func New(path string) (*State, error) {
	ps := &State{path: path}
	if err := ps.Load(); err != nil {
		return nil, err
	}
	return ps, nil
}

// Load (re)reads the profiles file; on error the previous set stays.
func (ps *State) Load() error {
	fi, err := os.Stat(ps.path)
	if err != nil {
		return fmt.Errorf("profiles: %w", err)
	}
	set, err := profile.Load(ps.path)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if err != nil {
		ps.lastErr = err.Error()
		return err
	}
	ps.set, ps.modTime, ps.size, ps.lastErr, ps.loaded = set, fi.ModTime(), fi.Size(), "", time.Now()
	return nil
}

// changed reports whether the file differs from the one loaded.
func (ps *State) changed() bool {
	fi, err := os.Stat(ps.path)
	if err != nil {
		return false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return !fi.ModTime().Equal(ps.modTime) || fi.Size() != ps.size
}

// Assign is what the hub assigns device peer p (replication.Local.Assign):
// its profile's scope, false when no profile names it.
func (ps *State) Assign(p replication.Peer) (replication.Scope, bool) {
	if p.Role != "device" {
		return replication.Scope{}, false
	}
	ps.mu.Lock()
	set := ps.set
	ps.mu.Unlock()
	return set.For(p.Node)
}

// Watch reloads the profiles file when it changes, until stop is closed.
func (ps *State) Watch(stop <-chan struct{}, log hclog.Logger) {
	t := time.NewTicker(profileReloadEvery)
	defer t.Stop()
	failed := ""
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !ps.changed() {
			continue
		}
		if err := ps.Load(); err != nil {
			if err.Error() != failed {
				log.Error("profiles file not reloaded (the previous profiles stay)", "error", err)
				failed = err.Error()
			}
			continue
		}
		failed = ""
		log.Info("profiles reloaded", "file", ps.path, "profiles", ps.set.Profiles())
	}
}

// ---- API ----

type profilesJSON struct {
	File     string                       `json:"file,omitempty"`
	Loaded   string                       `json:"loaded,omitempty"`
	Error    string                       `json:"error,omitempty"`
	Profiles map[string]replication.Scope `json:"profiles,omitempty"`
	// Scope is, on a device, the scope in force.
	Scope *replication.Scope `json:"scope,omitempty"`
}

// Host is what the profiles' API needs of the agent.
type Host = extapi.Current[Replica]

// Replica is the replica the API reads: its store and clock, its loaded
// profiles (nil on a node without a profiles file), the scope it holds
// (a device's assigned one) and what a node may read (ReadLimit: false
// when its reads are not restricted).
type Replica struct {
	Store     *store.Store
	Clock     *hlc.Clock
	Profiles  *State
	Scope     func() replication.Scope
	ReadLimit func(node hlc.NodeID) (replication.Scope, bool)
}

// API is the profiles' endpoints.
type API struct{ h Host }

// NewAPI returns the profiles' endpoints of h.
func NewAPI(h Host) *API { return &API{h: h} }

// Routes adds the endpoints.
func (a *API) Routes(rt extapi.Registrar) {
	rt.Handle("GET /v1/profiles", a.getProfiles)
	rt.Handle("GET /v1/profiles/preview", a.previewProfile)
	rt.Handle("POST /v1/profiles/reload", a.reloadProfiles)
}

// GET /v1/profiles: on a hub, the loaded profiles (and the last reload
// error); on a device, the scope it holds.
func (a *API) getProfiles(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.h.With(func(rp Replica) (any, error) {
		ps := rp.Profiles
		if ps == nil {
			sc := rp.Scope()
			return profilesJSON{Scope: &sc}, nil
		}
		ps.mu.Lock()
		defer ps.mu.Unlock()
		out := profilesJSON{File: ps.path, Loaded: ps.loaded.UTC().Format(time.RFC3339), Error: ps.lastErr, Profiles: map[string]replication.Scope{}}
		for _, n := range ps.set.Profiles() {
			out.Profiles[n], _ = ps.set.Profile(n)
		}
		return out, nil
	})
}

// errNoProfiles answers the calls a node without profiles cannot serve.
func errNoProfiles() error {
	return &extapi.Error{Code: http.StatusConflict, Msg: "this node has no profiles file (a hub's --profiles)"}
}

// POST /v1/profiles/reload: reload the profiles file now.
func (a *API) reloadProfiles(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.h.With(func(rp Replica) (any, error) {
		ps := rp.Profiles
		if ps == nil {
			return nil, errNoProfiles()
		}
		if err := ps.Load(); err != nil {
			return nil, &extapi.Error{Code: http.StatusUnprocessableEntity, Msg: fmt.Sprintf("%v (the previous profiles stay)", err)}
		}
		return map[string]any{"profiles": ps.set.Profiles()}, nil
	})
}

type previewJSON struct {
	Device  string               `json:"device"`
	Profile string               `json:"profile,omitempty"`
	All     bool                 `json:"all,omitempty"` // no profile: every record
	Tables  []profile.TableCount `json:"tables"`
	Records int                  `json:"records"`
	Bytes   int64                `json:"bytes"`
}

// GET /v1/profiles/preview?device=ID[&profile=NAME]: what a device's
// profile (or the named one, with the device's attributes) would put on
// it, per table, by this hub's records now.
func (a *API) previewProfile(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	id, err := hlc.ParseNodeID(q.Get("device"))
	if err != nil {
		return nil, &extapi.Error{Code: http.StatusBadRequest, Msg: fmt.Sprintf("device: %v", err)}
	}
	return a.h.With(func(rp Replica) (any, error) {
		ps := rp.Profiles
		if ps == nil {
			return nil, errNoProfiles()
		}
		ps.mu.Lock()
		set := ps.set
		ps.mu.Unlock()
		sc, ok := set.For(id)
		if name := q.Get("profile"); name != "" {
			p, found := set.Profile(name)
			if !found {
				return nil, &extapi.Error{Code: http.StatusNotFound, Msg: fmt.Sprintf("no profile %q", name)}
			}
			p.Device = sc.Device
			sc, ok = p, true
		}
		if lim, restricted := rp.ReadLimit(id); restricted {
			// What the device's read permissions let it hold of it.
			if !ok {
				sc, ok = replication.FullScope(), true
			}
			sc = sc.Restrict(lim)
		}
		out := previewJSON{Device: id.String(), Tables: []profile.TableCount{}}
		if !ok {
			out.All = true
			return out, nil
		}
		out.Profile = sc.Profile
		out.Tables, err = profile.Preview(rp.Store, sc, rp.Clock.Physical())
		if err != nil {
			return nil, err
		}
		for _, t := range out.Tables {
			out.Records += t.Records
			out.Bytes += t.Bytes
		}
		return out, nil
	})
}
