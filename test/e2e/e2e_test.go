package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/replicad/replicad/client"
)

var binary string

func TestMain(m *testing.M) {
	if p := os.Getenv(claimChildEnv); p != "" {
		claimChild(p) // TestClaimPortAcrossProcesses's other process
	}
	dir, err := os.MkdirTemp("", "replicad-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "replicad")
	build := exec.Command("go", "build", "-o", binary, "github.com/replicad/replicad/cmd/replicad")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building replicad:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a free loopback address for an agent to listen on.
// The port is taken below the kernel's ephemeral range when there is room
// there: a node restarted on its address (the fault runs kill and restart
// nodes) would otherwise find its port taken as the source port of some
// outgoing connection meanwhile ("already in use"), since the kernel hands
// out ephemeral ports that no listener holds.
func freeAddr(t *testing.T) string {
	t.Helper()
	lo, _ := ephemeralRange()
	if lo > freePortLow+1000 {
		for i := 0; i < 64; i++ {
			port := freePortLow + rand.IntN(lo-freePortLow)
			if !claimPort(port) {
				continue
			}
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				l.Close()
				return l.Addr().String()
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freePortLow is the lowest port freeAddr picks below the ephemeral range.
const freePortLow = 10000

// claimed is the ports this test process has handed out, and the file
// that claims them from other processes (claimPort).
var claimed struct {
	sync.Mutex
	ports map[int]bool
	file  *os.File // nil: claims are this process's only
	tried bool
}

// claimPort claims port for this test process, for its whole life: a
// port is handed out once per process, and never while another test
// process (a second go test run on the same machine) holds it. A port
// freeAddr finds free may otherwise be taken meanwhile by an agent of
// another run that picked it a moment earlier and has not bound it yet.
// The claim is a write lock on the port's byte of one file shared by
// every process (os.TempDir()/replicad-e2e-ports.lock; fcntl record
// locks, which the kernel releases when the process exits, however it
// exits). When that file cannot be used, claims are this process's only.
func claimPort(port int) bool {
	claimed.Lock()
	defer claimed.Unlock()
	if claimed.ports[port] {
		return false
	}
	if claimed.ports == nil {
		claimed.ports = map[int]bool{}
	}
	if !claimed.tried {
		claimed.tried = true
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "replicad-e2e-ports.lock"), os.O_RDWR|os.O_CREATE, 0o666)
		if err == nil {
			claimed.file = f // kept open: closing any descriptor of it drops the process's locks
		}
	}
	if f := claimed.file; f != nil {
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart, Start: int64(port), Len: 1}
		if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
			return false // another process holds it
		}
	}
	claimed.ports[port] = true
	return true
}

// ephemeralRange reads the kernel's ephemeral port range (Linux), or
// 0, 0 when it cannot.
func ephemeralRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return 0, 0
	}
	return lo, hi
}

// node is one agent process.
type node struct {
	t    *testing.T
	name string
	dir  string
	api  string
	sync string
	args []string
	cmd  *exec.Cmd
	log  *lockedBuffer
	done chan error
	// nofile, when set, is the descriptor limit (soft and hard) the agent
	// runs under.
	nofile int
}

// lockedBuffer is a bytes.Buffer safe to read while the process writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startNode runs `replicad agent` with a fresh data dir and free ports.
func startNode(t *testing.T, name string, args ...string) *node {
	t.Helper()
	n := &node{t: t, name: name, dir: filepath.Join(t.TempDir(), name), api: freeAddr(t), sync: freeAddr(t), args: args}
	n.start()
	t.Cleanup(n.kill)
	return n
}

func (n *node) start() {
	t := n.t
	t.Helper()
	args := append([]string{"agent", "--data-dir", n.dir, "--api-addr", n.api, "--sync-addr", n.sync, "--log-level", "debug"}, n.args...)
	n.cmd = exec.Command(binary, args...)
	if n.nofile > 0 {
		// The shell lowers both limits, then becomes the agent (Go raises
		// the soft limit to the hard one at start).
		n.cmd = exec.Command("/bin/sh", append([]string{"-c", `ulimit -n "$0" && exec "$@"`, strconv.Itoa(n.nofile), binary}, args...)...)
	}
	n.log = &lockedBuffer{}
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.done = make(chan error, 1)
	go func(c *exec.Cmd, d chan error) { d <- c.Wait() }(n.cmd, n.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := n.client().Status(context.Background()); err == nil {
			return
		}
		select {
		case err := <-n.done:
			t.Fatalf("%s exited at start: %v\n%s", n.name, err, n.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer in 10s\n%s", n.name, n.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop() {
	n.t.Helper()
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-n.done:
		if err != nil {
			n.t.Fatalf("%s: unclean exit: %v\n%s", n.name, err, n.log)
		}
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		n.t.Fatalf("%s did not stop in 10s\n%s", n.name, n.log)
	}
	n.cmd = nil
}

func (n *node) kill() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Kill()
	<-n.done
	n.cmd = nil
	if n.t.Failed() {
		n.t.Logf("log of %s:\n%s", n.name, n.log)
	}
}

func (n *node) client() *client.Client { return client.New(n.api) }

// cli runs a client subcommand against n; stdout is a pipe, so output
// is JSON.
func (n *node) cli(args ...string) (stdout, stderr string, code int) {
	n.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "REPLICAD_ADDR="+n.api)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func (n *node) mustCLI(args ...string) string {
	n.t.Helper()
	out, errOut, code := n.cli(args...)
	if code != 0 {
		n.t.Fatalf("replicad %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func fieldsOf(t *testing.T, r *client.Record) string {
	t.Helper()
	b, err := json.Marshal(r.Fields)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventually retries fn until it returns nil or 10s pass.
func eventually(t *testing.T, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestPutGetThroughCLI(t *testing.T) {
	d := startNode(t, "device")
	d.mustCLI("put", "jobs", "j1", "title=fix pump", "prio:=3", `tags:=["a","b"]`, "ok:=true", "note={bad")
	out := d.mustCLI("get", "jobs", "j1")
	var r client.Record
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("get output %q: %v", out, err)
	}
	if got, want := fieldsOf(t, &r), `{"note":"{bad","ok":true,"prio":3,"tags":["a","b"],"title":"fix pump"}`; got != want {
		t.Errorf("fields: got %s, want %s", got, want)
	}
	out = d.mustCLI("list", "jobs")
	if !strings.Contains(out, `"id":"j1"`) {
		t.Errorf("list: %s", out)
	}
	d.mustCLI("delete", "jobs", "j1")
	_, errOut, code := d.cli("get", "jobs", "j1")
	if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "not found") {
		t.Errorf("get after delete: exit %d, stderr %q; want non-zero and one line", code, errOut)
	}
	_, errOut, code = d.cli("resolve", "jobs", "j1", "title")
	if code != 2 || !strings.Contains(errOut, "--pick") {
		t.Errorf("resolve without a choice: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = d.cli("--addr", "127.0.0.1:1", "status")
	if code != 1 || !strings.Contains(errOut, "cannot reach") {
		t.Errorf("status on a dead address: exit %d, stderr %q", code, errOut)
	}
}

func TestOfflineOnlineConverges(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	d1 := startNode(t, "d1", "--hub", hub.sync, "--pull-interval", "1s")
	d2 := startNode(t, "d2", "--hub", hub.sync, "--pull-interval", "1s")
	ctx := context.Background()
	d1.mustCLI("put", "jobs", "j1", "title=first")
	eventually(t, "j1 reaches d2", func() error {
		_, err := d2.client().Get(ctx, "jobs", "j1")
		return err
	})
	d1.mustCLI("offline")
	d1.mustCLI("put", "jobs", "j1", "status=done")
	d1.mustCLI("put", "jobs", "j2", "title=offline work")
	d2.mustCLI("put", "jobs", "j1", "title=second")
	// Positive signal first: d2's write, made after d1's offline ones,
	// reached the hub (pushes and pulls ran); d1's did not.
	eventually(t, "d2's later write reaches the hub", func() error {
		r, err := hub.client().Get(ctx, "jobs", "j1")
		if err != nil {
			return err
		}
		if string(r.Fields["title"]) != `"second"` {
			return fmt.Errorf("j1 title %s", r.Fields["title"])
		}
		return nil
	})
	if _, err := hub.client().Get(ctx, "jobs", "j2"); !client.IsNotFound(err) {
		t.Fatalf("an offline device's write reached the hub: %v", err)
	}
	// The session that carried j1 counts as held once d1 has recorded
	// its end: then only the two offline writes are pending.
	eventually(t, "d1 offline with 2 writes pending", func() error {
		st, err := d1.client().Status(ctx)
		if err != nil {
			return err
		}
		if st.Online || st.PendingOutbound != 2 {
			return fmt.Errorf("online %v, %d pending", st.Online, st.PendingOutbound)
		}
		return nil
	})
	d1.mustCLI("online")
	d1.mustCLI("sync")
	want := `{"status":"done","title":"second"}`
	for _, n := range []*node{hub, d1, d2} {
		eventually(t, n.name+" converges", func() error {
			r, err := n.client().Get(ctx, "jobs", "j1")
			if err != nil {
				return err
			}
			if got := fieldsOf(t, r); got != want {
				return fmt.Errorf("j1 = %s, want %s", got, want)
			}
			_, err = n.client().Get(ctx, "jobs", "j2")
			return err
		})
	}
	eventually(t, "nothing pending on d1", func() error {
		st, err := d1.client().Status(ctx)
		if err != nil {
			return err
		}
		if st.PendingOutbound != 0 {
			return fmt.Errorf("pending %d", st.PendingOutbound)
		}
		return nil
	})
}

func TestBadRequestsStoreNothing(t *testing.T) {
	d := startNode(t, "device", "--max-body-bytes", "2048")
	base := "http://" + d.api
	big := `{"fields":{"x":"` + strings.Repeat("a", 4096) + `"}}`
	cases := []struct {
		method, path, body string
		code               int
	}{
		{"PUT", "/v1/tables/jobs/records/j1", `{"fields":{"a":1}`, 400},
		{"PUT", "/v1/tables/jobs/records/j1", `{"fields":{"a":1},"extra":true}`, 400},
		{"PUT", "/v1/tables/jobs/records/j1", `{"fields":{"a":1}} {}`, 400},
		{"PUT", "/v1/tables/jobs/records/j1", ``, 400},
		{"PUT", "/v1/tables/jobs/records/j1", `{}`, 400},
		{"PUT", "/v1/tables/jobs/records/j1", `{"fields":{"":1}}`, 400},
		{"PUT", "/v1/tables/jo%20bs/records/j1", `{"fields":{"a":1}}`, 400},
		{"PUT", "/v1/tables/" + strings.Repeat("t", 65) + "/records/j1", `{"fields":{"a":1}}`, 400},
		{"PUT", "/v1/tables/jobs/records/j%001", `{"fields":{"a":1}}`, 400},
		{"PUT", "/v1/tables/jobs/records/j1", big, 413},
		{"GET", "/v1/tables/jobs/records/j1", ``, 404},
		{"POST", "/v1/conflicts/jobs/j1/title", `{"pick":0}`, 404},
		{"POST", "/v1/conflicts/jobs/j1/title", `{"pick":0,"value":1}`, 400},
		{"POST", "/v1/sync-errors/7/retry", ``, 404},
		{"POST", "/v1/sync-errors/x/retry", ``, 400},
		{"POST", "/v1/connectivity", `{"online":"yes"}`, 400},
		{"POST", "/v1/reset", `{}`, 400},
		{"GET", "/v1/changes?since=abc", ``, 400},
		{"GET", "/v1/nothing", ``, 404},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		if resp.StatusCode != c.code || json.Unmarshal(b, &e) != nil || e.Error == "" {
			t.Errorf("%s %s %.40q: got %d %s, want %d with {\"error\":...}", c.method, c.path, c.body, resp.StatusCode, b, c.code)
		}
	}
	ctx := context.Background()
	ch, err := d.client().Changes(ctx, "0", 0)
	if err != nil || len(ch.Changes) != 0 {
		t.Errorf("after rejected requests the feed holds %+v (%v); want nothing", ch, err)
	}
	p, err := d.client().List(ctx, "jobs", "", 0)
	if err != nil || len(p.Records) != 0 {
		t.Errorf("after rejected requests jobs holds %+v (%v); want nothing", p, err)
	}
}

func TestRestartKeepsEverythingAndFeedResumes(t *testing.T) {
	d := startNode(t, "device")
	ctx := context.Background()
	c := d.client()
	for i := 1; i <= 3; i++ {
		if _, err := c.Put(ctx, "jobs", fmt.Sprintf("j%d", i), map[string]json.RawMessage{"n": json.RawMessage(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := c.Changes(ctx, "0", 0)
	if err != nil || len(ch.Changes) != 3 {
		t.Fatalf("feed: %+v, %v", ch, err)
	}
	cursor := ch.Next
	before, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d.stop()
	d.start()
	after, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Node != before.Node {
		t.Errorf("node id changed across a restart: %s -> %s", before.Node, after.Node)
	}
	for i := 1; i <= 3; i++ {
		r, err := c.Get(ctx, "jobs", fmt.Sprintf("j%d", i))
		if err != nil || fieldsOf(t, r) != fmt.Sprintf(`{"n":%d}`, i) {
			t.Errorf("j%d after restart: %+v, %v", i, r, err)
		}
	}
	// Nothing new after the cursor yet; a long poll wakes on the next write.
	got := make(chan *client.Changes, 1)
	go func() {
		ch, err := c.Changes(ctx, cursor, 10*time.Second)
		if err != nil {
			t.Error(err)
		}
		got <- ch
	}()
	time.Sleep(200 * time.Millisecond)
	if _, err := c.Put(ctx, "jobs", "j4", map[string]json.RawMessage{"n": json.RawMessage("4")}); err != nil {
		t.Fatal(err)
	}
	select {
	case ch := <-got:
		if ch == nil || len(ch.Changes) != 1 || ch.Changes[0].ID != "j4" {
			t.Fatalf("resumed feed: %+v; want only j4", ch)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long poll did not wake on a write")
	}
	// Server-sent events from the same cursor.
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var ids []string
	err = c.Follow(sctx, cursor, func(ch client.Change) error {
		ids = append(ids, ch.ID)
		return io.EOF
	})
	if err != io.EOF || len(ids) != 1 || ids[0] != "j4" {
		t.Errorf("SSE from the cursor: %v, %v", ids, err)
	}
}

func TestSecondAgentOnSameDirRefused(t *testing.T) {
	d := startNode(t, "device")
	cmd := exec.Command(binary, "agent", "--data-dir", d.dir, "--api-addr", freeAddr(t), "--sync-addr", freeAddr(t))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use") || !strings.Contains(string(out), "another replicad agent") {
		t.Fatalf("second agent: %v\n%s", err, out)
	}
	if _, err := d.client().Status(context.Background()); err != nil {
		t.Errorf("the first agent suffered: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.hcl")
	os.WriteFile(cfg, []byte("role = \"device\"\nbogus = 1\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", cfg}, "bad.hcl:2"},
		{[]string{"--log-level", "loud"}, "--log-level"},
		{[]string{"--policy", "jobs=sometimes"}, "--policy"},
		{[]string{"--role", "server"}, "--role"},
	} {
		out, err := exec.Command(binary, append([]string{"agent", "--data-dir", filepath.Join(dir, "d")}, c.args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("agent %v: %v %s; want an error mentioning %q", c.args, err, out, c.want)
		}
	}
	good := filepath.Join(dir, "good.hcl")
	os.WriteFile(good, []byte("pull_interval = \"5x\"\n"), 0o644)
	out, err := exec.Command(binary, "agent", "--config", good).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "good.hcl:1") {
		t.Errorf("bad duration: %v %s", err, out)
	}
}

func TestConflictResolveAndReset(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--policy", "jobs=manual")
	d1 := startNode(t, "d1", "--hub", hub.sync)
	d2 := startNode(t, "d2", "--hub", hub.sync)
	ctx := context.Background()
	d1.mustCLI("put", "jobs", "j1", "title=base")
	d1.mustCLI("sync")
	d2.mustCLI("sync")
	d1.mustCLI("offline")
	d1.mustCLI("put", "jobs", "j1", "title=from-d1")
	d2.mustCLI("put", "jobs", "j1", "title=from-d2")
	d1.mustCLI("online")
	d1.mustCLI("sync")
	d2.mustCLI("sync")
	var cs []client.Conflict
	eventually(t, "hub shows the conflict", func() error {
		var err error
		cs, err = hub.client().Conflicts(ctx)
		if err == nil && (len(cs) != 1 || len(cs[0].Candidates) != 2) {
			err = fmt.Errorf("conflicts %+v", cs)
		}
		return err
	})
	// Both started from "base": the conflict shows it, on the hub's list
	// and on the record as a device that took part sees it.
	if cs[0].Base == nil || string(cs[0].Base.Value) != `"base"` {
		t.Errorf("hub's conflict base = %+v, want the value both started from", cs[0].Base)
	}
	eventually(t, "d2 shows the conflict with its base", func() error {
		d2.mustCLI("sync")
		r, err := d2.client().Get(ctx, "jobs", "j1")
		if err != nil {
			return err
		}
		if len(r.Conflicts["title"]) != 2 || r.Bases["title"] == nil || string(r.Bases["title"].Value) != `"base"` {
			return fmt.Errorf("d2's record: conflicts %v, bases %v", r.Conflicts, r.Bases)
		}
		return nil
	})
	if out := hub.mustCLI("conflicts"); !strings.Contains(out, "base") || !strings.Contains(out, `from-d1`) {
		t.Errorf("replicad conflicts does not show the base:\n%s", out)
	}
	st, err := hub.client().Status(ctx)
	if err != nil || st.Conflicts != 1 || st.Policies["jobs"] != "manual" {
		t.Errorf("hub status: %+v %v", st, err)
	}
	pick := -1
	for i, c := range cs[0].Candidates {
		if string(c.Value) == `"from-d1"` {
			pick = i
		}
	}
	if _, err := hub.client().ResolvePick(ctx, "jobs", "j1", "title", pick); err != nil {
		t.Fatal(err)
	}
	if _, err := hub.client().ResolvePick(ctx, "jobs", "j1", "title", 0); !client.IsNotFound(err) {
		t.Errorf("resolving twice: %v, want 404", err)
	}
	d1.mustCLI("sync")
	d2.mustCLI("sync")
	for _, n := range []*node{hub, d1, d2} {
		r, err := n.client().Get(ctx, "jobs", "j1")
		if err != nil || fieldsOf(t, r) != `{"title":"from-d1"}` || len(r.Conflicts) != 0 {
			t.Errorf("%s after resolve: %+v %v", n.name, r, err)
		}
	}
	// Reset d1: a fresh replica with a new node id, resynced from the hub.
	before, _ := d1.client().Status(ctx)
	_, errOut, code := d1.cli("reset")
	if code != 2 || !strings.Contains(errOut, "--yes") {
		t.Errorf("reset without --yes: exit %d %q", code, errOut)
	}
	out := d1.mustCLI("reset", "--yes")
	var rr client.ResetResult
	if err := json.Unmarshal([]byte(out), &rr); err != nil || rr.Node == before.Node || rr.Sync.Succeeded != 1 {
		t.Fatalf("reset: %s %v", out, err)
	}
	r, err := d1.client().Get(ctx, "jobs", "j1")
	if err != nil || fieldsOf(t, r) != `{"title":"from-d1"}` {
		t.Errorf("d1 after reset: %+v %v", r, err)
	}
	d1.mustCLI("put", "jobs", "j2", "title=after-reset")
	d1.mustCLI("sync")
	if _, err := hub.client().Get(ctx, "jobs", "j2"); err != nil {
		t.Errorf("a write after reset did not reach the hub: %v", err)
	}
}

func TestGossipDiscovery(t *testing.T) {
	hubGossip := freeAddr(t)
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", hubGossip, "--gossip-profile", "local")
	d1 := startNode(t, "d1", "--join", hubGossip, "--gossip-profile", "local", "--pull-interval", "1s")
	ctx := context.Background()
	// d1 knows the hub only through gossip: its sync address comes from
	// the hub's metadata.
	eventually(t, "d1 finds the hub", func() error {
		st, err := d1.client().Status(ctx)
		if err == nil && (len(st.Peers) != 1 || st.Peers[0].Addr != hub.sync || st.Peers[0].LastSuccess == "") {
			err = fmt.Errorf("peers %+v", st.Peers)
		}
		return err
	})
	d1.mustCLI("put", "jobs", "j1", "title=gossiped")
	eventually(t, "the write reaches the hub", func() error {
		_, err := hub.client().Get(ctx, "jobs", "j1")
		return err
	})
}
