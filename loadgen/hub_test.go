package loadgen

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/store"
)

// inProcessHub is a hub without the agent around it: a durable store on
// disk and a replication engine serving sessions on loopback.
type inProcessHub struct {
	st   *store.Store
	eng  *replication.Engine
	ln   net.Listener
	addr string
}

func newInProcessHub(tb testing.TB, dir, cluster string, maxSessions int) *inProcessHub {
	st, err := store.Open(store.Options{Dir: dir, ClusterID: cluster})
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	clock := hlc.NewClock(nil, hlc.DefaultMaxOffset)
	eng := replication.NewEngine(replication.Config{MaxSessions: maxSessions,
		Local: replication.Local{Node: st.NodeID(), Cluster: cluster, Role: "hub", Scope: replication.FullScope(), Clock: clock, Store: st}})
	go eng.Serve(ln)
	h := &inProcessHub{st: st, eng: eng, ln: ln, addr: ln.Addr().String()}
	tb.Cleanup(func() {
		ln.Close()
		eng.Close()
		st.Close()
	})
	return h
}

func fanin(tb testing.TB, hubAddr string, devs []*SimDevice, k int) time.Duration {
	for _, d := range devs {
		if err := d.Write(k); err != nil {
			tb.Fatal(err)
		}
	}
	errs := make([]error, len(devs))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = d.Sync(context.Background(), hubAddr)
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	for _, err := range errs {
		if err != nil {
			tb.Fatal(err)
		}
	}
	return el
}

// BenchmarkHubFanin is the hub-fanin scenario in one process (no agent,
// no arbiter), for profiling: go test ./loadgen -run '^$' -bench HubFanin
// -cpuprofile cpu.out.
func BenchmarkHubFanin(b *testing.B) {
	for _, nd := range []int{10, 50} {
		b.Run("devices="+itoa(nd), func(b *testing.B) {
			hub := newInProcessHub(b, filepath.Join(b.TempDir(), "hub"), "bench", 0)
			devs := make([]*SimDevice, nd)
			for i := range devs {
				d, err := NewSimDevice(i, 200, "bench")
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { d.Close() })
				devs[i] = d
			}
			const k = 1000
			b.ResetTimer()
			var total time.Duration
			for range b.N {
				total += fanin(b, hub.addr, devs, k)
			}
			b.ReportMetric(float64(b.N*nd*k)/total.Seconds(), "changes/s")
		})
	}
}

func itoa(n int) string {
	return string(rune('0'+n/100%10)) + string(rune('0'+n/10%10)) + string(rune('0'+n%10))
}
