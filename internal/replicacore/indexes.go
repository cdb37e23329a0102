package replicacore

import (
	"context"
	"time"

	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/store"
)

// The indexes a replica keeps follow the declarations the hubs
// distribute (node.IndexTable): a loop, started by Start, declares in the
// store each index declared (built in the background, store.DeclareIndex),
// rebuilds one whose declaration changed, and drops one no longer
// declared. A store encrypted at rest keeps none (their keys would hold
// field values in the clear): the loop logs it once, queries scan, and
// the status says so (node.IndexStatus). Builds are logged: their start,
// their progress every tenth of the table or every 10 s, their end.

// indexPoll is how often the loop looks for a changed declaration (a
// table version read) and a build's progress.
const indexPoll = 200 * time.Millisecond

// indexLogEvery is the longest a build runs without a progress line.
const indexLogEvery = 10 * time.Second

// build is a build the loop reports on.
type build struct {
	started time.Time
	total   int64 // the table's records when it started (an estimate)
	pct     int64 // the last tenth logged
	logged  time.Time
}

// runIndexes is the reconcile loop (until ctx is done).
func (c *Core) runIndexes(ctx context.Context) {
	tick := time.NewTicker(indexPoll)
	defer tick.Stop()
	builds := map[string]*build{}
	first, offLogged := true, false
	var ver uint64
	for {
		if v := c.Store.TableVersion(node.IndexTable); first || v != ver {
			off, err := c.reconcileIndexes(builds, first)
			if err != nil && c.Store.Failed() == nil && ctx.Err() == nil {
				// Tried again when the declarations change (or at the
				// next start).
				c.log.Error("indexes: applying the declarations", "error", err)
			}
			ver, first = v, false
			if off && !offLogged {
				c.log.Warn("indexes: off, the store is encrypted at rest (index keys would hold field values in the clear); queries scan")
			}
			offLogged = offLogged || off
		}
		c.reportBuilds(builds)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reconcileIndexes makes the store's indexes those declared; off is true
// when indexes are declared but the store is encrypted.
func (c *Core) reconcileIndexes(builds map[string]*build, first bool) (off bool, err error) {
	decl, err := c.Node.DeclaredIndexes()
	if err != nil {
		return false, err
	}
	if c.Store.Encrypted() {
		return len(decl) > 0, nil
	}
	want := map[string]store.IndexDef{}
	for _, d := range decl {
		want[d.Name] = d
	}
	for _, x := range c.Store.Indexes() {
		d, ok := want[x.Name]
		switch {
		case !ok:
			if err := c.Store.DropIndex(x.Name); err != nil {
				return false, err
			}
			delete(builds, x.Name)
			c.log.Info("index dropped (no longer declared)", "index", x.Name, "table", x.Table)
		case d.Table == x.Table && sameFields(d.Fields, x.Fields):
			delete(want, x.Name)
			if first && !x.Built { // a build a restart interrupted
				c.track(builds, d, "index build resumed")
			}
		}
	}
	for _, d := range decl {
		if _, ok := want[d.Name]; !ok {
			continue
		}
		if err := c.Store.DeclareIndex(d); err != nil {
			return false, err
		}
		c.track(builds, d, "index build started")
	}
	return false, nil
}

// track starts reporting on d's build.
func (c *Core) track(builds map[string]*build, d store.IndexDef, msg string) {
	b := &build{started: time.Now(), total: c.countRecords(d.Table)}
	b.logged = b.started
	builds[d.Name] = b
	c.log.Info(msg, "index", d.Name, "table", d.Table, "fields", d.Fields, "records", b.total)
}

// countRecords counts table's records (for a build's progress).
func (c *Core) countRecords(table string) int64 {
	var n int64
	after := ""
	for {
		page, next, err := c.Store.ScanRaw(table, after, 1000)
		if err != nil {
			return n
		}
		n += int64(len(page))
		if next == "" {
			return n
		}
		after = next
	}
}

// reportBuilds logs the progress and the end of the builds tracked.
func (c *Core) reportBuilds(builds map[string]*build) {
	now := time.Now()
	for name, b := range builds {
		x, ok := c.Store.Index(name)
		if !ok {
			delete(builds, name)
			continue
		}
		if x.Built {
			c.log.Info("index built", "index", name, "table", x.Table, "records", x.Indexed, "took", now.Sub(b.started).Round(time.Millisecond))
			delete(builds, name)
			continue
		}
		if pct, due := b.progress(x.Indexed, now); due {
			c.log.Info("index build progress", "index", name, "table", x.Table, "indexed", x.Indexed, "of_about", b.total, "percent", pct)
		}
	}
}

// progress returns the percentage of the build with indexed records
// visited (at most 99: the table may have grown) and whether a progress
// line is due: the build passed a tenth since the last, or ran
// indexLogEvery without one.
func (b *build) progress(indexed int64, now time.Time) (pct int64, due bool) {
	if b.total > 0 {
		pct = min(indexed*100/b.total, 99)
	}
	if pct/10 > b.pct/10 || now.Sub(b.logged) >= indexLogEvery {
		b.pct, b.logged = pct, now
		return pct, true
	}
	return pct, false
}

func sameFields(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
