package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/replication"
)

// StrippedFile keeps, on a device, the tables it held projected to some
// fields at some time: its change log may hold other origins' writes to
// them without some fields, which it must never relay as whole.
const StrippedFile = "stripped.json"

// Stripped is the set of StrippedFile.
type Stripped struct {
	path   string
	save   func(path string, v any) error
	mu     sync.Mutex
	tables map[string]bool
}

// LoadStripped reads the set kept at path; save writes it back
// (atomically).
func LoadStripped(path string, save func(path string, v any) error) (*Stripped, error) {
	s := &Stripped{path: path, save: save, tables: map[string]bool{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	var list []string
	if err := json.Unmarshal(data, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, t := range list {
		s.tables[t] = true
	}
	return s, nil
}

// Has reports whether table was held projected.
func (s *Stripped) Has(table string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tables[table]
}

// Add adds the tables sc projects, and keeps the set if it grew.
func (s *Stripped) Add(sc replication.Scope) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	grew := false
	for _, t := range sc.Tables {
		if t.Projected && !s.tables[t.Table] {
			s.tables[t.Table], grew = true, true
		}
	}
	if !grew {
		return nil
	}
	list := make([]string, 0, len(s.tables))
	for t := range s.tables {
		list = append(list, t)
	}
	sort.Strings(list)
	return s.save(s.path, list)
}

// KeepStripped loads a device's tables held projected at some time (the
// file StrippedFile in dir, written with save), tells them to the engine
// (ecfg.Local.Stripped) and returns what keeps them as scopes are
// assigned.
func KeepStripped(ecfg *replication.Config, dir string, save func(path string, v any) error, log hclog.Logger) (func(replication.Scope), error) {
	st, err := LoadStripped(filepath.Join(dir, StrippedFile), save)
	if err != nil {
		return nil, err
	}
	st.Add(ecfg.Local.Scope)
	ecfg.Local.Stripped = st.Has
	return func(sc replication.Scope) {
		if err := st.Add(sc); err != nil {
			log.Error("keeping the tables held projected", "error", err)
		}
	}, nil
}
