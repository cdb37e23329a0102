package gossip

import (
	"bytes"
	"flag"
	"fmt"
	"hash/fnv"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

var seedFlag = flag.Int64("gossip.seed", 0, "seed for randomized gossip tests (0: derived from the test name)")

// testRand returns a seeded *rand.Rand and logs the seed; rerun a failure
// with -gossip.seed=N.
func testRand(t testing.TB) *rand.Rand {
	seed := *seedFlag
	if seed == 0 {
		h := fnv.New64a()
		h.Write([]byte(t.Name()))
		seed = int64(h.Sum64() >> 1)
	}
	t.Logf("seed %d (rerun with -gossip.seed=%d)", seed, seed)
	return rand.New(rand.NewSource(seed))
}

// logBuf is a concurrency-safe log sink.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testLogger returns a logger into buf; with -v the log is also dumped to
// t.Log when the test fails.
func testLogger(t testing.TB, name string) (hclog.Logger, *logBuf) {
	buf := &logBuf{}
	l := hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Info, Output: buf})
	t.Cleanup(func() {
		if t.Failed() {
			s := buf.String()
			if len(s) > 2000 {
				s = "..." + s[len(s)-2000:]
			}
			t.Logf("log of %s:\n%s", name, s)
		}
	})
	return l, buf
}

func nodeName(i int) string { return fmt.Sprintf("%016x", i+1) }

// waitFor polls cond every 10ms until it holds or the deadline passes,
// and returns how long it took.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testNode is a node of a test cluster with what it received.
type testNode struct {
	*Gossip
	log    *logBuf
	mu     sync.Mutex
	msgs   []string // "from:payload"
	events []string // "kind:name:state"
}

func (n *testNode) got() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.msgs...)
}

func (n *testNode) hasMsg(s string) bool {
	for _, m := range n.got() {
		if m == s {
			return true
		}
	}
	return false
}

// aliveSet returns the names of the alive members n sees, sorted.
func (n *testNode) aliveSet() []string {
	var out []string
	for _, m := range n.Members() {
		if m.State == StateAlive {
			out = append(out, m.Name)
		}
	}
	return out
}

func (n *testNode) stateOf(name string) State {
	for _, m := range n.Members() {
		if m.Name == name {
			return m.State
		}
	}
	return 0
}

// cluster is a set of test nodes on one MemNetwork behind one FaultNet.
type cluster struct {
	t      testing.TB
	net    *MemNetwork
	faults *FaultNet
	nodes  []*testNode
}

func newCluster(t testing.TB, rng *rand.Rand) *cluster {
	return &cluster{t: t, net: NewMemNetwork(), faults: NewFaultNet(rng)}
}

func baseConfig(name string) Config {
	return Config{
		Name:           name,
		Profile:        ProfileLocal,
		RejoinInterval: 250 * time.Millisecond,
		Meta: Meta{
			Role:      RoleDevice,
			SyncAddr:  "127.0.0.1:9" + name[13:],
			ClusterID: "test-cluster",
		},
	}
}

// add starts a node on the cluster's network; mod may edit its config.
// join lists indexes of existing nodes to use as seeds.
func (c *cluster) add(mod func(*Config), join ...int) *testNode {
	c.t.Helper()
	name := nodeName(len(c.nodes))
	cfg := baseConfig(name)
	mt := c.net.NewTransport()
	cfg.Transport = c.faults.Wrap(name, mt.Addr(), mt)
	for _, j := range join {
		cfg.Join = append(cfg.Join, c.nodes[j].Addr())
	}
	n, err := startNode(c.t, cfg, mod)
	if err != nil {
		c.t.Fatalf("start node %s: %v", name, err)
	}
	c.nodes = append(c.nodes, n)
	return n
}

func startNode(t testing.TB, cfg Config, mod func(*Config)) (*testNode, error) {
	n := &testNode{}
	l, buf := testLogger(t, cfg.Name)
	cfg.Logger = l
	n.log = buf
	cfg.OnMessage = func(from string, p []byte) {
		n.mu.Lock()
		n.msgs = append(n.msgs, from+":"+string(p))
		n.mu.Unlock()
	}
	cfg.OnMemberChange = func(m Member, k EventKind) {
		n.mu.Lock()
		n.events = append(n.events, fmt.Sprintf("%v:%s:%v", k, m.Name, m.State))
		n.mu.Unlock()
	}
	if mod != nil {
		mod(&cfg)
	}
	g, err := New(cfg)
	if err != nil {
		return nil, err
	}
	n.Gossip = g
	t.Cleanup(func() { _ = g.Shutdown() })
	return n, nil
}

// converged reports whether every listed node sees exactly the listed
// nodes alive.
func converged(nodes []*testNode) bool {
	var want []string
	for _, n := range nodes {
		want = append(want, n.Name())
	}
	slices.Sort(want)
	w := strings.Join(want, ",")
	for _, n := range nodes {
		if strings.Join(n.aliveSet(), ",") != w {
			return false
		}
	}
	return true
}
