package lab

import (
	"bytes"
	"sort"
	"strings"

	"github.com/replicad/replicad/crdt"
)

// Metrics are one run's measurements. docs/lab.md defines each.
type Metrics struct {
	Writes      int `json:"writes"`       // writes made by people (the workload and scripts)
	Deletes     int `json:"deletes"`      // of which deletes
	FieldWrites int `json:"field_writes"` // values written: one per field set, one per delete
	// LostUpdates: values written by a person that end neither shown,
	// nor replaced by a person who had seen them, nor shown side by
	// side as a conflict, nor rejected: overwritten by a write that had
	// not seen them.
	LostUpdates int `json:"lost_updates"`
	// Conflicts: distinct sets of concurrent candidates of one field (or
	// of a record's existence) that some replica showed side by side.
	Conflicts   int `json:"conflicts"`
	Resolutions int `json:"resolutions"` // writes a person made to resolve conflicts
	// Rejected: writes the hub rejected (server-wins), each logged as a
	// sync error to its device.
	Rejected   int `json:"rejected"`
	SyncErrors int `json:"sync_errors"` // losses the hub logged
	Decisions  int `json:"decisions"`   // writes the hub made to carry out its decisions
	// Tentative: writes of an arbitrated strategy that no hub had
	// judged at the end.
	Tentative int `json:"tentative"`
	Parked    int `json:"parked"` // times a write was refused for a clock too far ahead

	Converged bool `json:"converged"`
	// ConvergenceMs: from the last disturbance (a person's write, a
	// node back online, a partition healed) until every replica held
	// every write and no decision was left; when not converged, until
	// the end of the settle period.
	ConvergenceMs int64 `json:"convergence_ms"`
	EndMs         int64 `json:"end_ms"` // simulated time at the end of the run

	Sessions      int     `json:"sessions"`
	SessionsCut   int     `json:"sessions_cut"`
	Messages      int64   `json:"messages"`
	Bytes         int64   `json:"bytes"`
	BytesPerWrite float64 `json:"bytes_per_write"`
	// Staleness: per write and per replica other than its origin, the
	// time from the write until the replica held it (a reader there saw
	// the older value meanwhile); writes never held count until the end.
	StalenessMeanMs float64 `json:"staleness_mean_ms"`
	StalenessMaxMs  int64   `json:"staleness_max_ms"`

	DeviceHours float64 `json:"device_hours"`

	stalenessSum float64
	stalenessN   int64
}

// RunResult is one run: a scenario (at one sweep value) under one
// strategy with one seed.
type RunResult struct {
	Scenario  string      `json:"scenario"`
	Strategy  string      `json:"strategy"`
	Seed      uint64      `json:"seed"`
	Sweep     *SweepPoint `json:"sweep,omitempty"`
	Metrics   Metrics     `json:"metrics"`
	Snapshots []Snapshot  `json:"snapshots,omitempty"`
	// Final is the reference replica's records at the end (the first
	// hub, else the first device), for scenarios of at most 50 records.
	Final map[string]RecordView `json:"final,omitempty"`
}

// Snapshot is what one node showed at one moment (scripted scenarios).
type Snapshot struct {
	Label   string                `json:"label"`
	Node    string                `json:"node"`
	AtMs    int64                 `json:"at_ms"`
	Records map[string]RecordView `json:"records"`
}

// RecordView is a record as a reader sees it: its fields under
// last-writer-wins (JSON text), and the fields shown side by side.
type RecordView struct {
	Exists    bool                `json:"exists"`
	Fields    map[string]string   `json:"fields,omitempty"`
	Conflicts map[string][]string `json:"conflicts,omitempty"`
}

func (s *sim) view(n *node) map[string]RecordView {
	out := map[string]RecordView{}
	for k, rec := range n.rep.recs {
		table, id, _ := strings.Cut(k, "\x00")
		v := RecordView{Exists: rec.Exists()}
		rec.Visible(func(name string, val crdt.Value) {
			if v.Fields == nil {
				v.Fields = map[string]string{}
			}
			v.Fields[name] = val.String()
		})
		for _, c := range s.strat.Conflicts(rec) {
			if v.Conflicts == nil {
				v.Conflicts = map[string][]string{}
			}
			name := c.Field
			if name == "" {
				name = "_exists"
			}
			var cands []string
			for _, e := range c.Candidates {
				switch {
				case e.Delete:
					cands = append(cands, "(deleted)")
				case e.Value == nil:
					cands = append(cands, "(exists)")
				default:
					cands = append(cands, e.Value.String())
				}
			}
			v.Conflicts[name] = cands
		}
		out[table+"/"+id] = v
	}
	return out
}

func (s *sim) finish() *RunResult {
	m := &s.m
	m.EndMs = s.now
	m.Converged = s.converged()
	if m.Converged && s.convergedSince >= 0 {
		m.ConvergenceMs = max(0, s.convergedSince-s.lastDisturb)
	} else {
		m.Converged = false
		m.ConvergenceMs = max(0, s.now-s.lastDisturb)
	}
	for _, n := range s.nodes {
		m.Parked += n.rep.parked
	}
	// Writes not held everywhere count as stale until the end.
	dots := make([]crdt.Dot, 0, len(s.writes))
	for d := range s.writes {
		dots = append(dots, d)
	}
	sort.Slice(dots, func(i, j int) bool {
		return dots[i].Node < dots[j].Node || dots[i].Node == dots[j].Node && dots[i].Seq < dots[j].Seq
	})
	for _, d := range dots {
		wi := s.writes[d]
		if missing := len(s.nodes) - wi.heldBy; missing > 0 {
			age := s.now - wi.made
			m.stalenessSum += float64(age) * float64(missing)
			m.stalenessN += int64(missing)
			m.StalenessMaxMs = max(m.StalenessMaxMs, age)
		}
	}
	if m.stalenessN > 0 {
		m.StalenessMeanMs = m.stalenessSum / float64(m.stalenessN)
	}
	if m.Writes > 0 {
		m.BytesPerWrite = float64(m.Bytes) / float64(m.Writes)
	}
	devices := 0
	for _, n := range s.nodes {
		if !n.hub {
			devices++
		}
	}
	m.DeviceHours = float64(devices) * float64(s.sc.Duration.Milliseconds()) / 3_600_000
	ref := s.resolver
	s.classify(ref)
	if s.strat.Arbitrated() {
		for _, wi := range s.persons {
			if s.arbiter == nil || !s.arbiter.rep.holds(wi.w.Dot()) {
				m.Tentative++
			}
		}
	}
	res := &RunResult{Scenario: s.sc.Name, Strategy: s.strat.Name(), Seed: s.seed, Sweep: s.sc.Sweep, Metrics: *m, Snapshots: s.snapshots}
	if s.sc.Records <= 50 {
		res.Final = s.view(ref)
	}
	return res
}

// classify counts field writes and lost updates against ref's final
// state.
func (s *sim) classify(ref *node) {
	m := &s.m
	for _, wi := range s.persons {
		if wi.kind != personWrite {
			continue
		}
		w := wi.w
		items := []string{""}
		if !w.Delete {
			items = items[:0]
			for _, f := range w.Fields {
				items = append(items, f.Name)
			}
		}
		m.FieldWrites += len(items)
		if s.rejected[w.Dot()] {
			continue
		}
		rec := ref.rep.recs[recKey(w.Table, w.ID)]
		for _, f := range items {
			if s.knowinglyReplaced(wi, f) || rec != nil && (s.shown(rec, w.Dot(), f) || s.sideBySide(rec, w.Dot(), f)) {
				continue
			}
			m.LostUpdates++
		}
	}
}

// knowinglyReplaced: a person's later write to the field (or a delete of
// the record; for a delete, any later write) had seen wi.
func (s *sim) knowinglyReplaced(wi *winfo, f string) bool {
	d := wi.w.Dot()
	for _, x := range s.byRecord[recKey(wi.w.Table, wi.w.ID)] {
		if x == wi || !x.seen.Covers(d) {
			continue
		}
		if f == "" || x.w.Delete {
			return true
		}
		for _, xf := range x.w.Fields {
			if xf.Name == f {
				return true
			}
		}
	}
	return false
}

// source follows a hub decision to the write whose value (or existence
// operation, field "") it shows. A decision names it through its losses'
// winning entries; when that entry stands for a value another pending
// rejection restored (policy's stand-in), the value tells: the person's
// write of that value to the field.
func (s *sim) source(d crdt.Dot, f string) crdt.Dot {
	for range 16 {
		wi := s.writes[d]
		if wi == nil || wi.kind != decisionWrite {
			return d
		}
		next := wi.exSource
		if f != "" {
			v := fieldValue(wi.w, f)
			src, ok := wi.source[f]
			if !ok || !bytes.Equal(fieldValue(s.writes[src].w, f), v) {
				src = s.wroteValue(wi.w.Table, wi.w.ID, f, v)
			}
			next = src
		}
		if next == (crdt.Dot{}) {
			return d
		}
		d = next
	}
	return d
}

func fieldValue(w *crdt.Write, f string) crdt.Value {
	if w == nil {
		return nil
	}
	for _, fv := range w.Fields {
		if fv.Name == f {
			return fv.Value
		}
	}
	return nil
}

// wroteValue is the latest person's write that set field f of the record
// to v.
func (s *sim) wroteValue(table, id, f string, v crdt.Value) crdt.Dot {
	var best *winfo
	for _, x := range s.byRecord[recKey(table, id)] {
		if xv := fieldValue(x.w, f); xv != nil && bytes.Equal(xv, v) && (best == nil || best.w.Stamp().Less(x.w.Stamp())) {
			best = x
		}
	}
	if best == nil {
		return crdt.Dot{}
	}
	return best.w.Dot()
}

// shown: the final state shows d's value on f (for a delete, f "": the
// record ends deleted by d).
func (s *sim) shown(rec *crdt.Record, d crdt.Dot, f string) bool {
	if f == "" {
		return rec.Deleted() && s.source(rec.Exist[len(rec.Exist)-1].Dot(), "") == d
	}
	if !rec.Exists() {
		return false
	}
	e, ok := rec.Winner(f)
	return ok && !e.Delete && s.source(e.Dot(), f) == d
}

// sideBySide: the final state shows d among the candidates of a conflict
// on f (existence for f "").
func (s *sim) sideBySide(rec *crdt.Record, d crdt.Dot, f string) bool {
	for _, c := range s.strat.Conflicts(rec) {
		if c.Field != f {
			continue
		}
		for _, e := range c.Candidates {
			if s.source(e.Dot(), f) == d {
				return true
			}
		}
	}
	return false
}
