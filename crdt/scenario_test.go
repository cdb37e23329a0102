package crdt

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/replicad/replicad/hlc"
)

// TestScenarios runs the datadriven scripts in testdata/scenarios. Nodes
// are named by single letters (node ids 1, 2, ...); each has a fake
// physical clock that starts at 1000 ms and moves only with "tick".
//
//	write A r1                 A writes fields of record r1, one name=JSON
//	                           per input line
//	delete A r1                A deletes r1
//	tick A 5                   A's physical clock advances 5 ms
//	deliver A B [A:1 B:2 ...]  B receives the listed writes (default: all A
//	                           has applied, in A's order); duplicates and any
//	                           order allowed, out-of-order ones are held back
//	show A r1                  A's view of r1
//	converged r1               every node holds an identical r1
//
// Rewrite expectations with: go test ./crdt -run TestScenarios -rewrite
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		e := &scenarioEnv{nodes: map[string]*scNode{}}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := e.run(d)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}

type scenarioEnv struct {
	nodes map[string]*scNode
	order []string
}

type scNode struct {
	name    string
	id      hlc.NodeID
	phys    int64
	clock   *hlc.Clock
	seq     uint64
	recs    map[string]*Record
	applied []*Write
	held    []*Write // arrived ahead of their origin's order
}

func (e *scenarioEnv) node(name string) *scNode {
	if n, ok := e.nodes[name]; ok {
		return n
	}
	n := &scNode{name: name, id: hlc.NodeID(len(e.nodes) + 1), phys: 1000, recs: map[string]*Record{}}
	n.clock = hlc.NewClock(func() int64 { return n.phys }, 0)
	e.nodes[name] = n
	e.order = append(e.order, name)
	return n
}

func (e *scenarioEnv) nameOf(id hlc.NodeID) string {
	for _, n := range e.nodes {
		if n.id == id {
			return n.name
		}
	}
	return id.String()
}

func (n *scNode) rec(id string) *Record {
	r := n.recs[id]
	if r == nil {
		r = &Record{}
		n.recs[id] = r
	}
	return r
}

func (e *scenarioEnv) dot(d Dot) string {
	return e.nameOf(d.Node) + ":" + strconv.FormatUint(d.Seq, 10)
}

func (e *scenarioEnv) run(d *datadriven.TestData) (string, error) {
	pos := []string{}
	for _, a := range d.CmdArgs {
		s := a.Key
		if len(a.Vals) > 0 {
			s += "=" + strings.Join(a.Vals, ",")
		}
		pos = append(pos, s)
	}
	need := func(k int) error {
		if len(pos) < k {
			return fmt.Errorf("%s needs %d arguments", d.Cmd, k)
		}
		return nil
	}
	switch d.Cmd {
	case "write", "delete":
		if err := need(2); err != nil {
			return "", err
		}
		n := e.node(pos[0])
		rec := n.rec(pos[1])
		n.seq++
		w := &Write{Table: "t", ID: pos[1], Origin: n.id, Seq: n.seq, TS: n.clock.Now(), Ctx: rec.Context(), Delete: d.Cmd == "delete"}
		for _, kv := range strings.Split(d.Input, "\n") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return "", fmt.Errorf("field %q: want name=json", kv)
			}
			val, err := ValueFromJSON([]byte(v))
			if err != nil {
				return "", err
			}
			w.Fields = append(w.Fields, FieldValue{k, val})
		}
		sort.Slice(w.Fields, func(i, j int) bool { return w.Fields[i].Name < w.Fields[j].Name })
		if err := w.Validate(); err != nil {
			n.seq--
			return "", err
		}
		var out Outcome
		rec.Apply(w, &out)
		n.applied = append(n.applied, w)
		return fmt.Sprintf("%s ts=%s ctx=%s\n%s", e.dot(w.Dot()), w.TS, e.vv(w.Ctx), e.outcome(&out)), nil
	case "tick":
		if err := need(2); err != nil {
			return "", err
		}
		ms, err := strconv.ParseInt(pos[1], 10, 64)
		if err != nil {
			return "", err
		}
		e.node(pos[0]).phys += ms
		return "", nil
	case "deliver":
		if err := need(2); err != nil {
			return "", err
		}
		from, to := e.node(pos[0]), e.node(pos[1])
		var ws []*Write
		if len(pos) == 2 {
			// Everything from has applied that to has not.
			for _, w := range from.applied {
				if !to.rec(w.ID).Applied.Covers(w.Dot()) {
					ws = append(ws, w)
				}
			}
		} else {
			for _, s := range pos[2:] {
				w, err := e.find(from, s)
				if err != nil {
					return "", err
				}
				ws = append(ws, w)
			}
		}
		var b strings.Builder
		for _, w := range ws {
			e.receive(to, w, &b)
		}
		for _, h := range to.held {
			fmt.Fprintf(&b, "%s holds back %s (predecessor missing)\n", to.name, e.dot(h.Dot()))
		}
		if b.Len() == 0 {
			b.WriteString("nothing to deliver\n")
		}
		return b.String(), nil
	case "show":
		if err := need(2); err != nil {
			return "", err
		}
		return e.show(e.node(pos[0]).rec(pos[1])), nil
	case "converged":
		if err := need(1); err != nil {
			return "", err
		}
		var first *scNode
		for _, name := range e.order {
			n := e.nodes[name]
			if first == nil {
				first = n
				continue
			}
			if n.rec(pos[0]).Digest() != first.rec(pos[0]).Digest() {
				return fmt.Sprintf("diverged: %s and %s\n", first.name, n.name), nil
			}
		}
		return "converged\n", nil
	}
	return "", fmt.Errorf("unknown command %q", d.Cmd)
}

func (e *scenarioEnv) find(n *scNode, s string) (*Write, error) {
	name, seq, ok := strings.Cut(s, ":")
	if !ok {
		return nil, fmt.Errorf("write %q: want NODE:SEQ", s)
	}
	origin := e.node(name).id
	q, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return nil, err
	}
	for _, w := range n.applied {
		if w.Origin == origin && w.Seq == q {
			return w, nil
		}
	}
	return nil, fmt.Errorf("%s has not applied %s", n.name, s)
}

func (e *scenarioEnv) receive(to *scNode, w *Write, b *strings.Builder) {
	to.held = append(to.held, w)
	for progress := true; progress; {
		progress = false
		for i, h := range to.held {
			rec := to.rec(h.ID)
			var out Outcome
			if err := to.clock.Update(h.TS); err != nil {
				panic(err)
			}
			rec.Apply(h, &out)
			if out.NotReady {
				continue
			}
			to.held = append(to.held[:i], to.held[i+1:]...)
			if out.Duplicate {
				fmt.Fprintf(b, "%s <- %s: duplicate\n", to.name, e.dot(h.Dot()))
			} else {
				to.applied = append(to.applied, h)
				fmt.Fprintf(b, "%s <- %s\n%s", to.name, e.dot(h.Dot()), e.outcome(&out))
			}
			progress = true
			break
		}
	}
}

func (e *scenarioEnv) vv(v VV) string {
	parts := make([]string, 0, len(v))
	for _, d := range v {
		parts = append(parts, e.dot(d))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func (e *scenarioEnv) entry(x Entry) string {
	if x.Value == nil && !x.Delete {
		return "write@" + e.dot(x.Dot())
	}
	if x.Delete {
		return fmt.Sprintf("(deleted)@%s", e.dot(x.Dot()))
	}
	return fmt.Sprintf("%s@%s", x.Value, e.dot(x.Dot()))
}

func (e *scenarioEnv) entries(xs []Entry) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = e.entry(x)
	}
	return strings.Join(parts, " ")
}

func (e *scenarioEnv) outcome(o *Outcome) string {
	var b strings.Builder
	for _, f := range o.Fields {
		switch {
		case f.Dead:
			fmt.Fprintf(&b, "  %s: arrived superseded\n", f.Name)
		default:
			fmt.Fprintf(&b, "  %s:", f.Name)
			if len(f.Superseded) > 0 {
				fmt.Fprintf(&b, " supersedes %s;", e.entries(f.Superseded))
			}
			if len(f.Concurrent) > 0 {
				fmt.Fprintf(&b, " concurrent with %s;", e.entries(f.Concurrent))
			}
			if len(f.Superseded) == 0 && len(f.Concurrent) == 0 {
				b.WriteString(" first value;")
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

func (e *scenarioEnv) show(r *Record) string {
	var b strings.Builder
	switch {
	case r.Exists():
		b.WriteString("exists")
	case r.Deleted():
		b.WriteString("deleted")
	default:
		b.WriteString("absent")
	}
	if r.ExistConflict() {
		fmt.Fprintf(&b, " (update and delete concurrent: %s)", e.entries(r.Exist))
	}
	b.WriteString("\n")
	names := r.FieldNames()
	for _, name := range names {
		c := r.Candidates(name)
		v, ok := r.Get(name)
		shown := "-"
		if ok {
			shown = v.String()
		}
		fmt.Fprintf(&b, "  %s = %s", name, shown)
		if len(c) > 1 && hasValue(c) {
			fmt.Fprintf(&b, "  conflict: %s", e.entries(c))
		}
		b.WriteString("\n")
	}
	return b.String()
}
