package profiles

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/replication"
)

// A device adopts the scope its hub assigned and keeps it in
// <data-dir>/scope.json, so it holds the same records after a restart
// before it syncs again.

// ScopeFile is where, in the data directory, a device keeps the scope a
// hub assigned it.
const ScopeFile = "scope.json"

// KeptScope reads the scope a device keeps in dir's ScopeFile; ok is
// false when there is none.
func KeptScope(dir string) (sc replication.Scope, ok bool, err error) {
	path := filepath.Join(dir, ScopeFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return sc, false, nil
	} else if err != nil {
		return sc, false, err
	}
	if err := json.Unmarshal(data, &sc); err != nil {
		return sc, false, fmt.Errorf("%s: %w (remove it to hold every record until the hub assigns a profile again)", path, err)
	}
	if err := sc.Validate(); err != nil {
		return sc, false, fmt.Errorf("%s: %w", path, err)
	}
	return sc, true, nil
}

// KeepScope returns what keeps each scope a hub assigns in dir's
// ScopeFile (replication.Local.OnAssigned), logging it.
func KeepScope(dir string, log hclog.Logger) func(replication.Scope) {
	path := filepath.Join(dir, ScopeFile)
	return func(sc replication.Scope) {
		if err := WriteFileAtomic(path, sc); err != nil {
			log.Error("keeping the assigned scope", "error", err)
			return
		}
		log.Info("offline profile assigned by the hub", "profile", sc.Profile, "scope", sc.String())
	}
}

// WriteFileAtomic writes v as indented JSON to path (0600), through a
// synced temporary file renamed over it.
func WriteFileAtomic(path string, v any) error {
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

// Scopes loads a hub's offline profiles (file: --profiles; profile: what
// it assigns a device) or a device's assigned scope in dir (put in
// ecfg.Local.Scope; keep: keeps the next one assigned); on any other
// node all are nil.
func Scopes(ecfg *replication.Config, file, role, dir string, log hclog.Logger) (ps *State, keep func(replication.Scope), err error) {
	if file != "" {
		ps, err = New(file)
		return ps, nil, err
	}
	if role != "device" {
		return nil, nil, nil
	}
	sc, ok, err := KeptScope(dir)
	if err != nil {
		return nil, nil, err
	}
	if ok {
		ecfg.Local.Scope = sc
	}
	return nil, KeepScope(dir, log), nil
}
