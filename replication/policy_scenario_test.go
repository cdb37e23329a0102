package replication

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/policy"
	"github.com/replicad/replicad/store"
)

// TestPolicyScenarios runs the datadriven scripts in testdata/policy: a
// hub that arbitrates per table (the arbiter helper) and devices, real
// stores and real sync sessions in the deterministic simulation. Each
// node's physical clock starts at the same instant and moves only with
// "tick". Node names print in place of node ids (name:seq is a write).
//
//	hub                     create the hub (first, before any device)
//	device NAME             create a device
//	policy TABLE KIND       the hub judges the writes to TABLE it applies
//	                        from now on under KIND
//	tick NAME MS            NAME's physical clock advances MS ms
//	write NAME TABLE ID     NAME writes fields of TABLE/ID, one name=json
//	                        per input line
//	delete NAME TABLE ID    NAME deletes TABLE/ID
//	offline NAME            NAME's sessions are refused until online
//	online NAME
//	sync A B                one sync session (A dials B); then, if the hub
//	                        took part, it carries out its decisions (shown)
//	show NAME TABLE ID      NAME's view of the record: existence, visible
//	                        values, candidates of conflicted fields, what a
//	                        person must choose under the table's policy
//	errors                  the hub's sync-error entries logged since the
//	                        last "errors"
//	heal                    rounds of sessions of every online device with
//	                        the hub (the hub deciding after each) until
//	                        every online node holds identical records
//	converged TABLE         every node holds identical records of TABLE
//
// Rewrite expectations with:
// go test ./replication -run TestPolicyScenarios -rewrite
func TestPolicyScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/policy", func(t *testing.T, path string) {
		e := &policyEnv{t: t, s: newSim(t), offline: map[string]bool{}}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			out, err := e.run(d)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			return out
		})
	})
}

type policyEnv struct {
	t        *testing.T
	s        *sim
	hub      *simNode
	arb      *arbiter
	offline  map[string]bool
	errsSeen uint64
}

func (e *policyEnv) node(name string) (*simNode, error) {
	n, ok := e.s.byName[name]
	if !ok {
		return nil, fmt.Errorf("no node %q", name)
	}
	return n, nil
}

func (e *policyEnv) nameOf(id hlc.NodeID) string {
	for _, n := range e.s.nodes {
		if n.st.NodeID() == id {
			return n.name
		}
	}
	return id.String()
}

func (e *policyEnv) dot(d crdt.Dot) string {
	return e.nameOf(d.Node) + ":" + strconv.FormatUint(d.Seq, 10)
}

func (e *policyEnv) vv(v crdt.VV) string {
	parts := make([]string, 0, len(v))
	for _, d := range v {
		parts = append(parts, e.dot(d))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

func (e *policyEnv) entries(xs []crdt.Entry) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = e.arb.entry(x)
	}
	return strings.Join(parts, " ")
}

func (e *policyEnv) kind(table string) policy.Kind {
	if k, ok := e.arb.policies[table]; ok {
		return k
	}
	return policy.LWW
}

func (e *policyEnv) run(d *datadriven.TestData) (string, error) {
	var pos []string
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
	needHub := func() error {
		if e.hub == nil {
			return errors.New("no hub yet")
		}
		return nil
	}
	switch d.Cmd {
	case "hub":
		if e.hub != nil || len(e.s.nodes) > 0 {
			return "", errors.New("the hub comes first, once")
		}
		e.hub = e.s.add("hub", "hub", FullScope())
		e.arb = newArbiter(e.s, e.hub, map[string]policy.Kind{})
		e.arb.name = e.nameOf
		return "", nil
	case "device":
		if err := need(1); err != nil {
			return "", err
		}
		if err := needHub(); err != nil {
			return "", err
		}
		if _, ok := e.s.byName[pos[0]]; ok {
			return "", fmt.Errorf("node %q exists", pos[0])
		}
		e.s.add(pos[0], "device", FullScope())
		return "", nil
	case "policy":
		if err := need(2); err != nil {
			return "", err
		}
		if err := needHub(); err != nil {
			return "", err
		}
		k, err := policy.Parse(pos[1])
		if err != nil {
			return "", err
		}
		e.arb.policies[pos[0]] = k
		return "", nil
	case "tick":
		if err := need(2); err != nil {
			return "", err
		}
		n, err := e.node(pos[0])
		if err != nil {
			return "", err
		}
		ms, err := strconv.ParseInt(pos[1], 10, 64)
		if err != nil {
			return "", err
		}
		n.phys += ms
		return "", nil
	case "write", "delete":
		if err := need(3); err != nil {
			return "", err
		}
		n, err := e.node(pos[0])
		if err != nil {
			return "", err
		}
		var fs []crdt.FieldValue
		for _, kv := range strings.Split(d.Input, "\n") {
			if strings.TrimSpace(kv) == "" {
				continue
			}
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return "", fmt.Errorf("field %q: want name=json", kv)
			}
			val, err := crdt.ValueFromJSON([]byte(v))
			if err != nil {
				return "", err
			}
			fs = append(fs, crdt.FieldValue{Name: k, Value: val})
		}
		sort.Slice(fs, func(i, j int) bool { return fs[i].Name < fs[j].Name })
		r, err := n.st.WriteWith(n.clock, pos[1], pos[2], fs, d.Cmd == "delete", n.local.LocalWriteHook())
		if err != nil {
			return "", err
		}
		n.acked = append(n.acked, r.Write)
		return fmt.Sprintf("%s ctx=%s\n", e.dot(r.Write.Dot()), e.vv(r.Write.Ctx)), nil
	case "offline", "online":
		if err := need(1); err != nil {
			return "", err
		}
		if _, err := e.node(pos[0]); err != nil {
			return "", err
		}
		e.offline[pos[0]] = d.Cmd == "offline"
		return "", nil
	case "sync":
		if err := need(2); err != nil {
			return "", err
		}
		a, err := e.node(pos[0])
		if err != nil {
			return "", err
		}
		b, err := e.node(pos[1])
		if err != nil {
			return "", err
		}
		for _, n := range []*simNode{a, b} {
			if e.offline[n.name] {
				return fmt.Sprintf("refused: %s is offline\n", n.name), nil
			}
		}
		sa, sb, err := e.s.session(a, b, 0)
		if err != nil {
			return "", err
		}
		var out strings.Builder
		fmt.Fprintf(&out, "%s applied %d, %s applied %d\n", a.name, sa.WritesApplied, b.name, sb.WritesApplied)
		if sa.Parked+sb.Parked > 0 {
			fmt.Fprintf(&out, "parked beyond the clock bound: %s %d, %s %d\n", a.name, sa.Parked, b.name, sb.Parked)
		}
		if a == e.hub || b == e.hub {
			out.WriteString(e.settle())
		}
		return out.String(), nil
	case "show":
		if err := need(3); err != nil {
			return "", err
		}
		n, err := e.node(pos[0])
		if err != nil {
			return "", err
		}
		rec, err := n.st.Get(pos[1], pos[2])
		if errors.Is(err, store.ErrNotFound) {
			return "not found\n", nil
		}
		if err != nil {
			return "", err
		}
		return e.show(pos[1], rec), nil
	case "errors":
		if err := needHub(); err != nil {
			return "", err
		}
		errs, err := e.hub.st.ListSyncErrors(e.errsSeen, 1000)
		if err != nil {
			return "", err
		}
		if len(errs) == 0 {
			return "no new sync errors\n", nil
		}
		var b strings.Builder
		for _, x := range errs {
			e.errsSeen = x.ID
			fields := strings.Join(x.Fields, ",")
			if fields == "" {
				fields = "(record)"
			}
			fmt.Fprintf(&b, "%s/%s %s %s: %s\n", x.Table, x.Record, fields, x.Policy, x.Detail)
		}
		return b.String(), nil
	case "heal":
		if err := needHub(); err != nil {
			return "", err
		}
		var online []*simNode
		for _, n := range e.s.nodes {
			if !e.offline[n.name] {
				online = append(online, n)
			}
		}
		var b strings.Builder
		for round := 1; round <= 4; round++ {
			for _, n := range online {
				if n == e.hub {
					continue
				}
				if _, _, err := e.s.session(n, e.hub, 0); err != nil {
					return "", err
				}
				b.WriteString(e.settle())
			}
			if converged(e.t, online) {
				fmt.Fprintf(&b, "healed after %d rounds\n", round)
				return b.String(), nil
			}
		}
		b.WriteString("not healed after 4 rounds\n")
		return b.String(), nil
	case "converged":
		if err := need(1); err != nil {
			return "", err
		}
		first := e.s.nodes[0]
		for _, n := range e.s.nodes[1:] {
			if digest(e.t, n, pos[0]) != digest(e.t, first, pos[0]) {
				return fmt.Sprintf("diverged: %s and %s\n", first.name, n.name), nil
			}
		}
		return "converged\n", nil
	}
	return "", fmt.Errorf("unknown command %q", d.Cmd)
}

// settle has the hub carry out its queued decisions and describes them.
func (e *policyEnv) settle() string {
	var b strings.Builder
	for _, p := range e.arb.pending {
		var acts []string
		if p.d.Rejected {
			acts = append(acts, "rejects it")
		}
		if p.d.Redelete {
			acts = append(acts, "deletes again")
		}
		if len(p.d.Fields) > 0 || p.d.Write {
			var fs []string
			for _, f := range p.d.Fields {
				v := f.Value.String()
				if f.Value.IsCleared() {
					v = "(cleared)"
				}
				fs = append(fs, f.Name+"="+v)
			}
			acts = append(acts, "writes {"+strings.Join(fs, " ")+"}")
		}
		if len(acts) == 0 {
			acts = append(acts, "logs only")
		}
		fmt.Fprintf(&b, "hub judges %s (%s): %s\n", e.dot(p.w.Dot()), p.kind, strings.Join(acts, ", "))
	}
	e.arb.settle(e.t)
	return b.String()
}

func (e *policyEnv) show(table string, r *crdt.Record) string {
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
	for _, name := range r.FieldNames() {
		c := r.Candidates(name)
		shown := "-"
		if v, ok := r.Get(name); ok {
			shown = v.String()
		}
		fmt.Fprintf(&b, "  %s = %s", name, shown)
		if len(c) > 1 {
			fmt.Fprintf(&b, "  candidates: %s", e.entries(c))
		}
		b.WriteString("\n")
	}
	if cs := policy.Conflicts(e.kind(table), r); len(cs) > 0 {
		var names []string
		for _, c := range cs {
			if c.Field == "" {
				names = append(names, "(existence)")
			} else {
				names = append(names, c.Field)
			}
		}
		fmt.Fprintf(&b, "  to choose: %s\n", strings.Join(names, ", "))
	}
	return b.String()
}
