package agent

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
	"github.com/replicad/replicad/internal/ext/authz"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
	"github.com/replicad/replicad/store"
)

// grantTable is the system table through which hubs distribute their
// signed permission statements (secure.Grant): one record per permission
// rule (its id the rule's name), one field per hub that signed it
// ("hub-" and the hub's node id), whose value is the encoded grant. Two
// hubs publishing the same rules each keep their own field, so their
// writes never contend; a reader takes, per rule, the newest-issued grant
// that verifies and is valid at the time of use, from whichever hub. Like
// every _replicad_* table it replicates to every node in every scope.
const grantTable = "_replicad_grants"

const grantFieldPrefix = "hub-"

func grantField(issuer hlc.NodeID) string { return grantFieldPrefix + issuer.String() }

// Peer relay modes (--peer-relay).

// grantReverify is how long a verified grant is trusted before its
// signer's certificate is checked again (a revocation takes effect
// within it).
const grantReverify = 30 * time.Second

// grantBook holds the grants of grantTable that verified: what this node
// knows, signed by a hub, of what each node may write and read.
type grantBook struct {
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
	perms *authz.Rules
	ok    bool
}

func newGrantBook(t *secure.TLS, log hclog.Logger) *grantBook {
	return &grantBook{tls: t, log: log.Named("grants"), now: time.Now, dirty: true, cache: map[string]*bookEntry{}}
}

// setStore points the book at the replica's store (at open, and after a
// reset or a reopen).
func (b *grantBook) setStore(st *store.Store) {
	b.st.Store(st)
	b.invalidate()
}

// invalidate makes the next lookup read the table again.
func (b *grantBook) invalidate() {
	b.mu.Lock()
	b.dirty = true
	b.mu.Unlock()
}

// touches reports whether writes include one to grantTable.
func touchesGrants(writes []*crdt.Write) bool {
	for _, w := range writes {
		if w.Table == grantTable {
			return true
		}
	}
	return false
}

// refreshLocked reads the table again if it changed or the verifications
// are older than grantReverify.
func (b *grantBook) refreshLocked(now time.Time) {
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
		recs, next, err := st.Scan(grantTable, after, 500)
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
func (b *grantBook) verify(id, field string, v crdt.Value, now time.Time) *bookEntry {
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
	case field != grantField(hlc.NodeID(g.Issuer)):
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
		if _, err := authz.Compile([]Permission{grantPermission(g)}); err != nil {
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
func grantPermission(g *secure.Grant) Permission {
	return Permission{Name: g.Rule, Nodes: g.Nodes, Write: g.Write, Read: g.Read, ReadSet: g.ReadSet}
}

// current returns, per rule, the newest-issued grant valid at now, and
// when that choice may change next (a grant's validity starts or ends).
func (b *grantBook) currentLocked(now time.Time) ([]*bookEntry, time.Time) {
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

// rules returns the compiled rules of the grants valid at now that name
// node (see Agent.grantRules).
func (b *grantBook) rules(node hlc.NodeID, now time.Time) (*authz.Rules, bool) {
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
	var ps []Permission
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
		perms, err := authz.Compile(ps)
		if err == nil {
			m = memoRules{perms: perms, ok: true}
		}
	}
	b.memo[node] = m
	return m.perms, m.ok
}

// hasGrants reports whether the table holds any grant that verified
// (valid now or not): this node is in a cluster with permissions, so a
// device peer's writes need their origin's grant.
func (b *grantBook) hasGrants(now time.Time) bool {
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

// origins returns the node matches of the grants valid at now.
func (b *grantBook) origins(now time.Time) []replication.OriginMatch {
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

// grantRules returns the write and read rules that a hub of this cluster
// granted node, as compiled permissions (compilePermissions), from the
// grants of the _replicad_grants table that verify (signed by a hub of
// this cluster whose certificate is valid and not revoked) and are valid
// at now: per permission rule the newest-issued such grant, from any hub;
// node gets the rules of every such grant whose nodes match it (it may do
// what any of them allows, as on the hub). ok is false when no such grant
// names node (none was published, they expired, or this node has no TLS):
// the node's permissions are then unknown here, which is not the same as
// unrestricted. The result is shared and read-only. Safe for concurrent
// use; cheap to call per write (compiled rules are memoized until the
// table changes or a grant's validity starts or ends).
func (a *Agent) grantRules(node hlc.NodeID, now time.Time) (*authz.Rules, bool) {
	if a.sec == nil || a.sec.grants == nil {
		return nil, false
	}
	return a.sec.grants.rules(node, now)
}

// peerFilter returns what this node takes from device peer p (see
// replication.WriteFilter): in a TLS cluster, a device's writes reach
// other nodes unjudged by any hub, so
//
//   - on a hub (which judges every write by its configured rules, the
//     enforcer), mode own takes only the peer's own writes; granted takes
//     every origin's (nil filter);
//   - on a device, with no grant known at all (a cluster without
//     permissions, or a device that has not yet met a hub), only the
//     peer's own writes, unjudged; otherwise mode own takes the peer's own
//     writes within its grant, and granted takes the writes of every
//     origin that has a valid grant, each within it. A write of an origin
//     with no valid grant is refused (not held): it arrives from a hub.
func (s *security) peerFilter(p replication.Peer, isHub bool) *replication.WriteFilter {
	if p.Role != "device" {
		return nil
	}
	mode := s.cfg.Security.PeerRelay
	own := []replication.OriginMatch{{Node: p.Node, Bits: 64}}
	onRefused := s.refusedLogger(p.Node)
	if isHub {
		if mode == config.PeerRelayGranted {
			return nil
		}
		return &replication.WriteFilter{Origins: own, OnRefused: onRefused}
	}
	b := s.grants
	now := b.now()
	if !b.hasGrants(now) {
		return &replication.WriteFilter{Origins: own, OnRefused: onRefused}
	}
	check := func(w *crdt.Write) string {
		perms, ok := b.rules(w.Origin, b.now())
		if !ok {
			return fmt.Sprintf("no valid grant for origin %s", w.Origin)
		}
		if why := perms.Check(w); why != "" {
			return "outside its grant: " + why
		}
		return ""
	}
	f := &replication.WriteFilter{Check: check, OnRefused: onRefused}
	switch mode {
	case config.PeerRelayGranted:
		f.Origins = b.origins(now)
	default:
		if _, ok := b.rules(p.Node, now); ok {
			f.Origins = own
		}
	}
	return f
}

// refusedLogger logs refused writes from a peer, at most one line per
// peer every 10 s (with the count of those not logged).
func (s *security) refusedLogger(peer hlc.NodeID) func(w *crdt.Write, reason string) {
	return func(w *crdt.Write, reason string) {
		if ok, n := s.refusedLog.Allow(peer); ok {
			s.log.Warn("write from a device peer refused (not applied, not held: it comes from a hub)", "peer", peer,
				"origin", w.Origin, "seq", w.Seq, "table", w.Table, "id", w.ID, "reason", reason, "refused_since_last_line", n)
		}
	}
}

// refusedLogInterval is how often refused writes of one peer or origin
// are logged at most.
const refusedLogInterval = 10 * time.Second

// publishGrants writes this hub's grant of every configured rule into
// grantTable where it is missing, differs from the rule, or is past half
// its validity, and clears its grants of rules no longer configured.
func (r *replica) publishGrants(now time.Time) error {
	s := r.a.sec
	if s == nil || s.tls == nil || s.tls.Self().Role != "hub" {
		return nil
	}
	validity := s.grantValidity()
	configured := map[string]bool{}
	field := grantField(r.node)
	wrote := false
	for _, p := range r.a.cfg.Security.Permissions {
		configured[p.Name] = true
		if !store.ValidID(p.Name) {
			r.a.log.Error("permission rule not published as a grant: its name is not a valid record id", "rule", p.Name)
			continue
		}
		g := secure.Grant{Cluster: r.a.cfg.ClusterID, Rule: p.Name, Nodes: p.Nodes, Write: p.Write, Read: p.Read, ReadSet: p.ReadSet || len(p.Read) > 0,
			IssuedMs: now.UnixMilli(), ExpiresMs: now.Add(validity).UnixMilli(), Issuer: uint64(r.node)}
		if g.Write == nil {
			g.Write = []string{}
		}
		if cur := r.currentGrant(p.Name, field); cur != nil && sameRule(cur, &g) &&
			now.Sub(cur.IssuedAt()) < resignAge(validity) && !now.Before(cur.IssuedAt()) && cur.ExpiresMs-cur.IssuedMs == validity.Milliseconds() {
			continue
		}
		enc, err := s.tls.SignGrant(g)
		if err != nil {
			return fmt.Errorf("signing the grant of rule %q: %w", p.Name, err)
		}
		if _, err := r.localWrite(grantTable, p.Name, []crdt.FieldValue{{Name: field, Value: crdt.MustValue(string(enc))}}, false); err != nil {
			return fmt.Errorf("publishing the grant of rule %q: %w", p.Name, err)
		}
		wrote = true
		r.a.log.Info("grant published", "rule", p.Name, "expires", g.ExpiresAt().UTC().Format(time.RFC3339))
	}
	// Rules removed from the configuration: clear this hub's grants.
	after := ""
	for {
		recs, next, err := r.store.Scan(grantTable, after, 500)
		if err != nil {
			return err
		}
		for _, re := range recs {
			if configured[re.ID] {
				continue
			}
			if _, ok := re.Record.Get(field); !ok {
				continue
			}
			if _, err := r.localWrite(grantTable, re.ID, []crdt.FieldValue{{Name: field, Value: crdt.Cleared}}, false); err != nil {
				return err
			}
			wrote = true
			r.a.log.Info("grant withdrawn: the rule is no longer configured", "rule", re.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if wrote && s.grants != nil {
		s.grants.invalidate()
	}
	return nil
}

// resignAge is the age at which a grant is re-signed: with checks every
// validity/8 (watchGrants), a grant is re-signed before half its validity
// has passed.
func resignAge(validity time.Duration) time.Duration { return validity * 3 / 8 }

// currentGrant decodes this hub's grant of rule (nil if none or
// undecodable).
func (r *replica) currentGrant(rule, field string) *secure.Grant {
	rec, err := r.store.Get(grantTable, rule)
	if err != nil {
		return nil
	}
	v, ok := rec.Get(field)
	if !ok {
		return nil
	}
	x, err := v.Decode()
	raw, isStr := x.(string)
	if err != nil || !isStr {
		return nil
	}
	sg, err := secure.DecodeGrant([]byte(raw))
	if err != nil {
		return nil
	}
	return &sg.Grant
}

func sameRule(a, b *secure.Grant) bool {
	eq := func(x, y []string) bool {
		return strings.Join(x, "\x00") == strings.Join(y, "\x00") && len(x) == len(y)
	}
	return a.Cluster == b.Cluster && a.Rule == b.Rule && a.Issuer == b.Issuer && a.ReadSet == b.ReadSet &&
		eq(a.Nodes, b.Nodes) && eq(a.Write, b.Write) && eq(a.Read, b.Read)
}

// watchGrants re-publishes the grants as they age (a hub with TLS and
// permissions), checking every eighth of their validity.
func (r *replica) watchGrants(done <-chan struct{}) {
	every := r.a.sec.grantValidity() / 8
	if every < 100*time.Millisecond {
		every = 100 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if err := r.publishGrants(time.Now()); err != nil {
				r.a.log.Error("re-signing the grants failed (they expire if this persists)", "error", err)
			}
		}
	}
}

// GrantStatus is one grant of GET /v1/grants: what a hub signed for a
// permission rule, and whether this node takes it now (package api).
type GrantStatus = api.GrantStatus

// grantStatus lists the grants of _replicad_grants as this node judges
// them (TLS only; an empty list otherwise).
func (s *security) grantStatus() []GrantStatus {
	out := []GrantStatus{}
	if s == nil || s.grants == nil {
		return out
	}
	b := s.grants
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refreshLocked(now)
	cur, _ := b.currentLocked(now)
	inForce := map[*bookEntry]bool{}
	for _, e := range cur {
		inForce[e] = true
	}
	for _, e := range b.entries {
		st := GrantStatus{Rule: e.rule, InForce: inForce[e]}
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
