package e2e

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The fault harness: a hub and devices as real processes, every sync link
// through a fault proxy (faultproxy.go), clients writing unique values
// through the API, a fault schedule drawn from a printed seed, and a
// checker that accounts for every acknowledged write once the faults heal.
// `make test` runs one short run; `make soak` runs many long ones
// (-fault.duration).

var (
	faultSeed     = flag.Int64("fault.seed", 0, "seed of the fault schedule and workload (0: from the clock; printed)")
	faultDuration = flag.Duration("fault.duration", 0, "soak: keep starting runs (seed, seed+1, ...) while less than this much time has passed (so a soak lasts at least this long); 0: one short run")
	faultRunLen   = flag.Duration("fault.run", 0, "fault phase of each run (default 30s for the short run, 4m in a soak)")
	faultNodes    = flag.Int("fault.nodes", 4, "nodes per run: one hub, the rest devices (at least 3)")
	faultKeep     = flag.Bool("fault.keep", false, "keep data dirs and logs of passing runs too")
	faultSummary  = flag.String("fault.summary", "", "also write the summary to this file")
)

// The tables of a run, one per policy (set on the hub).
var faultTables = []struct{ name, policy string }{
	{"f_lww", "lww"}, {"f_cw", "client-wins"}, {"f_sw", "server-wins"}, {"f_man", "manual"},
}

const (
	faultRecords = 5 // record ids per table: small, so writes collide
	debugEnv     = "REPLICAD_TESTING_DEBUG_API=1"
)

// Fault kinds; a short run has at least one of each.
var faultKinds = []string{"cut", "oneway", "isolate-hub", "bridge", "delay", "drop", "dup", "kill", "storm", "pause", "clock", "disk"}

// ---------------------------------------------------------------------------
// processes

type fnode struct {
	name    string
	hub     bool
	dir     string // data dir
	logPath string
	addrMu  sync.Mutex
	apiA    string
	syncA   string
	args    []string // role, hubs, policies
	mount   string   // tmpfs mount point holding dir (disk faults), or ""
	// rebind, when a start fails because a port was taken meanwhile,
	// moves the node to new ports (and its links to the new sync port).
	rebind func()

	mu      sync.Mutex
	offset  time.Duration // current --clock-offset
	maxSkew time.Duration // largest positive offset it ever ran with
	cmd     *exec.Cmd
	done    chan error
	paused  bool
	exited  string // how the process ended when it exited by itself (running)
	id      string // node id (stable across restarts)
}

func (n *fnode) api() string {
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	return n.apiA
}

func (n *fnode) syncAddr() string {
	n.addrMu.Lock()
	defer n.addrMu.Unlock()
	return n.syncA
}

func (n *fnode) start(maxOffset time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.startLocked(maxOffset)
}

func (n *fnode) startLocked(maxOffset time.Duration) error {
	return n.startAttempt(maxOffset, 0)
}

// logTail returns the end of a log file.
func logTail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return string(b)
}

func (n *fnode) startAttempt(maxOffset time.Duration, attempt int) error {
	if n.cmd != nil {
		return fmt.Errorf("%s already running", n.name)
	}
	lf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(lf, "\n=== harness: start %s at %s, clock offset %v ===\n", n.name, time.Now().UTC().Format(time.RFC3339Nano), n.offset)
	args := append([]string{"agent", "--data-dir", n.dir, "--api-addr", n.api(), "--sync-addr", n.syncAddr(),
		"--log-level", "info", "--gossip-addr", "off", "--pull-interval", "1s",
		"--max-clock-offset", maxOffset.String(), "--clock-offset", n.offset.String()}, n.args...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), debugEnv)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		return err
	}
	lf.Close()
	if n.offset > n.maxSkew {
		n.maxSkew = n.offset
	}
	n.cmd, n.paused = cmd, false
	n.done = make(chan error, 1)
	go func(c *exec.Cmd, d chan error) { d <- c.Wait() }(cmd, n.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var st struct {
			Node string `json:"node"`
		}
		if err := getJSON(n.api(), "/v1/status", &st, time.Second); err == nil {
			if n.id != "" && st.Node != n.id {
				return fmt.Errorf("%s: node id changed across a restart: %s -> %s", n.name, n.id, st.Node)
			}
			n.id = st.Node
			return nil
		}
		select {
		case err := <-n.done:
			n.cmd = nil
			if tail := logTail(n.logPath); strings.Contains(tail, "address already in use") && n.rebind != nil && attempt < 3 {
				n.rebind()
				return n.startAttempt(maxOffset, attempt+1)
			}
			return fmt.Errorf("%s exited at start: %v (log %s)", n.name, err, n.logPath)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer in 20s (log %s)", n.name, n.logPath)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *fnode) exitStatus() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.exited
}

// crashLine returns the first panic or fatal-error line of the last
// 64 KiB of a node's log (a Go crash prints them before its stacks), or "".
func crashLine(path string) string {
	b, _ := os.ReadFile(path)
	b = b[max(0, len(b)-64<<10):]
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "panic:") || strings.HasPrefix(strings.TrimSpace(l), "fatal error:") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// kill sends SIGKILL (continuing a paused process first is not needed:
// SIGKILL ends a stopped process too) and waits for the exit.
func (n *fnode) kill() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.killLocked()
}

func (n *fnode) killLocked() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
	n.cmd, n.paused = nil, false
}

// running reports whether the node's process runs. One that exited by
// itself (a crash) is reaped here: it is not running, and exited says how
// it ended.
func (n *fnode) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case err := <-n.done:
		n.cmd, n.paused, n.exited = nil, false, fmt.Sprint(err)
		return false
	default:
		return true
	}
}

func (n *fnode) pause(on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.paused == on {
		return
	}
	if on {
		n.cmd.Process.Signal(syscall.SIGSTOP)
	} else {
		n.cmd.Process.Signal(syscall.SIGCONT)
	}
	n.paused = on
}

// restartWithOffset restarts the process (SIGTERM, or SIGKILL after 10s)
// with a new clock offset.
func (n *fnode) restartWithOffset(off, maxOffset time.Duration) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		if n.paused {
			n.cmd.Process.Signal(syscall.SIGCONT)
		}
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			n.cmd.Process.Signal(syscall.SIGKILL)
			<-n.done
		}
		n.cmd = nil
	}
	n.offset = off
	return n.startLocked(maxOffset)
}

// ---------------------------------------------------------------------------
// HTTP helpers (short timeouts: a paused node must not stall the harness)

func doJSON(method, addr, path string, in, out any, timeout time.Duration) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, body)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			// Not the API's error body (a proxy, a panic page): say what came.
			e.Error = strings.TrimSpace(string(data[:min(len(data), 300)]))
		}
		return resp.StatusCode, fmt.Errorf("HTTP %d: %s", resp.StatusCode, e.Error)
	}
	if out != nil {
		return resp.StatusCode, json.Unmarshal(data, out)
	}
	return resp.StatusCode, nil
}

func getJSON(addr, path string, out any, timeout time.Duration) error {
	_, err := doJSON("GET", addr, path, nil, out, timeout)
	return err
}

// ---------------------------------------------------------------------------
// the debug API's shapes (agent/debug.go)

type dWrite struct {
	Table  string                     `json:"table"`
	ID     string                     `json:"id"`
	Node   string                     `json:"node"`
	Seq    uint64                     `json:"seq"`
	HLC    uint64                     `json:"hlc"`
	Ctx    map[string]uint64          `json:"ctx"`
	Delete bool                       `json:"delete"`
	Elided bool                       `json:"elided"`
	Fields map[string]json.RawMessage `json:"fields"`
}

func (w *dWrite) covers(node string, seq uint64) bool { return w.Ctx[node] >= seq }

type dEntry struct {
	Node    string          `json:"node"`
	Seq     uint64          `json:"seq"`
	HLC     uint64          `json:"hlc"`
	Deleted bool            `json:"deleted"`
	Value   json.RawMessage `json:"value"`
}

type dRecord struct {
	Table   string                     `json:"table"`
	ID      string                     `json:"id"`
	Exists  bool                       `json:"exists"`
	Applied map[string]uint64          `json:"applied"`
	Exist   []dEntry                   `json:"exist"`
	Fields  map[string][]dEntry        `json:"fields"`
	Visible map[string]json.RawMessage `json:"visible"`
}

type dDigest struct {
	Node        string `json:"node"`
	Digest      string `json:"digest"`
	ViewDigest  string `json:"view_digest"`
	Records     int    `json:"records"`
	Parked      int    `json:"parked"`
	Queued      int    `json:"queued"`
	PhysicalMs  int64  `json:"physical_ms"`
	HighWaterMs int64  `json:"high_water_ms"`
	MaxOffsetMs int64  `json:"max_offset_ms"`
	// ParkedBy says, per origin, what the parked writes wait for: their
	// numbers, how many are held already (those never apply) and how far
	// the furthest stamp is still ahead of the node's clock.
	ParkedBy map[string]struct {
		Count      int    `json:"count"`
		Lo         uint64 `json:"lo"`
		Hi         uint64 `json:"hi"`
		Held       int    `json:"held"`
		AheadNowMs int64  `json:"ahead_now_ms"`
	} `json:"parked_by_origin"`
}

// ---------------------------------------------------------------------------
// history

type outcome int

const (
	acked   outcome = iota
	unknown         // no answer (timeout, cut connection): may or may not have happened
	failed          // an error answer: nothing was stored
)

type op struct {
	client int
	node   string // node name
	table  string
	id     string
	del    bool
	fields map[string]string // field -> JSON value
	start  time.Time
	end    time.Time
	out    outcome
	errMsg string
	write  *dWrite // the write made (acked)
}

type readRec struct {
	node, table, id string
	fields          map[string]json.RawMessage
	conflicts       map[string][]struct {
		Value json.RawMessage `json:"value"`
	}
}

type history struct {
	mu        sync.Mutex
	ops       []*op
	reads     []readRec
	attempted map[string]bool // every value any client tried to write
}

func (h *history) add(o *op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

// ---------------------------------------------------------------------------
// a run

type faultEvent struct {
	at     time.Duration // from the start of the fault phase
	kind   string
	target []int // node or link indexes
	hold   time.Duration
	param  float64 // delay ms, drop probability, clock factor, direction
}

func (e faultEvent) String() string {
	return fmt.Sprintf("t=%6.2fs %-11s targets=%v hold=%v param=%.3g", e.at.Seconds(), e.kind, e.target, e.hold.Round(time.Millisecond), e.param)
}

type runStats struct {
	seed        int64
	faults      map[string]int
	acked       int
	unknown     int
	failedOps   int
	reads       int
	present     int
	superseded  int
	restamped   int
	logged      int
	queued      int
	unexplained int
	unexplByTbl map[string]int
	resurrected int
	collected   int // deletes whose record was collected under the tombstone horizon
	failed      bool
	// byteDiverged: converged in view, but not byte for byte (tombstone
	// collection; reported, not a failure)
	byteDiverged bool
	phantoms     int
	converge     time.Duration
	parkedSeen   int
	diskErrors   int
	problems     []string
}

type frun struct {
	t         *testing.T
	seed      int64
	rng       *rand.Rand
	dir       string
	nodes     []*fnode // nodes[0] is the hub
	links     []*Link
	hubLinks  []int // per device index (1..), the link to the hub
	ringLinks []int
	maxOffset time.Duration
	length    time.Duration
	soak      bool
	schedule  []faultEvent
	hist      *history
	stats     runStats
	logf      func(format string, args ...any)
	stop      atomic.Bool
	diskNode  int // index of the node on tmpfs, or -1
	filler    string
}

func newRun(t *testing.T, seed int64, nodes int, length time.Duration, soak bool) *frun {
	r := &frun{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), length: length, soak: soak,
		maxOffset: time.Second, hist: &history{attempted: map[string]bool{}}, diskNode: -1}
	if soak {
		r.maxOffset = 2 * time.Second
	}
	r.stats = runStats{seed: seed, faults: map[string]int{}, unexplByTbl: map[string]int{}}
	r.logf = func(format string, args ...any) {
		t.Helper()
		t.Logf("[seed %d] "+format, append([]any{seed}, args...)...)
	}
	var err error
	r.dir, err = os.MkdirTemp("", fmt.Sprintf("replicad-faults-%d-", seed))
	if err != nil {
		t.Fatal(err)
	}
	hub := &fnode{name: "hub", hub: true}
	hub.args = []string{"--role", "hub"}
	for _, tb := range faultTables {
		hub.args = append(hub.args, "--policy", tb.name+"="+tb.policy)
	}
	r.nodes = append(r.nodes, hub)
	for i := 1; i < nodes; i++ {
		r.nodes = append(r.nodes, &fnode{name: fmt.Sprintf("d%d", i)})
	}
	for _, n := range r.nodes {
		n.dir = filepath.Join(r.dir, n.name, "data")
		n.logPath = filepath.Join(r.dir, n.name+".log")
		os.MkdirAll(filepath.Join(r.dir, n.name), 0o755)
	}
	// Links: every device dials the hub, and the next device (a ring), so
	// that a device cut from the hub reaches it through a bridge.
	r.hubLinks = make([]int, nodes)
	r.ringLinks = make([]int, nodes)
	for i := 1; i < nodes; i++ {
		d := r.nodes[i]
		l, err := NewLink(d.name, "hub", "", seed*1000+int64(i))
		if err != nil {
			t.Fatal(err)
		}
		r.hubLinks[i] = len(r.links)
		r.links = append(r.links, l)
		next := r.nodes[1+i%(nodes-1)]
		l, err = NewLink(d.name, next.name, "", seed*1000+100+int64(i))
		if err != nil {
			t.Fatal(err)
		}
		r.ringLinks[i] = len(r.links)
		r.links = append(r.links, l)
		d.args = []string{"--hub", r.links[r.hubLinks[i]].Addr(), "--hub", l.Addr()}
	}
	// Ports last: the proxies hold theirs for the whole run, so a node's
	// port cannot be one of them.
	for _, n := range r.nodes {
		n := n
		n.rebind = func() {
			apiA, syncA := freeAddr(t), freeAddr(t)
			n.addrMu.Lock()
			n.apiA, n.syncA = apiA, syncA
			n.addrMu.Unlock()
			for _, l := range r.links {
				if l.To == n.name {
					l.SetTarget(syncA)
				}
			}
		}
		n.rebind()
	}
	// The disk-fault device keeps its data on a small tmpfs (root only).
	if os.Geteuid() == 0 {
		d := r.nodes[1]
		mnt := filepath.Join(r.dir, d.name, "tmpfs")
		os.MkdirAll(mnt, 0o755)
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", mnt).CombinedOutput(); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("disk faults cannot run in CI: mounting a tmpfs failed: %v %s", err, out)
			}
			r.logf("disk faults skipped: mounting a tmpfs failed: %v %s", err, out)
		} else {
			d.mount = mnt
			d.dir = filepath.Join(mnt, "data")
			r.diskNode = 1
			r.filler = filepath.Join(mnt, "filler")
		}
	} else {
		if os.Getenv("CI") != "" {
			t.Fatalf("disk faults cannot run in CI: not root (uid %d), so no tmpfs can be mounted", os.Geteuid())
		}
		r.logf("disk faults skipped: not root (uid %d), so no tmpfs can be mounted", os.Geteuid())
	}
	return r
}

// draw makes the fault schedule from the seed.
func (r *frun) draw() {
	kinds := []string{}
	if !r.soak {
		kinds = append(kinds, faultKinds...)
		r.rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	}
	at := time.Second
	maxHold := 3 * time.Second
	maxPause := 4 * time.Second
	if r.soak {
		maxHold, maxPause = 15*time.Second, 30*time.Second
	}
	devices := len(r.nodes) - 1
	for i := 0; at < r.length || i < len(kinds); i++ {
		var kind string
		if i < len(kinds) {
			kind = kinds[i]
		} else {
			kind = faultKinds[r.rng.Intn(len(faultKinds))]
		}
		if kind == "disk" && r.diskNode < 0 {
			kind = "kill"
		}
		e := faultEvent{at: at, kind: kind, hold: time.Duration(500+r.rng.Intn(int(maxHold/time.Millisecond)-500)) * time.Millisecond}
		switch kind {
		case "cut", "delay", "drop", "dup":
			k := 1 + r.rng.Intn(len(r.links))
			e.target = r.rng.Perm(len(r.links))[:k]
			switch kind {
			case "delay":
				e.param = float64(20 + r.rng.Intn(300))
			case "drop":
				e.param = 0.02 + r.rng.Float64()*0.3
			}
		case "oneway":
			e.target = []int{r.rng.Intn(len(r.links))}
			e.param = float64(r.rng.Intn(2)) // 1: stall up (dialer to listener)
		case "isolate-hub":
		case "bridge":
			// Cut the hub links of some devices but not all.
			k := 1 + r.rng.Intn(max(1, devices-1))
			for _, j := range r.rng.Perm(devices)[:k] {
				e.target = append(e.target, j+1)
			}
		case "kill":
			e.target = []int{r.rng.Intn(len(r.nodes))}
			e.hold = time.Duration(100+r.rng.Intn(2000)) * time.Millisecond
		case "storm":
			k := 2 + r.rng.Intn(len(r.nodes)-1)
			e.target = r.rng.Perm(len(r.nodes))[:k]
			e.hold = time.Duration(100+r.rng.Intn(2000)) * time.Millisecond
		case "pause":
			e.target = []int{r.rng.Intn(len(r.nodes))}
			e.hold = time.Duration(500+r.rng.Intn(int(maxPause/time.Millisecond)-500)) * time.Millisecond
		case "clock":
			// A device's clock, 2x to 10x the maximum offset, either way.
			e.target = []int{1 + r.rng.Intn(devices)}
			f := 2 + r.rng.Float64()*8
			if r.rng.Intn(3) == 0 {
				f = -f
			}
			e.param = f
			e.hold = max(e.hold, 2*time.Second)
		case "disk":
			e.target = []int{r.diskNode}
			e.hold = max(e.hold, 2*time.Second)
		}
		r.schedule = append(r.schedule, e)
		at += e.hold + time.Duration(300+r.rng.Intn(1500))*time.Millisecond
	}
}

func (r *frun) printSchedule() string {
	var b strings.Builder
	// A soak's run draws another schedule (its fault kinds, longer holds)
	// and has a wider clock bound: its replay is a soak of one run.
	soak := ""
	if r.soak {
		soak = " -fault.duration=1s"
	}
	fmt.Fprintf(&b, "fault schedule (seed %d, %d nodes, replay with -fault.seed=%d -fault.nodes=%d -fault.run=%v%s):\n", r.seed, len(r.nodes), r.seed, len(r.nodes), r.length, soak)
	for _, e := range r.schedule {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	return b.String()
}

// ---------------------------------------------------------------------------
// clients

func (r *frun) client(idx int, n *fnode, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewSource(r.seed*7919 + int64(idx)))
	seq := 0
	for !r.stop.Load() {
		tb := faultTables[rng.Intn(len(faultTables))].name
		id := fmt.Sprintf("r%d", rng.Intn(faultRecords))
		p := rng.Intn(100)
		if p < 10 {
			var got struct {
				Fields    map[string]json.RawMessage `json:"fields"`
				Conflicts map[string][]struct {
					Value json.RawMessage `json:"value"`
				} `json:"conflicts"`
			}
			if err := getJSON(n.api(), "/v1/tables/"+tb+"/records/"+id, &got, 2*time.Second); err == nil {
				r.hist.mu.Lock()
				r.hist.reads = append(r.hist.reads, readRec{node: n.name, table: tb, id: id, fields: got.Fields, conflicts: got.Conflicts})
				r.hist.mu.Unlock()
			}
			time.Sleep(time.Duration(10+rng.Intn(40)) * time.Millisecond)
			continue
		}
		o := &op{client: idx, node: n.name, table: tb, id: id, start: time.Now()}
		var res struct {
			Write dWrite `json:"write"`
		}
		var code int
		var err error
		path := "/v1/debug/tables/" + tb + "/records/" + id
		if p < 17 {
			o.del = true
			code, err = doJSON("DELETE", n.api(), path, nil, &res, 3*time.Second)
		} else {
			o.fields = map[string]string{}
			names := []string{"a", "b", "c"}
			k := 1 + rng.Intn(2)
			for _, j := range rng.Perm(3)[:k] {
				seq++
				o.fields[names[j]] = fmt.Sprintf(`"c%d-%d"`, idx, seq)
			}
			body := map[string]map[string]json.RawMessage{"fields": {}}
			r.hist.mu.Lock()
			for f, v := range o.fields {
				body["fields"][f] = json.RawMessage(v)
				r.hist.attempted[v] = true
			}
			r.hist.mu.Unlock()
			code, err = doJSON("PUT", n.api(), path, body, &res, 3*time.Second)
		}
		o.end = time.Now()
		switch {
		case err == nil:
			o.out = acked
			w := res.Write
			o.write = &w
		case code == http.StatusNotFound && o.del:
			continue // nothing to delete here: not an operation
		case code != 0:
			o.out, o.errMsg = failed, err.Error()
		default:
			o.out, o.errMsg = unknown, err.Error()
		}
		r.hist.add(o)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
		} else {
			time.Sleep(time.Duration(10+rng.Intn(40)) * time.Millisecond)
		}
	}
}

// ---------------------------------------------------------------------------
// faults

func (r *frun) devices() []int {
	var out []int
	for i := 1; i < len(r.nodes); i++ {
		out = append(out, i)
	}
	return out
}

// apply injects e's fault and returns the function that heals it.
func (r *frun) apply(e faultEvent) (heal func()) {
	switch e.kind {
	case "cut":
		for _, i := range e.target {
			r.links[i].SetCut(true)
		}
		return func() {
			for _, i := range e.target {
				r.links[i].SetCut(false)
			}
		}
	case "oneway":
		l := r.links[e.target[0]]
		l.SetStall(e.param == 1, true)
		return func() { l.SetStall(e.param == 1, false) }
	case "isolate-hub":
		for _, i := range r.devices() {
			r.links[r.hubLinks[i]].SetCut(true)
		}
		return func() {
			for _, i := range r.devices() {
				r.links[r.hubLinks[i]].SetCut(false)
			}
		}
	case "bridge":
		for _, i := range e.target {
			r.links[r.hubLinks[i]].SetCut(true)
		}
		return func() {
			for _, i := range e.target {
				r.links[r.hubLinks[i]].SetCut(false)
			}
		}
	case "delay":
		for _, i := range e.target {
			r.links[i].SetDelay(time.Duration(e.param) * time.Millisecond)
		}
		return func() {
			for _, i := range e.target {
				r.links[i].SetDelay(0)
			}
		}
	case "drop":
		for _, i := range e.target {
			r.links[i].SetDrop(e.param)
		}
		return func() {
			for _, i := range e.target {
				r.links[i].SetDrop(0)
			}
		}
	case "dup":
		for _, i := range e.target {
			r.links[i].SetDup(true)
		}
		return func() {
			for _, i := range e.target {
				r.links[i].SetDup(false)
			}
		}
	case "kill", "storm":
		for _, i := range e.target {
			r.nodes[i].kill()
		}
		return func() {
			for _, i := range e.target {
				if err := r.nodes[i].start(r.maxOffset); err != nil {
					r.problem("restart after %s: %v", e.kind, err)
				}
			}
		}
	case "pause":
		n := r.nodes[e.target[0]]
		n.pause(true)
		return func() { n.pause(false) }
	case "clock":
		return r.clockFault(e)
	case "disk":
		return r.diskFault(e)
	}
	panic("unknown fault " + e.kind)
}

func (r *frun) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.hist.mu.Lock()
	r.stats.problems = append(r.stats.problems, msg)
	r.hist.mu.Unlock()
}

// clockFault restarts a device with its clock skewed by param x the
// maximum offset. Beyond the bound, its writes must be parked (visibly)
// by the nodes that receive them, and no node's clock may be dragged
// forward.
func (r *frun) clockFault(e faultEvent) func() {
	n := r.nodes[e.target[0]]
	off := time.Duration(e.param * float64(r.maxOffset)).Round(time.Millisecond)
	if err := n.restartWithOffset(off, r.maxOffset); err != nil {
		r.problem("clock fault: restart of %s with offset %v: %v", n.name, off, err)
		return func() {}
	}
	stop := make(chan struct{})
	seen := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Parked writes: ahead, the hub parks the device's writes; behind,
		// the device parks everyone else's.
		watch := r.nodes[0]
		if off < 0 {
			watch = n
		}
		for {
			var p struct {
				Parked []struct {
					Origin string `json:"origin"`
				} `json:"parked"`
			}
			if err := getJSON(watch.api(), "/v1/parked", &p, time.Second); err == nil {
				for _, x := range p.Parked {
					if (off > 0 && x.Origin == n.id) || (off < 0 && x.Origin != n.id) {
						r.hist.mu.Lock()
						r.stats.parkedSeen++
						r.hist.mu.Unlock()
						close(seen)
						return
					}
				}
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return func() {
		// On a loaded machine the skewed clock may need longer than the
		// hold to show a parked write: keep it up to 15 s more.
		select {
		case <-seen:
		case <-time.After(15 * time.Second):
		}
		close(stop)
		wg.Wait()
		if err := n.restartWithOffset(0, r.maxOffset); err != nil {
			r.problem("clock fault: restart of %s with offset 0: %v", n.name, err)
		}
	}
}

// checkClocks: no node's clock is ahead of its own physical time (with
// the largest skew it ever ran with) by more than the maximum offset: a
// remote stamp beyond the bound is parked, never followed.
func (r *frun) checkClocks() {
	for _, n := range r.nodes {
		var d dDigest
		if !n.running() || getJSON(n.api(), "/v1/debug/digest", &d, time.Second) != nil {
			continue
		}
		n.mu.Lock()
		skew := n.maxSkew
		n.mu.Unlock()
		now := time.Now().UnixMilli()
		limit := now + skew.Milliseconds() + r.maxOffset.Milliseconds() + 1000
		if d.HighWaterMs > limit {
			r.problem("clock of %s dragged forward: high water %d ms, %d ms past real time (its own largest skew %v, max offset %v)",
				n.name, d.HighWaterMs, d.HighWaterMs-now, skew, r.maxOffset)
		}
	}
}

// diskFault fills the tmpfs under a device's data dir: writes must fail
// with an error naming the cause, and no write may be acknowledged that
// is not durable (the checker sees to that). When space returns the device
// recovers: its store, failed after the I/O error, is reopened by a
// restart if it does not come back by itself.
func (r *frun) diskFault(e faultEvent) func() {
	n := r.nodes[e.target[0]]
	f, err := os.Create(r.filler)
	if err != nil {
		r.problem("disk fault: %v", err)
		return func() {}
	}
	buf := make([]byte, 1<<20)
	for size := len(buf); size >= 512; {
		if _, err := f.Write(buf[:size]); err != nil {
			size /= 2
		}
	}
	f.Close()
	// Probe writes while full. Pebble may still have room in a WAL file
	// it allocated before the disk filled, or free a little by deleting
	// a flushed WAL, so writes may succeed (durably) for a while: probe
	// with large values until one fails, for up to 20 s. Each probe
	// writes a new record of random bytes, so the space the store needs
	// grows with every probe: one value overwritten again and again, and
	// compressible, flushes to a few bytes and frees its WAL, and the
	// store can go on in the little room it has. (New records, not new
	// fields of one: a record has a bounded size.)
	path := "/v1/debug/tables/f_lww/records/diskprobe"
	deadline := time.Now().Add(e.hold)
	probeEnd := time.Now().Add(20 * time.Second)
	sawErr, probes := "", 0
	lastRefusal := "" // the last answer other than a 5xx error, logged when it changes
	noise := make([]byte, 48<<10)
	for time.Now().Before(probeEnd) && n.running() {
		crand.Read(noise)
		big, _ := json.Marshal(base64.StdEncoding.EncodeToString(noise))
		body := map[string]map[string]json.RawMessage{"fields": {"a": big}}
		code, err := doJSON("PUT", n.api(), fmt.Sprintf("%s-%d", path, probes), body, nil, 5*time.Second)
		probes++
		if err != nil && code >= 500 {
			sawErr = err.Error()
			break
		}
		if err != nil {
			// Not the full disk's 5xx: say what it was (status and body,
			// or the transport's error).
			if msg := fmt.Sprintf("status %d: %v", code, err); msg != lastRefusal {
				r.logf("disk fault: probe %d on %s refused: %s", probes, n.name, msg)
				lastRefusal = msg
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if sawErr == "" {
		// The device may have died on the full disk instead; that is
		// acceptable (the checker sees that it acknowledged nothing it
		// lost).
		if n.running() {
			r.problem("disk fault: writes on %s still succeed after %d probes of 64 KiB on a full disk", n.name, probes)
		} else {
			r.logf("disk fault: %s exited on the full disk (%s): %s", n.name, n.exitStatus(), crashLine(n.logPath))
		}
	} else {
		r.hist.mu.Lock()
		r.stats.diskErrors++
		r.hist.mu.Unlock()
		if !strings.Contains(sawErr, "no space") {
			r.problem("disk fault: the error on a full disk does not name the cause: %q", sawErr)
		}
		r.logf("disk full on %s after %d probes: %s", n.name, probes, sawErr)
	}
	for time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	return func() {
		os.Remove(r.filler)
		// Recovery: a running agent reopens its failed store by itself
		// (agent/recover.go) and writes again within 15 s; one that died
		// on the full disk is restarted.
		lastErr := ""
		ok := func() bool {
			code, err := doJSON("PUT", n.api(), path, map[string]map[string]json.RawMessage{"fields": {"a": json.RawMessage(`"probe2"`)}}, nil, 2*time.Second)
			if err != nil {
				if msg := fmt.Sprintf("status %d: %v", code, err); msg != lastErr {
					r.logf("disk fault: write on %s after space returned refused: %s", n.name, msg)
					lastErr = msg
				}
			}
			return err == nil
		}
		if n.running() {
			// Until it writes, or its process ends (a crash is not a
			// store that failed to reopen: it is restarted below).
			for end := time.Now().Add(15 * time.Second); time.Now().Before(end) && n.running(); time.Sleep(200 * time.Millisecond) {
				if ok() {
					r.logf("disk fault: %s writes again by itself after space returned", n.name)
					return
				}
			}
			if n.running() {
				r.problem("disk fault: %s does not write within 15 s after space returned (it should reopen its store by itself)", n.name)
			}
		}
		if n.running() {
			r.logf("disk fault: %s does not write after space returned; restarting it", n.name)
		} else {
			r.logf("disk fault: %s exited (%s): %s; restarting it", n.name, n.exitStatus(), crashLine(n.logPath))
		}
		n.kill()
		if err := n.start(r.maxOffset); err != nil {
			r.problem("disk fault: restart after space returned: %v", err)
			return
		}
		for i := 0; i < 100 && !ok(); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		if !ok() {
			r.problem("disk fault: %s does not write after space returned and a restart", n.name)
		}
	}
}

// ---------------------------------------------------------------------------
// the run

func (r *frun) cleanup(keep bool) {
	r.stop.Store(true)
	for _, n := range r.nodes {
		n.kill()
	}
	for _, l := range r.links {
		l.Close()
	}
	if keep {
		// Data dirs on the tmpfs are copied out before it goes away.
		for _, n := range r.nodes {
			if n.mount != "" {
				exec.Command("cp", "-a", n.dir, filepath.Join(r.dir, n.name, "data-from-tmpfs")).Run()
			}
		}
	}
	for _, n := range r.nodes {
		if n.mount != "" {
			exec.Command("umount", n.mount).Run()
		}
	}
	if !keep {
		os.RemoveAll(r.dir)
	}
}

func (r *frun) execute() {
	t := r.t
	for _, n := range r.nodes {
		if err := n.start(r.maxOffset); err != nil {
			t.Fatalf("[seed %d] %v", r.seed, err)
		}
	}
	var wg sync.WaitGroup
	for i, n := range r.nodes[1:] {
		wg.Add(1)
		go r.client(i+1, n, &wg)
	}
	begin := time.Now()
	for _, e := range r.schedule {
		if d := time.Until(begin.Add(e.at)); d > 0 {
			time.Sleep(d)
		}
		r.stats.faults[e.kind]++
		heal := r.apply(e)
		if e.kind != "disk" { // diskFault holds by itself
			time.Sleep(e.hold)
		}
		r.checkClocks()
		heal()
	}
	// Writes continue a little after the last fault, then stop.
	time.Sleep(time.Second)
	r.stop.Store(true)
	wg.Wait()
	r.checkClocks()
}

// converge syncs every device until every replica has the same digest,
// nothing is parked or queued for the arbiter, twice in a row.
func (r *frun) converge(bound time.Duration) bool {
	start := time.Now()
	stable := 0
	var last []dDigest
	for time.Since(start) < bound {
		var wg sync.WaitGroup
		for _, n := range r.nodes[1:] {
			wg.Add(1)
			go func(n *fnode) {
				defer wg.Done()
				doJSON("POST", n.api(), "/v1/sync", nil, nil, 10*time.Second)
			}(n)
		}
		wg.Wait()
		last = last[:0]
		same := true
		for _, n := range r.nodes {
			var d dDigest
			if err := getJSON(n.api(), "/v1/debug/digest", &d, 5*time.Second); err != nil {
				same = false
				continue
			}
			last = append(last, d)
			if d.ViewDigest != last[0].ViewDigest || d.Parked > 0 || d.Queued > 0 {
				same = false
			}
		}
		if same && len(last) == len(r.nodes) {
			stable++
			if stable == 2 {
				r.stats.converge = time.Since(start)
				for _, d := range last[1:] {
					if d.Digest != last[0].Digest {
						// Same view, different bytes: a deleted record was
						// collected on some replicas before a write that
						// had seen the delete re-created it (agent/debug.go).
						r.stats.byteDiverged = true
						r.logf("replicas show the same state, but their bytes differ (%s vs %s): tombstone collection", last[0].Node, d.Node)
					}
				}
				return true
			}
		} else {
			stable = 0
		}
		time.Sleep(300 * time.Millisecond)
	}
	for _, d := range last {
		r.problem("not converged after %v: node %s view digest %.12s (bytes %.12s) records %d parked %d queued %d", bound, d.Node, d.ViewDigest, d.Digest, d.Records, d.Parked, d.Queued)
		for o, p := range d.ParkedBy {
			r.logf("node %s: %d writes of %s parked (seqs %d-%d), %d of them held already (they never apply), the furthest %dms ahead of its clock (max offset %dms)", d.Node, p.Count, o, p.Lo, p.Hi, p.Held, p.AheadNowMs, d.MaxOffsetMs)
		}
	}
	for _, n := range r.nodes {
		var st struct {
			Node  string            `json:"node"`
			Peers []json.RawMessage `json:"peers"`
		}
		if err := getJSON(n.api(), "/v1/status", &st, 5*time.Second); err != nil {
			r.problem("status of %s: %v", n.name, err)
			continue
		}
		r.problem("status of %s (%s): peers %s", n.name, st.Node, st.Peers)
	}
	return false
}

// ---------------------------------------------------------------------------
// the checker

type syncErr struct {
	Table   string                     `json:"table"`
	Record  string                     `json:"record"`
	Losing  map[string]json.RawMessage `json:"losing"`
	Policy  string                     `json:"policy"`
	Detail  string                     `json:"detail"`
	Retried bool                       `json:"retried"`
}

func (r *frun) check() {
	hub := r.nodes[0]
	var dump struct {
		Node    string            `json:"node"`
		Records []dRecord         `json:"records"`
		Writes  []dWrite          `json:"writes"`
		Horizon map[string]uint64 `json:"gc_horizon"`
	}
	if err := getJSON(hub.api(), "/v1/debug/dump", &dump, 60*time.Second); err != nil {
		r.problem("dump of the hub: %v", err)
		return
	}
	hubID := dump.Node
	type rk struct{ table, id string }
	recs := map[rk]*dRecord{}
	for i := range dump.Records {
		recs[rk{dump.Records[i].Table, dump.Records[i].ID}] = &dump.Records[i]
	}
	writesOf := map[rk][]*dWrite{}
	for i := range dump.Writes {
		w := &dump.Writes[i]
		writesOf[rk{w.Table, w.ID}] = append(writesOf[rk{w.Table, w.ID}], w)
	}
	// Sync errors of every replica, by (table, record, field, losing value).
	type ek struct{ table, id, field, value string }
	logged := map[ek]bool{}
	loggedRec := map[rk]bool{}
	for _, n := range r.nodes {
		var after uint64
		for {
			var page struct {
				Errors []struct {
					ID uint64 `json:"id"`
					syncErr
				} `json:"errors"`
			}
			if err := getJSON(n.api(), fmt.Sprintf("/v1/sync-errors?after=%d&limit=1000", after), &page, 10*time.Second); err != nil {
				r.problem("sync errors of %s: %v", n.name, err)
				break
			}
			for _, e := range page.Errors {
				for f, v := range e.Losing {
					logged[ek{e.Table, e.Record, f, string(v)}] = true
				}
				loggedRec[rk{e.Table, e.Record}] = true
				after = e.ID
			}
			if len(page.Errors) == 0 {
				break
			}
		}
	}
	// Conflicts (manual tables) on the hub.
	var cl struct {
		Conflicts []struct {
			Table      string `json:"table"`
			ID         string `json:"id"`
			Field      string `json:"field"`
			Candidates []struct {
				Value json.RawMessage `json:"value"`
				Node  string          `json:"node"`
			} `json:"candidates"`
		} `json:"conflicts"`
	}
	if err := getJSON(hub.api(), "/v1/conflicts", &cl, 30*time.Second); err != nil {
		r.problem("conflicts of the hub: %v", err)
	}
	queued := map[ek]bool{}
	for _, c := range cl.Conflicts {
		for _, cand := range c.Candidates {
			queued[ek{c.Table, c.ID, c.Field, string(cand.Value)}] = true
		}
	}
	policyOf := map[string]string{}
	for _, tb := range faultTables {
		policyOf[tb.name] = tb.policy
	}

	// classify a value v of field f set by write (node, seq) on record k.
	var classify func(k rk, node string, seq uint64, f, v string, depth int) (string, string)
	classify = func(k rk, node string, seq uint64, f, v string, depth int) (string, string) {
		rec := recs[k]
		live := false
		if rec != nil {
			for _, c := range rec.Fields[f] {
				if c.Node == node && c.Seq == seq {
					live = true
				}
			}
		}
		if live {
			switch {
			case rec.Exists && string(rec.Visible[f]) == v:
				return "present", ""
			case queued[ek{k.table, k.id, f, v}]:
				return "queued", ""
			case queued[ek{k.table, k.id, "_exists", "null"}] && !rec.Exists:
				return "queued", ""
			case logged[ek{k.table, k.id, f, v}]:
				return "logged", ""
			}
			return "unexplained", fmt.Sprintf("live but not shown (exists=%v, shown %s), not listed as a conflict, no sync error", rec != nil && rec.Exists, rec.Visible[f])
		}
		var hubSup []*dWrite
		for _, x := range writesOf[k] {
			if !x.covers(node, seq) || !(x.Delete || x.Fields[f] != nil || x.hasField(f)) {
				continue
			}
			if x.Node != hubID {
				return "superseded", ""
			}
			hubSup = append(hubSup, x)
		}
		if logged[ek{k.table, k.id, f, v}] {
			return "logged", ""
		}
		for _, x := range hubSup {
			if !x.Elided && string(x.Fields[f]) == v && depth < 8 {
				if c, _ := classify(k, x.Node, x.Seq, f, v, depth+1); c != "unexplained" {
					return "restamped", ""
				}
			}
		}
		if len(hubSup) == 0 {
			return "unexplained", "dead, but no write in the hub's log had seen it"
		}
		var ds []string
		for _, x := range hubSup {
			ds = append(ds, fmt.Sprintf("%s/%d(elided=%v %s)", x.Node, x.Seq, x.Elided, x.Fields[f]))
		}
		return "unexplained", "superseded only by the arbiter's decisions " + strings.Join(ds, " ") + ", and no sync error logs it"
	}

	var details []string
	for _, o := range r.hist.ops {
		switch o.out {
		case acked:
			r.stats.acked++
		case unknown:
			r.stats.unknown++
			continue
		default:
			r.stats.failedOps++
			continue
		}
		w := o.write
		k := rk{o.table, o.id}
		worst, why := "present", ""
		rank := map[string]int{"present": 0, "restamped": 1, "superseded": 2, "queued": 3, "logged": 4, "unexplained": 5}
		if o.del {
			rec := recs[k]
			live := false
			if rec != nil {
				for _, c := range rec.Exist {
					if c.Node == w.Node && c.Seq == w.Seq {
						live = true
					}
				}
			}
			if !live {
				worst = "unexplained"
				why = "the delete is dead, but no write in the hub's log had seen it"
				for _, x := range writesOf[k] {
					if x.covers(w.Node, w.Seq) {
						if x.Node != hubID {
							worst, why = "superseded", ""
							break
						}
						if loggedRec[k] {
							worst, why = "logged", ""
						} else {
							why = fmt.Sprintf("the delete is superseded only by the arbiter's decision %s/%d and no sync error names the record", x.Node, x.Seq)
						}
					}
				}
				// Under the tombstone horizon every replica had applied
				// the delete; dead with no write covering it, its record
				// was collected (a write made since re-creates the record
				// without naming the delete).
				if worst == "unexplained" && dump.Horizon[w.Node] >= w.Seq {
					worst, why = "present", ""
					r.stats.collected++
				}
			}
		} else {
			for f, v := range o.fields {
				c, d := classify(k, w.Node, w.Seq, f, v, 0)
				if rank[c] > rank[worst] {
					worst, why = c, fmt.Sprintf("field %s=%s: %s", f, v, d)
				}
			}
		}
		switch worst {
		case "present":
			r.stats.present++
		case "restamped":
			r.stats.restamped++
		case "superseded":
			r.stats.superseded++
		case "queued":
			r.stats.queued++
		case "logged":
			r.stats.logged++
		default:
			r.stats.unexplained++
			r.stats.unexplByTbl[policyOf[o.table]]++
			if len(details) < 40 {
				details = append(details, fmt.Sprintf("%s %s/%s by %s (write %s/%d hlc %d, acked at %s): %s",
					map[bool]string{true: "delete", false: "put"}[o.del], o.table, o.id, o.node, w.Node, w.Seq, w.HLC, o.end.UTC().Format("15:04:05.000"), why))
			}
		}
	}
	// Nothing superseded comes back: no live candidate (value, delete
	// marker, or existence operation) is covered by a write that sets the
	// same field (or deletes) and had seen it.
	for k, rec := range recs {
		if strings.HasPrefix(k.table, "_") {
			continue
		}
		check := func(f string, c dEntry) {
			for _, x := range writesOf[k] {
				if x.Node == c.Node && x.Seq == c.Seq {
					continue
				}
				if x.covers(c.Node, c.Seq) && (f == "" || x.Delete || x.hasField(f)) {
					r.stats.resurrected++
					if r.stats.resurrected <= 10 {
						r.problem("resurrected: %s/%s field %q candidate %s/%d is live though write %s/%d had seen it", k.table, k.id, f, c.Node, c.Seq, x.Node, x.Seq)
					}
					return
				}
			}
		}
		for f, cs := range rec.Fields {
			for _, c := range cs {
				check(f, c)
			}
		}
		for _, c := range rec.Exist {
			check("", c)
		}
	}
	// Reads: every value read was written by some client.
	for _, rd := range r.hist.reads {
		for f, v := range rd.fields {
			if !r.hist.attempted[string(v)] {
				r.stats.phantoms++
				r.problem("phantom read on %s: %s/%s field %s = %s was never written", rd.node, rd.table, rd.id, f, v)
			}
		}
	}
	r.stats.reads = len(r.hist.reads)
	for _, d := range details {
		r.problem("unexplained acknowledged write: %s", d)
	}
}

func (w *dWrite) hasField(f string) bool {
	_, ok := w.Fields[f]
	return ok
}

// ---------------------------------------------------------------------------
// the tests

func oneRun(t *testing.T, seed int64, nodes int, length time.Duration, soak bool) runStats {
	r := newRun(t, seed, nodes, length, soak)
	r.draw()
	sched := r.printSchedule()
	t.Log(sched)
	os.WriteFile(filepath.Join(r.dir, "schedule.txt"), []byte(sched), 0o644)
	keep := true
	defer func() { r.cleanup(keep) }()
	r.execute()
	var maxSkew time.Duration
	for _, e := range r.schedule {
		if e.kind == "clock" {
			maxSkew = max(maxSkew, time.Duration(abs(e.param)*float64(r.maxOffset)))
		}
	}
	bound := 60*time.Second + maxSkew
	converged := r.converge(bound)
	if converged {
		r.check()
	}
	s := r.stats
	// Every unexplained write fails the run, on every policy's table;
	// -fault.strict=false reports (and does not fail on) those of the
	// client-wins and server-wins tables, to look past the arbiter while
	// investigating something else.
	strictProblems := 0
	for _, p := range s.problems {
		if strings.HasPrefix(p, "unexplained acknowledged write:") && !*faultStrict && (strings.Contains(p, " f_cw/") || strings.Contains(p, " f_sw/")) {
			continue
		}
		strictProblems++
	}
	t.Logf("[seed %d] faults %v; ops acked %d, unknown %d, failed %d, reads %d; present %d (deletes collected %d), superseded %d, restamped %d, logged %d, queued %d, unexplained %d %v; resurrected %d; phantom reads %d; parked seen %d; disk-full errors %d; converged in %v",
		seed, s.faults, s.acked, s.unknown, s.failedOps, s.reads, s.present, s.collected, s.superseded, s.restamped, s.logged, s.queued, s.unexplained, s.unexplByTbl,
		s.resurrected, s.phantoms, s.parkedSeen, s.diskErrors, s.converge.Round(time.Millisecond))
	for _, p := range s.problems {
		t.Logf("[seed %d] %s", seed, p)
	}
	if s.faults["clock"] > 0 && s.parkedSeen == 0 {
		strictProblems++
		t.Logf("[seed %d] clock faults beyond the bound, but no parked write was ever listed", seed)
	}
	if !converged || strictProblems > 0 || (s.acked == 0) {
		t.Errorf("[seed %d] FAILED: %d problems (converged %v, %d writes acknowledged); data dirs and logs kept in %s\n%s", seed, strictProblems, converged, s.acked, r.dir, sched)
		s.failed = true
		return s
	}
	keep = *faultKeep
	if keep {
		t.Logf("[seed %d] kept %s", seed, r.dir)
	}
	return s
}

var faultFailFast = flag.Bool("fault.failfast", false, "soak: stop at the first failing run")

var faultStrict = flag.Bool("fault.strict", true, "fail on unexplained client-wins and server-wins writes too (false: report them only)")

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// faultTestSeeds are the seeds of make test's short runs: fixed, so that
// make test is repeatable; random seeds are make soak's (-fault.duration).
//
// Seed 20261207 once found two faults, both fixed: a replica that
// collected a deleted record and wrote it again diverged (its write
// carried an empty context; store.TestWriteAfterCollectionConverges), and
// its disk fault ended d1 (a write on the full disk took the write-ahead
// log past the store's flush bound, and the flush's log rotation ended the
// process; store.TestFullDiskGrownWAL).
var faultTestSeeds = []int64{424242, 20261207}

// TestFaults: short runs (every fault kind at least once), one per seed
// of faultTestSeeds (or the -fault.seed given), in make test; a soak with
// -fault.duration, from -fault.seed (0: random, printed). In CI (CI set)
// the disk faults must run: a run that cannot mount their tmpfs fails.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: the fault run takes about a minute")
	}
	if *faultNodes < 3 {
		t.Fatalf("-fault.nodes=%d: want at least 3 (a hub and two devices)", *faultNodes)
	}
	if *faultDuration == 0 {
		seeds := faultTestSeeds
		if *faultSeed != 0 {
			seeds = []int64{*faultSeed}
		}
		length := *faultRunLen
		if length == 0 {
			length = 30 * time.Second
		}
		start := time.Now()
		var all []runStats
		for _, seed := range seeds {
			t.Logf("fault seed %d (replay: go test ./test/e2e -run TestFaults -fault.seed=%d)", seed, seed)
			all = append(all, oneRun(t, seed, *faultNodes, length, false))
		}
		writeSummary(t, all, time.Since(start))
		return
	}
	seed := *faultSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000
	}
	t.Logf("fault seed %d (replay: go test ./test/e2e -run TestFaults -fault.seed=%d)", seed, seed)
	length := *faultRunLen
	if length == 0 {
		length = 4 * time.Minute
	}
	start := time.Now()
	var all []runStats
	for i := int64(0); time.Since(start) < *faultDuration; i++ {
		// A failing run keeps its data and is reported; the soak goes on
		// (the summary counts every run), unless -fault.failfast.
		s := oneRun(t, seed+i, *faultNodes, length, true)
		all = append(all, s)
		if t.Failed() && *faultFailFast {
			break
		}
	}
	writeSummary(t, all, time.Since(start))
}

func writeSummary(t *testing.T, all []runStats, took time.Duration) {
	faults := map[string]int{}
	total, acked, lost, cwLost, superseded, logged, queued, present, resurrected := 0, 0, 0, 0, 0, 0, 0, 0, 0
	var maxConv, sumConv time.Duration
	var seeds []string
	diverged := 0
	var failedSeeds []string
	for _, s := range all {
		if s.failed {
			failedSeeds = append(failedSeeds, fmt.Sprint(s.seed))
		}
		if s.byteDiverged {
			diverged++
		}
		seeds = append(seeds, fmt.Sprint(s.seed))
		for k, v := range s.faults {
			faults[k] += v
			total += v
		}
		acked += s.acked
		lost += s.unexplained
		cwLost += s.unexplByTbl["client-wins"] + s.unexplByTbl["server-wins"]
		superseded += s.superseded + s.restamped
		logged += s.logged
		queued += s.queued
		present += s.present
		resurrected += s.resurrected
		maxConv = max(maxConv, s.converge)
		sumConv += s.converge
	}
	kinds := make([]string, 0, len(faults))
	for k := range faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var fk []string
	for _, k := range kinds {
		fk = append(fk, fmt.Sprintf("%s=%d", k, faults[k]))
	}
	mean := time.Duration(0)
	if len(all) > 0 {
		mean = sumConv / time.Duration(len(all))
	}
	status := "PASS"
	if t.Failed() {
		status = "FAIL"
	}
	if len(failedSeeds) == 0 {
		failedSeeds = []string{"none"}
	}
	sum := fmt.Sprintf("fault summary: %s in %v; runs %d (seeds %s; failed: %s); nodes %d; faults injected %d (%s); writes acknowledged %d (present %d, superseded %d, rejected and logged %d, in the conflict queue %d); writes lost %d (of which on client-wins/server-wins tables: %d); resurrected %d; time to converge max %v mean %v; runs whose replicas converged in view but not byte for byte (tombstone collection) %d\n",
		status, took.Round(time.Second), len(all), strings.Join(seeds, ","), strings.Join(failedSeeds, ","), *faultNodes, total, strings.Join(fk, " "), acked, present, superseded, logged, queued, lost, cwLost, resurrected,
		maxConv.Round(time.Millisecond), mean.Round(time.Millisecond), diverged)
	t.Log(sum)
	fmt.Print(sum)
	if *faultSummary != "" {
		f, err := os.OpenFile(*faultSummary, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			f.WriteString(sum)
			f.Close()
		}
	}
}
