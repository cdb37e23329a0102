package live

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// BenchmarkLiveSyncSession: a peer's write arriving in a real sync
// session (two replication engines on stores on disk, over TCP on
// loopback) to its add event at a subscriber on the receiving replica
// (the query of BenchmarkLiveRemoteWrite: owner == 'peer', order -n,
// limit 10, an index on owner; the engine woken by the session's
// OnApplied, as package replica wires it). p50-ms and p99-ms time from
// the moment the receiving side read the last bytes of the chunk that
// carries the write off its connection (the last Read of the session's
// connection that returned data before Local.Admit saw the write: the
// chunk is then decoded, admitted, applied durably by the session, and
// the subscriber's engine runs) to the event; target p99 <= 50 ms.
// e2e-p50/p99-ms: from the durable write on the peer to the event (the
// push delay or the watch's news and the session's handshake included).
// base-p50/p99-ms: the same-run baseline on the same store and engine,
// BenchmarkLiveRemoteWrite's figure (store.ApplyRemote of a third
// replica's write, then the engine notified, to the event), one after
// each write through a session (ns/op covers both).
//
// path=push: a device writes and pushes it to its hub in a session it
// dials (Config.PushDelay, the default); the subscriber is on the hub.
// path=watch: a hub writes; the device keeps a watch connection with it
// (Config.Watch), hears of the write and pulls it in a session it dials;
// the subscriber is on the device.
func BenchmarkLiveSyncSession(b *testing.B) {
	b.Run("path=push", func(b *testing.B) { benchSyncSession(b, false) })
	b.Run("path=watch", func(b *testing.B) { benchSyncSession(b, true) })
}

// readClock keeps the time of the last Read that returned data on any
// connection it wraps.
type readClock struct{ last atomic.Int64 }

func (c *readClock) at() time.Time { return time.Unix(0, c.last.Load()) }

type clockedConn struct {
	net.Conn
	c *readClock
}

func (c clockedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.c.last.Store(time.Now().UnixNano())
	}
	return n, err
}

type clockedListener struct {
	net.Listener
	c *readClock
}

func (l clockedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return clockedConn{conn, l.c}, nil
}

// arrivals is when each write p<i> (field n = i) arrived (or, for the
// baseline, was handed to ApplyRemote) and when its event came.
type arrivals struct {
	mu      sync.Mutex
	arrived map[int64]time.Time
	event   map[int64]time.Time
}

func (a *arrivals) arrive(n int64, at time.Time) {
	a.mu.Lock()
	if _, ok := a.arrived[n]; !ok {
		a.arrived[n] = at
	}
	a.mu.Unlock()
}

// await reads sub's events until the add of the record whose n is want,
// and records when it came.
func (a *arrivals) await(b *testing.B, sub *Subscription, want int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			b.Fatalf("waiting for the event of n = %d: %v", want, err)
		}
		if ev.Type != Add || ev.Record == nil {
			continue
		}
		v, err := ev.Record.Fields["n"].Decode()
		if n, ok := v.(int64); err == nil && ok && n == want {
			a.mu.Lock()
			a.event[n] = time.Now()
			a.mu.Unlock()
			return
		}
	}
}

// since returns, for each n of ns, event - start(n).
func (a *arrivals) since(b *testing.B, ns []int64, start func(n int64) (time.Time, bool)) []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []time.Duration
	for _, n := range ns {
		t0, ok := start(n)
		if !ok {
			b.Fatalf("write n = %d: no start time (it did not arrive through Admit)", n)
		}
		out = append(out, a.event[n].Sub(t0))
	}
	return out
}

func quantileMs(ds []time.Duration, p float64) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))].Microseconds()) / 1000
}

func benchSyncSession(b *testing.B, watch bool) {
	dst, dclock, e, sub := peerView(b)
	src, sclock := diskStore(b, b.TempDir()), realClock()

	rc := &readClock{}
	a := &arrivals{arrived: map[int64]time.Time{}, event: map[int64]time.Time{}}
	dstLocal := replication.Local{Node: dst.NodeID(), Cluster: "bench", Scope: replication.FullScope(), Clock: dclock, Store: dst,
		// The first hook that sees a chunk's writes, once the session has
		// read and decoded it: the arrival is the last read before.
		Admit: func(_ replication.Peer, ws []*crdt.Write) []*crdt.Write {
			at := rc.at()
			for _, w := range ws {
				if n, err := strconv.ParseInt(strings.TrimPrefix(w.ID, "p"), 10, 64); err == nil && strings.HasPrefix(w.ID, "p") {
					a.arrive(n, at)
				}
			}
			return ws
		},
		OnApplied: func(_ hlc.NodeID, _ []*crdt.Write, _ *store.Result) { e.Notify() },
	}
	srcLocal := replication.Local{Node: src.NodeID(), Cluster: "bench", Scope: replication.FullScope(), Clock: sclock, Store: src}
	var srcCfg, dstCfg replication.Config
	srcLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	dstLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if watch {
		// The writer is the hub; the device watches it and pulls.
		srcLocal.Role, dstLocal.Role = "hub", "device"
		srcCfg = replication.Config{Local: srcLocal, MaxWatchers: 4}
		d := &net.Dialer{}
		dstCfg = replication.Config{Local: dstLocal, Hubs: []string{srcLn.Addr().String()}, Watch: true,
			Dial: func(ctx context.Context, addr string) (net.Conn, error) {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					return nil, err
				}
				return clockedConn{c, rc}, nil
			}}
	} else {
		// The writer is a device pushing to its hub, the receiver.
		srcLocal.Role, dstLocal.Role = "device", "hub"
		srcCfg = replication.Config{Local: srcLocal, Hubs: []string{dstLn.Addr().String()}}
		dstCfg = replication.Config{Local: dstLocal}
	}
	for _, c := range []*replication.Config{&srcCfg, &dstCfg} {
		c.PullInterval = time.Hour // only pushes and the watch's news start sessions
		c.Heartbeat = time.Hour    // no heartbeat read between a chunk and its Admit
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := func(cfg replication.Config, ln net.Listener) *replication.Engine {
		eng := replication.NewEngine(cfg)
		wg.Add(2)
		go func() { defer wg.Done(); eng.Serve(ln) }()
		go func() { defer wg.Done(); eng.Run(ctx) }()
		return eng
	}
	srcEng := start(srcCfg, srcLn)
	dstEng := start(dstCfg, clockedListener{dstLn, rc})
	defer func() {
		cancel()
		srcLn.Close()
		dstLn.Close()
		srcEng.Close()
		dstEng.Close()
		wg.Wait()
	}()
	if watch {
		deadline := time.Now().Add(30 * time.Second)
		for srcEng.Watchers() == 0 {
			if time.Now().After(deadline) {
				b.Fatal("the device's watch connection did not open in 30 s")
			}
			time.Sleep(time.Millisecond)
		}
	}

	wrote := map[int64]time.Time{}
	write := func(n int64) {
		fs := []crdt.FieldValue{{Name: "owner", Value: crdt.MustValue("peer")}, {Name: "n", Value: crdt.MustValue(n)}}
		w, err := src.Write(sclock, "jobs", fmt.Sprintf("p%07d", n), fs, false)
		if err != nil {
			b.Fatal(err)
		}
		wrote[n] = time.Now()
		srcEng.Notify(w)
		a.await(b, sub, n)
	}
	// The baseline: a third replica's writes applied with
	// store.ApplyRemote on the same store, the engine notified, as in
	// BenchmarkLiveRemoteWrite; one after each write through a session,
	// so that both see the store and the machine alike.
	peer := diskStore(b, b.TempDir())
	pclock := realClock()
	var sent uint64
	based := map[int64]time.Time{}
	baseWrite := func(n int64) {
		ws := peerBatch(b, peer, pclock, fmt.Sprintf("q%07d", n), n, &sent)
		based[n] = time.Now()
		if _, err := dst.ApplyRemote(dclock, ws, nil); err != nil {
			b.Fatal(err)
		}
		e.Notify()
		a.await(b, sub, n)
	}
	// One write before timing: the first session's setup is not a
	// steady-state figure. Then n = 2i through a session, 2i+1 applied
	// directly (each enters the window at its top: an add).
	write(0)
	var viaSession, direct []int64
	b.ResetTimer()
	for i := int64(1); i <= int64(b.N); i++ {
		write(2 * i)
		baseWrite(2*i + 1)
		viaSession, direct = append(viaSession, 2*i), append(direct, 2*i+1)
	}
	b.StopTimer()
	got := a.since(b, viaSession, func(n int64) (time.Time, bool) {
		t, ok := a.arrived[n]
		return t, ok
	})
	e2e := a.since(b, viaSession, func(n int64) (time.Time, bool) {
		t, ok := wrote[n]
		return t, ok
	})
	baseline := a.since(b, direct, func(n int64) (time.Time, bool) {
		t, ok := based[n]
		return t, ok
	})
	b.ReportMetric(quantileMs(got, 0.5), "p50-ms")
	b.ReportMetric(quantileMs(got, 0.99), "p99-ms")
	b.ReportMetric(quantileMs(e2e, 0.5), "e2e-p50-ms")
	b.ReportMetric(quantileMs(e2e, 0.99), "e2e-p99-ms")
	b.ReportMetric(quantileMs(baseline, 0.5), "base-p50-ms")
	b.ReportMetric(quantileMs(baseline, 0.99), "base-p99-ms")
}
