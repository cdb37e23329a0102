package policy

import (
	"fmt"
	"sort"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// Kind is a table's policy.
type Kind string

// The policies.
const (
	LWW        Kind = "lww"
	ClientWins Kind = "client-wins"
	ServerWins Kind = "server-wins"
	Manual     Kind = "manual"
)

// Parse reads a policy name.
func Parse(s string) (Kind, error) {
	switch k := Kind(s); k {
	case LWW, ClientWins, ServerWins, Manual:
		return k, nil
	case "":
		return LWW, nil
	}
	return "", fmt.Errorf("policy %q: want lww, client-wins, server-wins or manual", s)
}

// NeedsArbiter reports whether the policy's outcome is decided by the hub.
func (k Kind) NeedsArbiter() bool { return k == ClientWins || k == ServerWins }

// Loss is a value overridden or rejected, for the sync-error log.
type Loss struct {
	Field   string
	Losing  crdt.Entry // the value that lost (Delete set: a delete or a cleared field)
	Winning crdt.Entry // the value that won (Delete set: the field ends absent)
}

// Decision is what the arbiter does about a write it applied.
type Decision struct {
	// Fields, when not empty, is a write the arbiter makes now (sorted by
	// name; crdt.Cleared clears a field). Made after the applied write,
	// with the record's whole context, it supersedes every candidate.
	Fields []crdt.FieldValue
	// Rejected: server-wins undid the write.
	Rejected bool
	// Redelete: client-wins asserts a delete that arrived last.
	Redelete bool
	// Write: make the write even if Fields is empty (server-wins undoing a
	// delete of a record that had no field values: it re-creates it).
	Write bool
	// Losses are the values overridden or rejected.
	Losses []Loss
}

// Empty reports whether there is nothing to write.
func (d Decision) Empty() bool { return len(d.Fields) == 0 && !d.Redelete && !d.Write }

// Arbitrate decides, at the arbiter, about the remote write w that was
// just applied with outcome out. Writes the arbiter made itself and
// duplicates need no decision.
func Arbitrate(k Kind, w *crdt.Write, out *crdt.Outcome, arbiter hlc.NodeID) Decision {
	return ArbitrateWith(k, w, out, arbiter, nil)
}

// Rejected tells, for a write the arbiter has rejected but whose undo is
// not carried out yet, the decision that undoes it.
type Rejected func(crdt.Dot) (Decision, bool)

// ArbitrateWith is Arbitrate knowing the rejections still to carry out:
// when server-wins restores what a field was before a rejected write, a
// value written by another rejected write (the same device's earlier
// change, judged in the same session) stands for the value that write's
// own undo restores.
func ArbitrateWith(k Kind, w *crdt.Write, out *crdt.Outcome, arbiter hlc.NodeID, rejected Rejected) Decision {
	if out == nil || out.Duplicate || out.NotReady || w.Origin == arbiter || w.Elided {
		return Decision{}
	}
	switch k {
	case ClientWins:
		return clientWins(w, out)
	case ServerWins:
		return serverWins(w, out, rejected)
	case LWW:
		return Decision{Losses: lwwLosses(w, out)}
	}
	return Decision{}
}

// writeEntry is w's own candidate for a field.
func writeEntry(w *crdt.Write, v crdt.Value) crdt.Entry {
	e := crdt.Entry{Origin: w.Origin, Seq: w.Seq, TS: w.TS, Delete: w.Delete}
	if v.IsCleared() {
		e.Delete = true
	} else if !w.Delete {
		e.Value = v
	}
	return e
}

func valueOf(w *crdt.Write, field string) crdt.Value {
	for _, f := range w.Fields {
		if f.Name == field {
			return f.Value
		}
	}
	return nil
}

func maxEntry(es []crdt.Entry, skip crdt.Dot) (crdt.Entry, bool) {
	var best crdt.Entry
	ok := false
	for _, e := range es {
		if e.Dot() == skip {
			continue
		}
		if !ok || best.Stamp().Less(e.Stamp()) {
			best, ok = e, true
		}
	}
	return best, ok
}

// lwwLosses: where w stands beside concurrent candidates, the values that
// stop winning now: w itself if it does not win, and the value that won
// before w arrived if w did not see it and it does not win any more. The
// other concurrent candidates had already lost (and were logged) when the
// value that beat them arrived.
func lwwLosses(w *crdt.Write, out *crdt.Outcome) []Loss {
	var losses []Loss
	for _, fo := range out.Fields {
		if fo.Dead || len(fo.Concurrent) == 0 {
			continue
		}
		mine := writeEntry(w, valueOf(w, fo.Name))
		all := append(append([]crdt.Entry(nil), fo.Concurrent...), mine)
		win, _ := maxEntry(all, crdt.Dot{})
		prior := append(append([]crdt.Entry(nil), fo.Superseded...), fo.Concurrent...)
		before, _ := maxEntry(prior, crdt.Dot{})
		for _, e := range []crdt.Entry{before, mine} {
			if e.Dot() == win.Dot() || (e.Delete && win.Delete) || !contains(all, e.Dot()) {
				continue
			}
			losses = append(losses, Loss{Field: fo.Name, Losing: e, Winning: win})
		}
	}
	return losses
}

func contains(es []crdt.Entry, d crdt.Dot) bool {
	for _, e := range es {
		if e.Dot() == d {
			return true
		}
	}
	return false
}

func clientWins(w *crdt.Write, out *crdt.Outcome) Decision {
	var d Decision
	if w.Delete {
		// A delete that arrives last wins over concurrent values.
		if len(out.ExistConcurrent) == 0 {
			return d
		}
		d.Redelete = true
		for _, fo := range out.Fields {
			for _, e := range fo.Concurrent {
				if !e.Delete {
					d.Losses = append(d.Losses, Loss{Field: fo.Name, Losing: e, Winning: writeEntry(w, nil)})
				}
			}
		}
		return d
	}
	for _, fo := range out.Fields {
		if fo.Dead || len(fo.Concurrent) == 0 {
			continue
		}
		v := valueOf(w, fo.Name)
		d.Fields = append(d.Fields, crdt.FieldValue{Name: fo.Name, Value: v})
		for _, e := range fo.Concurrent {
			d.Losses = append(d.Losses, Loss{Field: fo.Name, Losing: e, Winning: writeEntry(w, v)})
		}
	}
	// A concurrent delete of the record loses too: writing the values
	// again brings the record back.
	if len(d.Fields) == 0 {
		for _, e := range out.ExistConcurrent {
			if e.Delete {
				d.Fields = append(d.Fields, w.Fields...)
				d.Losses = append(d.Losses, Loss{Losing: e, Winning: writeEntry(w, nil)})
				break
			}
		}
	}
	sortFields(d.Fields)
	return d
}

func serverWins(w *crdt.Write, out *crdt.Outcome, rejected Rejected) Decision {
	var d Decision
	if len(out.ExistConcurrent) == 0 {
		return d // the writer had seen every change the hub accepted
	}
	d.Rejected = true
	d.Write = w.Delete // undoing a delete re-creates the record
	self := crdt.Dot{Node: w.Origin, Seq: w.Seq}
	if !w.Delete {
		// Undoing a change to a record the hub had deleted deletes it
		// again: writing back cleared fields would leave it existing.
		prior := append(append([]crdt.Entry(nil), out.ExistSuperseded...), out.ExistConcurrent...)
		last, ok := maxEntry(prior, self)
		if ok && rejected != nil {
			if rd, was := rejected(last.Dot()); was {
				// The newest existence change is itself being undone: it
				// stands for what its undo leaves (a rejected delete
				// re-creates, a rejected change to a deleted record
				// deletes again).
				switch {
				case rd.Redelete:
					last.Delete = true
				case last.Delete:
					last.Delete = false
				}
			}
		}
		if ok && last.Delete {
			d.Redelete = true
			for _, fo := range out.Fields {
				if !fo.Dead {
					d.Losses = append(d.Losses, Loss{Field: fo.Name, Losing: writeEntry(w, valueOf(w, fo.Name)), Winning: last})
				}
			}
			return d
		}
	}
	for _, fo := range out.Fields {
		// What the field was before w: the newest of what w replaced and
		// what stands beside it.
		prior := append(append([]crdt.Entry(nil), fo.Superseded...), fo.Concurrent...)
		before, ok := maxEntry(prior, self)
		if ok && rejected != nil {
			if rd, was := rejected(before.Dot()); was {
				// That value is itself being undone: it stands for what
				// its undo restores.
				before = standIn(before, rd, fo.Name)
			}
		}
		mine := writeEntry(w, valueOf(w, fo.Name))
		if fo.Dead {
			continue // w's value never showed here
		}
		if !ok || before.Delete {
			d.Fields = append(d.Fields, crdt.FieldValue{Name: fo.Name, Value: crdt.Cleared})
			d.Losses = append(d.Losses, Loss{Field: fo.Name, Losing: mine, Winning: crdt.Entry{Delete: true}})
			continue
		}
		d.Fields = append(d.Fields, crdt.FieldValue{Name: fo.Name, Value: before.Value})
		d.Losses = append(d.Losses, Loss{Field: fo.Name, Losing: mine, Winning: before})
	}
	sortFields(d.Fields)
	return d
}

// standIn is e (a value of a rejected write) replaced by what the
// rejection restores on field.
func standIn(e crdt.Entry, rd Decision, field string) crdt.Entry {
	for _, f := range rd.Fields {
		if f.Name == field {
			e.Value = f.Value
			e.Delete = f.Value.IsCleared()
			if e.Delete {
				e.Value = nil
			}
			return e
		}
	}
	if rd.Redelete {
		e.Value, e.Delete = nil, true
	}
	return e
}

// Still narrows a decision about the write judged to what still applies
// to the record now, when the decision is carried out: a field whose
// judged value a later write has superseded (that write had seen it, so
// its writer's choice stands) is left alone, and a re-delete or re-create
// only happens while the judged operation is still live. overtaken, if
// not nil, tells the fields (and, with "", the record's existence) that a
// later judgment re-decides (client-wins: a write that reached the
// arbiter after the judged one): those are left to it. A re-delete whose
// existence is overtaken (a later write re-creates the record) becomes a
// clear of the fields it overrode that nothing later re-decides. Losses
// stay.
func Still(d Decision, judged crdt.Dot, rec *crdt.Record, overtaken func(field string) bool) Decision {
	live := func(es []crdt.Entry) bool {
		for _, e := range es {
			if e.Dot() == judged {
				return true
			}
		}
		return false
	}
	over := func(f string) bool { return overtaken != nil && overtaken(f) }
	var fields []crdt.FieldValue
	for _, f := range d.Fields {
		if live(rec.Candidates(f.Name)) && !over(f.Name) {
			fields = append(fields, f)
		}
	}
	if d.Redelete && !d.Rejected && live(rec.Exist) && over("") {
		// Client-wins: the delete arrived before a write that brings the
		// record back; the delete still wins the fields that write did
		// not touch.
		seen := map[string]bool{}
		for _, l := range d.Losses {
			if l.Field == "" || seen[l.Field] || over(l.Field) {
				continue
			}
			seen[l.Field] = true
			if _, ok := rec.Get(l.Field); ok {
				fields = append(fields, crdt.FieldValue{Name: l.Field, Value: crdt.Cleared})
			}
		}
		sortFields(fields)
		d.Redelete = false
	}
	d.Fields = fields
	if (d.Redelete || d.Write) && (!live(rec.Exist) || over("")) {
		d.Redelete, d.Write = false, false
	}
	return d
}

// Arrivals keeps, at the arbiter, the order in which client-wins
// judgments were made, so that a decision carried out late never
// overrides a write that reached the arbiter after the one it judged
// (that write's own decision re-decides the field), and so that a value
// beaten by a judgment still to be carried out is not logged as lost a
// second time. Judgments are numbered in arrival order (the daemon uses
// its queue ids). The zero value is ready; not safe for concurrent use.
type Arrivals struct {
	m   map[arrivalKey]arrival
	byN map[uint64][]arrivalKey // the keys each judgment set
}

type arrivalKey struct{ table, id, field string }

type arrival struct {
	n   uint64
	dot crdt.Dot // the judged write
}

// Judged records judgment n of write w with decision d, under policy k
// (only client-wins decisions are tracked).
func (a *Arrivals) Judged(k Kind, w *crdt.Write, n uint64, d Decision) {
	if k != ClientWins || d.Empty() {
		return
	}
	if a.m == nil {
		a.m, a.byN = map[arrivalKey]arrival{}, map[uint64][]arrivalKey{}
	}
	v := arrival{n, w.Dot()}
	set := func(field string) {
		k := arrivalKey{w.Table, w.ID, field}
		a.m[k] = v
		a.byN[n] = append(a.byN[n], k)
	}
	for _, f := range d.Fields {
		set(f.Name)
	}
	// A re-delete re-decides every field ("*"); any decision re-decides
	// the existence ("": a write brings the record back).
	set("")
	if d.Redelete {
		set("*")
	}
}

// Overtaken returns the overtaken function for policy.Still of judgment
// n on table/id: whether a later judgment re-decides a field ("" for the
// record's existence).
func (a *Arrivals) Overtaken(table, id string, n uint64) func(field string) bool {
	return func(field string) bool {
		if field == "" {
			return a.m[arrivalKey{table, id, ""}].n > n
		}
		return a.m[arrivalKey{table, id, field}].n > n || a.m[arrivalKey{table, id, "*"}].n > n
	}
}

// Dedupe drops from a client-wins decision about w the losses of values
// that a judgment not carried out yet had already beaten (and logged):
// on a field with such a judgment, only that judgment's value loses now.
func (a *Arrivals) Dedupe(k Kind, w *crdt.Write, d *Decision) {
	if k != ClientWins || len(a.m) == 0 {
		return
	}
	last := func(field string) (crdt.Dot, bool) {
		v, ok := a.m[arrivalKey{w.Table, w.ID, field}]
		if all, ok2 := a.m[arrivalKey{w.Table, w.ID, "*"}]; ok2 && (!ok || all.n > v.n) {
			v, ok = all, true
		}
		return v.dot, ok
	}
	kept := d.Losses[:0]
	for _, l := range d.Losses {
		if l.Field != "" {
			if dot, ok := last(l.Field); ok && l.Losing.Dot() != dot && losesTo(d.Losses, l.Field, dot) {
				continue
			}
		}
		kept = append(kept, l)
	}
	d.Losses = kept
}

// losesTo reports whether the losses on field include dot's value.
func losesTo(ls []Loss, field string, dot crdt.Dot) bool {
	for _, l := range ls {
		if l.Field == field && l.Losing.Dot() == dot {
			return true
		}
	}
	return false
}

// Done forgets judgment n once its decision is carried out.
func (a *Arrivals) Done(n uint64) {
	for _, k := range a.byN[n] {
		if a.m[k].n == n {
			delete(a.m, k)
		}
	}
	delete(a.byN, n)
}

func sortFields(fs []crdt.FieldValue) {
	sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
}

// Conflict is a field (or, with Field "", the record's existence) whose
// concurrent candidates a person must choose between.
type Conflict struct {
	Field      string
	Candidates []crdt.Entry
}

// Conflicts returns what a person must choose under policy k: under
// manual, every field with several live candidates of which one is a
// value, and a delete concurrent with an update; under the other policies
// nothing (lww picks, the arbiter decides).
func Conflicts(k Kind, rec *crdt.Record) []Conflict {
	if k != Manual {
		return nil
	}
	var out []Conflict
	if rec.ExistConflict() {
		out = append(out, Conflict{Candidates: append([]crdt.Entry(nil), rec.Exist...)})
	}
	for _, f := range rec.Conflicted() {
		out = append(out, Conflict{Field: f, Candidates: append([]crdt.Entry(nil), rec.Candidates(f)...)})
	}
	return out
}

// Pending reports whether a record of a table under policy k shows a
// change the arbiter has not decided yet: a live candidate from a write
// the arbiter is not known to hold (held tells).
func Pending(k Kind, rec *crdt.Record, arbiter hlc.NodeID, held func(crdt.Dot) bool) bool {
	if !k.NeedsArbiter() {
		return false
	}
	for _, e := range rec.Exist {
		if e.Origin != arbiter && !held(e.Dot()) {
			return true
		}
	}
	return false
}

// Replaced returns the value a write replaced on a field (the newest of
// the candidates it superseded), which a manual conflict shows as the
// value its candidates started from. ok is false when the write replaced
// nothing here.
func Replaced(fo crdt.FieldOutcome) (crdt.Entry, bool) {
	if fo.Dead {
		return crdt.Entry{}, false
	}
	return maxEntry(fo.Superseded, crdt.Dot{})
}
