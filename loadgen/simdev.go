package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// values are realistic field values of a work-order app (15-45 bytes).
var values = func() []crdt.Value {
	vs := make([]crdt.Value, 0, 256)
	for i := range 256 {
		var v any
		switch i % 4 {
		case 0:
			v = []string{"open", "in_progress", "blocked", "done"}[i%4]
		case 1:
			v = fmt.Sprintf("tech-%03d", i)
		case 2:
			v = fmt.Sprintf("2026-%02d-%02dT%02d:00:00Z", 1+i%12, 1+i%28, i%24)
		default:
			v = fmt.Sprintf("replaced valve %d, check again next visit", i)
		}
		vs = append(vs, crdt.MustValue(v))
	}
	return vs
}()

var fieldNames = []string{"status", "assignee", "due", "notes", "priority"}

// SimDevice is a device simulated in this process: a real store (on an
// in-memory filesystem, so that hundreds fit on one machine) and the real
// sync protocol (replication.Session over TCP) to a hub. Its scope is its
// own table, as a technician's profile holds their own work orders.
type SimDevice struct {
	Table   string
	Cluster string
	st      *store.Store
	local   *replication.Local
	rng     *rand.Rand
	records int
	writes  int
	// src is the loopback address the device dials from (127.0.x.y, one
	// per device), so that a hub on loopback sees as many hosts as
	// devices, as it would in the field: its per-host session share is
	// for one host's flood, not for a fleet.
	src net.IP
}

// NewSimDevice opens device i's store; it writes to table "dev<i>" over
// records records.
func NewSimDevice(i, records int, cluster string) (*SimDevice, error) {
	st, err := store.Open(store.Options{FS: vfs.NewMem(), Dir: "/d", NoSync: true, ClusterID: cluster,
		MemTableSize: 1 << 20, CacheSize: 1 << 20, RecordCache: 1 << 20})
	if err != nil {
		return nil, err
	}
	table := fmt.Sprintf("dev%04d", i)
	clock := hlc.NewClock(nil, hlc.DefaultMaxOffset)
	return &SimDevice{Table: table, Cluster: cluster, st: st, records: max(records, 1), src: net.IPv4(127, 0, byte(1+i/250), byte(2+i%250)),
		rng:   rand.New(rand.NewPCG(uint64(i), 42)),
		local: &replication.Local{Node: st.NodeID(), Cluster: cluster, Role: "device", Scope: replication.TablesScope(table), Clock: clock, Store: st}}, nil
}

// Close closes the device's store.
func (d *SimDevice) Close() error { return d.st.Close() }

// Node is the device's node id.
func (d *SimDevice) Node() hlc.NodeID { return d.local.Node }

// Written is the number of writes the device made.
func (d *SimDevice) Written() int { return d.writes }

// Write makes n single-field local writes (offline or not: nothing
// crosses the network).
func (d *SimDevice) Write(n int) error {
	for range n {
		id := fmt.Sprintf("wo-%06d", d.rng.IntN(d.records))
		f := crdt.FieldValue{Name: fieldNames[d.rng.IntN(len(fieldNames))], Value: values[d.rng.IntN(len(values))]}
		if _, err := d.st.Write(d.local.Clock, d.Table, id, []crdt.FieldValue{f}, false); err != nil {
			return err
		}
		d.writes++
	}
	return nil
}

// SyncStats is one Sync's outcome.
type SyncStats struct {
	replication.Stats
	Refused  int           // sessions the hub refused (busy) before this one ran
	Failed   int           // sessions cut by an error, retried
	Duration time.Duration // from the first dial to the end, waits included
}

// Sync runs one session with the hub at addr, as the engine does: a
// refusal with a retry delay is retried after it (with jitter) until ctx
// is done.
func (d *SimDevice) Sync(ctx context.Context, addr string) (SyncStats, error) {
	return syncLocal(ctx, d.local, addr, d.rng, d.src)
}

// syncLocal runs a session of l with addr, from src when it is set and
// addr is on loopback.
func syncLocal(ctx context.Context, l *replication.Local, addr string, rng *rand.Rand, src net.IP) (SyncStats, error) {
	var out SyncStats
	start := time.Now()
	var dialer net.Dialer
	if host, _, err := net.SplitHostPort(addr); err == nil && src != nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && ip.To4() != nil {
			dialer.LocalAddr = &net.TCPAddr{IP: src}
		}
	}
	backoff := 500 * time.Millisecond
	for {
		c, err := dialer.DialContext(ctx, "tcp", addr)
		var s *replication.Session
		if err == nil {
			s = replication.NewSession(l, true)
			err = replication.RunConn(ctx, c, s, replication.ConnOptions{IdleTimeout: 2 * time.Minute})
		}
		var wait time.Duration
		var ref *replication.RefusedError
		switch {
		case err == nil || ctx.Err() != nil:
		case errors.As(err, &ref) && ref.RetryAfter > 0:
			out.Refused++
			wait = time.Duration(ref.RetryAfter) * time.Millisecond
		case !errors.As(err, &ref) && out.Failed < 5:
			// A cut session loses nothing; retry with the engine's backoff.
			out.Failed++
			wait, backoff = backoff, 2*backoff
		}
		if wait > 0 {
			wait = wait/2 + time.Duration(rng.Int64N(int64(wait)))
			select {
			case <-ctx.Done():
				return out, ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		if s != nil {
			out.Stats = s.Snapshot()
		}
		out.Duration = time.Since(start)
		return out, err
	}
}

// Loader fills a hub with records: a replica in this process (a store on
// disk, no fsync) that holds writes of a synthetic origin, each creating
// one record of the table with fields fields, and syncs them to the hub
// over the real protocol (a full-scope device's session).
type Loader struct {
	st    *store.Store
	local *replication.Local
	dir   string
}

// LoaderOrigin is the synthetic origin of the loaded records.
const LoaderOrigin hlc.NodeID = 0x165667b19e3779f9

// NewLoader builds n records of table in a store under dir.
func NewLoader(dir, cluster, table string, n, fields int, progress func(done int)) (*Loader, error) {
	st, err := store.Open(store.Options{Dir: dir, NoSync: true, ClusterID: cluster})
	if err != nil {
		return nil, err
	}
	clock := hlc.NewClock(nil, hlc.DefaultMaxOffset)
	start := time.Now().UnixMilli() - int64(n/100) - 60_000
	batch := make([]*crdt.Write, 0, 10_000)
	for i := range n {
		w := &crdt.Write{Table: table, ID: fmt.Sprintf("r%08d", i), Origin: LoaderOrigin, Seq: uint64(i + 1),
			TS: hlc.New(start+int64(i/100), uint16(i%100))}
		for f := range fields {
			name := fieldNames[f%len(fieldNames)]
			if f >= len(fieldNames) {
				name += fmt.Sprint(f)
			}
			w.Fields = append(w.Fields, crdt.FieldValue{Name: name, Value: values[(i+f)%len(values)]})
		}
		slices.SortFunc(w.Fields, func(a, b crdt.FieldValue) int { return strings.Compare(a.Name, b.Name) })
		batch = append(batch, w)
		if len(batch) == cap(batch) || i == n-1 {
			res, err := st.ApplyRemote(clock, batch, nil)
			if err != nil {
				st.Close()
				return nil, err
			}
			if res.Applied != len(batch) {
				st.Close()
				return nil, fmt.Errorf("loader: %d of %d writes applied", res.Applied, len(batch))
			}
			batch = batch[:0]
			if progress != nil {
				progress(i + 1)
			}
		}
	}
	return &Loader{st: st, dir: dir, local: &replication.Local{Node: st.NodeID(), Cluster: cluster, Role: "device",
		Scope: replication.FullScope(), Clock: clock, Store: st}}, nil
}

// Sync sends the loaded records to the hub at addr.
func (l *Loader) Sync(ctx context.Context, addr string) (SyncStats, error) {
	return syncLocal(ctx, l.local, addr, rand.New(rand.NewPCG(7, 7)), nil)
}

// Close closes the loader's store.
func (l *Loader) Close() error { return l.st.Close() }
