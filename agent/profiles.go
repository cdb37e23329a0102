package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/httpapi"
	"github.com/replicad/replicad/profile"
	"github.com/replicad/replicad/replication"
)

// Offline profiles. A hub given --profiles assigns each device the scope
// of its profile at every session (replication.Local.Assign) and enforces
// it; the file is reloaded when it changes (checked every
// profileReloadEvery, or at once with POST /v1/profiles/reload); a file
// that fails to load is reported and the previous profiles stay. A device
// adopts the scope its hub assigned and keeps it in <data-dir>/scope.json,
// so it holds the same records after a restart before it syncs again.

const profileReloadEvery = 2 * time.Second

// scopeFile is where a device keeps the scope a hub assigned it.
const scopeFile = "scope.json"

type profileState struct {
	path string

	mu      sync.Mutex
	set     *profile.Set
	modTime time.Time
	size    int64
	lastErr string
	loaded  time.Time
}

// setupProfiles wires offline profiles and read permissions into the
// sync configuration, in this order: a hub assigns a device its profile
// narrowed to its read limit (readperm.go); a device, told its scope,
// keeps the tables it held projected (readperm.go), then the scope.
func (r *replica) setupProfiles(ecfg *replication.Config) error {
	profile, keep, err := r.setupProfileScopes(ecfg)
	if err != nil {
		return err
	}
	ecfg.Local.Limit = r.peerLimit
	ecfg.Local.Assign = profile
	if r.a.cfg.Role == "hub" {
		if perms := r.a.sec.rules(); perms.hasReadRules() {
			ecfg.Local.Assign = r.readAssign(perms, profile)
		}
		return nil
	}
	stripped, err := r.setupStripped(ecfg)
	if err != nil {
		return err
	}
	r.n.OnAssigned("stripped", stripped)
	if keep != nil {
		r.n.OnAssigned("profile", keep)
	}
	ecfg.Local.OnAssigned = r.n.Assigned()
	return nil
}

// setupProfileScopes loads a hub's offline profiles (profile: what it
// assigns a device) or a device's assigned scope (keep: keeps the next
// one assigned); either may be nil.
func (r *replica) setupProfileScopes(ecfg *replication.Config) (profile func(replication.Peer) (replication.Scope, bool), keep func(replication.Scope), err error) {
	cfg := r.a.cfg
	if cfg.Profiles != "" {
		ps := &profileState{path: cfg.Profiles}
		if err := ps.load(); err != nil {
			return nil, nil, err
		}
		r.profiles = ps
		return func(p replication.Peer) (replication.Scope, bool) {
			if p.Role != "device" {
				return replication.Scope{}, false
			}
			ps.mu.Lock()
			set := ps.set
			ps.mu.Unlock()
			return set.For(p.Node)
		}, nil, nil
	}
	if cfg.Role != "device" {
		return nil, nil, nil
	}
	path := filepath.Join(cfg.DataDir, scopeFile)
	if data, err := os.ReadFile(path); err == nil {
		var sc replication.Scope
		if err := json.Unmarshal(data, &sc); err != nil {
			return nil, nil, fmt.Errorf("%s: %w (remove it to hold every record until the hub assigns a profile again)", path, err)
		}
		if err := sc.Validate(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		ecfg.Local.Scope = sc
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	return nil, func(sc replication.Scope) {
		if err := writeFileAtomic(path, sc); err != nil {
			r.a.log.Error("keeping the assigned scope", "error", err)
			return
		}
		r.a.log.Info("offline profile assigned by the hub", "profile", sc.Profile, "scope", sc.String())
	}, nil
}

func writeFileAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// load (re)reads the profiles file; on error the previous set stays.
func (ps *profileState) load() error {
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
func (ps *profileState) changed() bool {
	fi, err := os.Stat(ps.path)
	if err != nil {
		return false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return !fi.ModTime().Equal(ps.modTime) || fi.Size() != ps.size
}

// watchProfiles reloads the profiles file when it changes.
func (r *replica) watchProfiles(stop <-chan struct{}) {
	ps := r.profiles
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
		if err := ps.load(); err != nil {
			if err.Error() != failed {
				r.a.log.Error("profiles file not reloaded (the previous profiles stay)", "error", err)
				failed = err.Error()
			}
			continue
		}
		failed = ""
		r.a.log.Info("profiles reloaded", "file", ps.path, "profiles", ps.set.Profiles())
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

// GET /v1/profiles: on a hub, the loaded profiles (and the last reload
// error); on a device, the scope it holds.
func (a *Agent) getProfiles(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
		ps := rp.profiles
		if ps == nil {
			sc := rp.engine.Scope()
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

// POST /v1/profiles/reload: reload the profiles file now.
func (a *Agent) reloadProfiles(w http.ResponseWriter, r *http.Request) (any, error) {
	return a.with(func(rp *replica) (any, error) {
		if rp.profiles == nil {
			return nil, httpapi.Errorf(http.StatusConflict, "this node has no profiles file (a hub's --profiles)")
		}
		if err := rp.profiles.load(); err != nil {
			return nil, httpapi.Errorf(http.StatusUnprocessableEntity, "%v (the previous profiles stay)", err)
		}
		return map[string]any{"profiles": rp.profiles.set.Profiles()}, nil
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
func (a *Agent) previewProfile(w http.ResponseWriter, r *http.Request) (any, error) {
	q := r.URL.Query()
	id, err := hlc.ParseNodeID(q.Get("device"))
	if err != nil {
		return nil, httpapi.Errorf(http.StatusBadRequest, "device: %v", err)
	}
	return a.with(func(rp *replica) (any, error) {
		if rp.profiles == nil {
			return nil, httpapi.Errorf(http.StatusConflict, "this node has no profiles file (a hub's --profiles)")
		}
		rp.profiles.mu.Lock()
		set := rp.profiles.set
		rp.profiles.mu.Unlock()
		sc, ok := set.For(id)
		if name := q.Get("profile"); name != "" {
			p, found := set.Profile(name)
			if !found {
				return nil, httpapi.Errorf(http.StatusNotFound, "no profile %q", name)
			}
			p.Device = sc.Device
			sc, ok = p, true
		}
		if lim, restricted := rp.a.sec.rules().readLimit(id); restricted {
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
		out.Tables, err = profile.Preview(rp.store, sc, rp.clock.Physical())
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
