package authz

import (
	"fmt"
	"strings"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/internal/ext/extapi"
	"github.com/replicad/replicad/secure"
	"github.com/replicad/replicad/store"
)

// PublishHost is what a hub's grant publisher needs of its node: the
// store, the node id, a logger and the write pipeline.
type PublishHost interface {
	extapi.Node
	extapi.Writer
}

// Publisher publishes a hub's grants of the configured permission rules
// into GrantTable, each in the hub's own field (GrantField), and keeps
// them re-signed as they age.
type Publisher struct {
	h        PublishHost
	tls      *secure.TLS
	grants   *Grants // invalidated when a grant changes; may be nil
	cluster  string
	rules    []config.Permission
	validity time.Duration
}

// NewPublisher returns the publisher of a hub whose TLS identity is t
// (nil: nothing is published), signing grants of rules valid for validity.
func NewPublisher(h PublishHost, t *secure.TLS, grants *Grants, cluster string, rules []config.Permission, validity time.Duration) *Publisher {
	return &Publisher{h: h, tls: t, grants: grants, cluster: cluster, rules: rules, validity: validity}
}

// Publish writes this hub's grant of every configured rule into
// GrantTable where it is missing, differs from the rule, or is past half
// its validity, and clears its grants of rules no longer configured.
func (p *Publisher) Publish(now time.Time) error {
	if p.tls == nil || p.tls.Self().Role != "hub" {
		return nil
	}
	st, self, log := p.h.Store(), p.h.ID(), p.h.Log()
	configured := map[string]bool{}
	field := GrantField(self)
	wrote := false
	for _, r := range p.rules {
		configured[r.Name] = true
		if !store.ValidID(r.Name) {
			log.Error("permission rule not published as a grant: its name is not a valid record id", "rule", r.Name)
			continue
		}
		g := secure.Grant{Cluster: p.cluster, Rule: r.Name, Nodes: r.Nodes, Write: r.Write, Read: r.Read, ReadSet: r.ReadSet || len(r.Read) > 0,
			IssuedMs: now.UnixMilli(), ExpiresMs: now.Add(p.validity).UnixMilli(), Issuer: uint64(self)}
		if g.Write == nil {
			g.Write = []string{}
		}
		if cur := p.Current(r.Name); cur != nil && sameRule(cur, &g) &&
			now.Sub(cur.IssuedAt()) < ResignAge(p.validity) && !now.Before(cur.IssuedAt()) && cur.ExpiresMs-cur.IssuedMs == p.validity.Milliseconds() {
			continue
		}
		enc, err := p.tls.SignGrant(g)
		if err != nil {
			return fmt.Errorf("signing the grant of rule %q: %w", r.Name, err)
		}
		if _, err := p.h.Write(GrantTable, r.Name, []crdt.FieldValue{{Name: field, Value: crdt.MustValue(string(enc))}}, false, nil); err != nil {
			return fmt.Errorf("publishing the grant of rule %q: %w", r.Name, err)
		}
		wrote = true
		log.Info("grant published", "rule", r.Name, "expires", g.ExpiresAt().UTC().Format(time.RFC3339))
	}
	// Rules removed from the configuration: clear this hub's grants.
	after := ""
	for {
		recs, next, err := st.Scan(GrantTable, after, 500)
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
			if _, err := p.h.Write(GrantTable, re.ID, []crdt.FieldValue{{Name: field, Value: crdt.Cleared}}, false, nil); err != nil {
				return err
			}
			wrote = true
			log.Info("grant withdrawn: the rule is no longer configured", "rule", re.ID)
		}
		if next == "" {
			break
		}
		after = next
	}
	if wrote && p.grants != nil {
		p.grants.Invalidate()
	}
	return nil
}

// ResignAge is the age at which a grant is re-signed: with checks every
// validity/8 (Watch), a grant is re-signed before half its validity has
// passed.
func ResignAge(validity time.Duration) time.Duration { return validity * 3 / 8 }

// Current decodes this hub's grant of rule (nil if none or undecodable).
func (p *Publisher) Current(rule string) *secure.Grant {
	rec, err := p.h.Store().Get(GrantTable, rule)
	if err != nil {
		return nil
	}
	v, ok := rec.Get(GrantField(p.h.ID()))
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

// Watch re-publishes the grants as they age, checking every eighth of
// their validity, until done.
func (p *Publisher) Watch(done <-chan struct{}) {
	every := p.validity / 8
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
			if err := p.Publish(time.Now()); err != nil {
				p.h.Log().Error("re-signing the grants failed (they expire if this persists)", "error", err)
			}
		}
	}
}
