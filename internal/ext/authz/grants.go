package authz

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/api"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
	"github.com/replicad/replicad/store"
)

// GrantTable is the system table through which hubs distribute their
// signed permission statements (secure.Grant): one record per permission
// rule (its id the rule's name), one field per hub that signed it
// ("hub-" and the hub's node id), whose value is the encoded grant. Two
// hubs publishing the same rules each keep their own field, so their
// writes never contend; a reader takes, per rule, the newest-issued grant
// that verifies and is valid at the time of use, from whichever hub. Like
// every _replicad_* table it replicates to every node in every scope.
// (The name and its writers are stated with every system table's, in
// node.SysTables.)
const GrantTable = node.GrantTable

const grantFieldPrefix = node.GrantFieldPrefix

// GrantField is the field of GrantTable where issuer publishes its grant.
func GrantField(issuer hlc.NodeID) string { return node.GrantField(issuer) }

// grantReverify is how long a verified grant is trusted before its
// signer's certificate is checked again (a revocation takes effect
// within it).
const grantReverify = 30 * time.Second

// Grants holds the grants of GrantTable that verified: what this node
// knows, signed by a hub, of what each node may write and read.
type Grants struct {
	tls *secure.TLS
	log hclog.Logger
	st  atomic.Pointer[store.Store]
	now func() time.Time

	mu         sync.Mutex
	dirty      bool
	verifiedAt time.Time
	cache      map[string]*bookEntry // by encoding: verified (or refused) grants
	entries    []*bookEntry          // the grants of the table, verified
	gen        uint64                // moves when entries change
	memo       map[hlc.NodeID]memoRules
	memoGen    uint64
	memoFrom   time.Time // the memo holds from its time of computation
	memoUntil  time.Time // until a grant's validity starts or ends
}

// bookEntry is one grant of the table.
type bookEntry struct {
	rule    string
	g       *secure.Grant
	matches []config.NodeMatch
	err     error // refused (logged once)
}

type memoRules struct {
	perms *Rules
	ok    bool
}

// NewGrants returns the grants of a node with TLS identity t.
func NewGrants(t *secure.TLS, log hclog.Logger) *Grants {
	return &Grants{tls: t, log: log.Named("grants"), now: time.Now, dirty: true, cache: map[string]*bookEntry{}}
}

// SetStore points the book at the replica's store (at open, and after a
// reset or a reopen).
func (b *Grants) SetStore(st *store.Store) {
	b.st.Store(st)
	b.Invalidate()
}

// Invalidate makes the next lookup read the table again.
func (b *Grants) Invalidate() {
	b.mu.Lock()
	b.dirty = true
	b.mu.Unlock()
}

// Applied is told of applied remote writes (an observer of the node's
// committed batches): a write to GrantTable empties the cache of
// verified grants.
func (g *Grants) Applied(_ hlc.NodeID, writes []*crdt.Write, _ *store.Result) {
	if TouchesGrants(writes) {
		g.Invalidate()
	}
}

// TouchesGrants reports whether writes include one to GrantTable.
func TouchesGrants(writes []*crdt.Write) bool {
	for _, w := range writes {
		if w.Table == GrantTable {
			return true
		}
	}
	return false
}

// refreshLocked reads the table again if it changed or the verifications
// are older than grantReverify.
func (b *Grants) refreshLocked(now time.Time) {
	reverify := now.Sub(b.verifiedAt) >= grantReverify || now.Before(b.verifiedAt)
	if !b.dirty && !reverify {
		return
	}
	if reverify {
		b.cache = map[string]*bookEntry{}
		b.verifiedAt = now
	}
	st := b.st.Load()
	if st == nil {
		return
	}
	var entries []*bookEntry
	after := ""
	for {
		recs, next, err := st.Scan(GrantTable, after, 500)
		if err != nil {
			if !errors.Is(err, store.ErrClosed) {
				b.log.Error("reading the grants failed (the last ones read stay)", "error", err)
			}
			return
		}
		for _, re := range recs {
			if !re.Record.Exists() {
				continue
			}
			re.Record.Visible(func(name string, v crdt.Value) {
				if !strings.HasPrefix(name, grantFieldPrefix) {
					return
				}
				entries = append(entries, b.verify(re.ID, name, v, now))
			})
		}
		if next == "" {
			break
		}
		after = next
	}
	b.entries = entries
	b.dirty = false
	b.gen++
}

// verify checks one grant value (cached by its encoding).
func (b *Grants) verify(id, field string, v crdt.Value, now time.Time) *bookEntry {
	x, err := v.Decode()
	raw, isStr := x.(string)
	if err != nil || !isStr {
		e := &bookEntry{rule: id, err: fmt.Errorf("grant %s/%s: not a string", id, field)}
		b.log.Warn("grant record refused", "record", id, "field", field, "reason", e.err)
		return e
	}
	if e, ok := b.cache[raw]; ok && e.rule == id {
		return e
	}
	e := &bookEntry{rule: id}
	g, signer, err := b.tls.CheckGrant([]byte(raw), now)
	switch {
	case err != nil:
		e.err = err
	case g.Rule != id:
		e.err = fmt.Errorf("grant of rule %q in the record of rule %q", g.Rule, id)
	case field != GrantField(hlc.NodeID(g.Issuer)):
		e.err = fmt.Errorf("grant issued by %016x in field %s", g.Issuer, field)
	}
	if e.err == nil {
		for _, n := range g.Nodes {
			m, err := config.ParseNodeMatch(n)
			if err != nil {
				e.err = err
				break
			}
			e.matches = append(e.matches, m)
		}
	}
	if e.err == nil {
		// The rule must compile as the hub's did.
		if _, err := Compile([]config.Permission{grantPermission(g)}); err != nil {
			e.err = err
		}
	}
	if e.err != nil {
		b.log.Warn("grant record refused: its rule is not applied", "record", id, "field", field, "reason", e.err)
	} else {
		e.g = g
		b.log.Debug("grant verified", "rule", id, "issuer", hlc.NodeID(g.Issuer), "signer", signer.Name, "expires", g.ExpiresAt().UTC())
	}
	b.cache[raw] = e
	return e
}

// grantPermission is the permission rule a grant states.
func grantPermission(g *secure.Grant) config.Permission {
	return config.Permission{Name: g.Rule, Nodes: g.Nodes, Write: g.Write, Read: g.Read, ReadSet: g.ReadSet}
}

// current returns, per rule, the newest-issued grant valid at now, and
// when that choice may change next (a grant's validity starts or ends).
func (b *Grants) currentLocked(now time.Time) ([]*bookEntry, time.Time) {
	best := map[string]*bookEntry{}
	until := now.Add(grantReverify)
	ms := now.UnixMilli()
	for _, e := range b.entries {
		if e.err != nil {
			continue
		}
		start := e.g.IssuedMs - secure.GrantClockSkew.Milliseconds()
		if start > ms {
			until = minTime(until, time.UnixMilli(start))
			continue
		}
		if e.g.ExpiresMs <= ms {
			continue
		}
		until = minTime(until, time.UnixMilli(e.g.ExpiresMs))
		if cur := best[e.rule]; cur == nil || e.g.IssuedMs > cur.g.IssuedMs ||
			e.g.IssuedMs == cur.g.IssuedMs && e.g.Issuer > cur.g.Issuer {
			best[e.rule] = e
		}
	}
	out := make([]*bookEntry, 0, len(best))
	for _, e := range best {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rule < out[j].rule })
	return out, until
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// Rules returns the compiled rules of the grants valid at now that name
// node (see Agent.grantRules).
func (b *Grants) Rules(node hlc.NodeID, now time.Time) (*Rules, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refreshLocked(now)
	if b.memo == nil || b.memoGen != b.gen || !now.Before(b.memoUntil) || now.Before(b.memoFrom) {
		b.memo = map[hlc.NodeID]memoRules{}
		b.memoGen, b.memoFrom = b.gen, now
		_, b.memoUntil = b.currentLocked(now)
	}
	if m, ok := b.memo[node]; ok {
		return m.perms, m.ok
	}
	cur, _ := b.currentLocked(now)
	var ps []config.Permission
	for _, e := range cur {
		for _, m := range e.matches {
			if m.Matches(node) {
				ps = append(ps, grantPermission(e.g))
				break
			}
		}
	}
	var m memoRules
	if len(ps) > 0 {
		perms, err := Compile(ps)
		if err == nil {
			m = memoRules{perms: perms, ok: true}
		}
	}
	b.memo[node] = m
	return m.perms, m.ok
}

// HasGrants reports whether the table holds any grant that verified
// (valid now or not): this node is in a cluster with permissions, so a
// device peer's writes need their origin's grant.
func (b *Grants) HasGrants(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refreshLocked(now)
	for _, e := range b.entries {
		if e.err == nil {
			return true
		}
	}
	return false
}

// Origins returns the node matches of the grants valid at now.
func (b *Grants) Origins(now time.Time) []replication.OriginMatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refreshLocked(now)
	cur, _ := b.currentLocked(now)
	var out []replication.OriginMatch
	for _, e := range cur {
		for _, m := range e.matches {
			out = append(out, replication.OriginMatch{Node: hlc.NodeID(m.ID), Bits: m.Bits})
		}
	}
	return out
}

// Status lists the grants of GrantTable as this node judges them now.
func (b *Grants) Status() []api.GrantStatus { return b.StatusAt(b.now()) }

// StatusAt lists the grants of GrantTable as this node judges them at
// now.
func (b *Grants) StatusAt(now time.Time) []api.GrantStatus {
	out := []api.GrantStatus{}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refreshLocked(now)
	cur, _ := b.currentLocked(now)
	inForce := map[*bookEntry]bool{}
	for _, e := range cur {
		inForce[e] = true
	}
	for _, e := range b.entries {
		st := api.GrantStatus{Rule: e.rule, InForce: inForce[e]}
		if e.err != nil {
			st.Refused = e.err.Error()
		} else {
			g := e.g
			st.Issuer, st.Nodes, st.Write, st.Read, st.ReadSet = hlc.NodeID(g.Issuer).String(), g.Nodes, g.Write, g.Read, g.ReadSet
			st.IssuedAt, st.ExpiresAt = g.IssuedAt().UTC(), g.ExpiresAt().UTC()
		}
		out = append(out, st)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Rule < out[j].Rule })
	return out
}

// Now is the time the grants are judged at.
func (b *Grants) Now() time.Time { return b.now() }

// SetNow sets the clock the grants are judged by (tests).
func (b *Grants) SetNow(now func() time.Time) { b.now = now }
