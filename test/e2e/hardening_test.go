package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/client"
)

// Resource attacks on a real agent process: what must stay bounded
// (descriptors, memory, goroutines) and that an honest device still syncs
// during and after the attack.

// procStats are a process's resources, read from /proc.
type procStats struct {
	fds        int
	rssKB      int
	goroutines int // from /metrics; -1 when the API did not answer
}

func (p procStats) String() string {
	return fmt.Sprintf("fds=%d rss=%.1fMiB goroutines=%d", p.fds, float64(p.rssKB)/1024, p.goroutines)
}

func (n *node) stats() procStats {
	n.t.Helper()
	pid := n.cmd.Process.Pid
	var st procStats
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		n.t.Fatalf("descriptors of %s: %v", n.name, err)
	}
	st.fds = len(ents)
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		n.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			st.rssKB, _ = strconv.Atoi(f[1])
		}
	}
	st.goroutines = -1
	hc := &http.Client{Timeout: 2 * time.Second}
	if resp, err := hc.Get("http://" + n.api + "/metrics"); err == nil {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
				st.goroutines, _ = strconv.Atoi(v)
			}
		}
		resp.Body.Close()
	}
	return st
}

// honestSync writes a record on d and syncs until d knows the hub holds
// it; it returns how long that took, or fails after limit.
func honestSync(t *testing.T, d, hub *node, id string, limit time.Duration) time.Duration {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	if _, err := d.client().Put(ctx, "jobs", id, map[string]json.RawMessage{"title": json.RawMessage(`"honest"`)}); err != nil {
		t.Fatalf("put on %s: %v", d.name, err)
	}
	var last string
	for time.Since(start) < limit {
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		sum, err := d.client().Sync(sctx)
		cancel()
		switch {
		case err != nil:
			last = err.Error()
		case sum.Succeeded == 0:
			last = fmt.Sprintf("sync failed: %v", sum.Failed)
		default:
			// The device knows the hub holds its writes (the hub's API
			// may be what is attacked).
			st, err := d.client().Status(ctx)
			if err == nil && st.PendingOutbound == 0 {
				if last != "" {
					t.Logf("%s: an attempt failed before: %s", id, last)
				}
				return time.Since(start)
			}
			if err != nil {
				last = err.Error()
			} else {
				last = fmt.Sprintf("%d writes not known to be held by the hub yet", st.PendingOutbound)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s did not sync %s with %s in %v: %s", d.name, id, hub.name, limit, last)
	return 0
}

// idleConns opens n TCP connections to addr that send nothing.
func idleConns(t *testing.T, addr string, n int) []net.Conn {
	t.Helper()
	var cs []net.Conn
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d to %s: %v", i, addr, err)
		}
		cs = append(cs, c)
	}
	t.Cleanup(func() { closeAll(cs) })
	return cs
}

func closeAll(cs []net.Conn) {
	for _, c := range cs {
		c.Close()
	}
}

// TestDescriptorExhaustion runs a hub under a descriptor limit of 256.
// First without connection bounds: idle API connections exhaust its
// descriptors (accept fails with "too many open files"); once they close,
// both listeners accept again and a device syncs (the sync listener used
// to stop for good). Then with the default bounds (a quarter of the
// limit each): the same attack leaves descriptors to spare, the device
// syncs during it, and the idle connections are cut after the read
// timeout.
func TestDescriptorExhaustion(t *testing.T) {
	const nofile = 256
	dev := startNode(t, "dev", "--pull-interval", "1h")

	t.Run("unbounded", func(t *testing.T) {
		hub := startLimited(t, "hub", nofile, "--role", "hub", "--gossip-addr", "off",
			"--api-max-conns", "100000", "--sync-max-conns", "100000")
		dev.retarget(t, hub)
		before := hub.stats()
		t.Logf("hub before: %v; honest sync %v", before, honestSync(t, dev, hub, "before", 10*time.Second))
		conns := idleConns(t, hub.api, 2*nofile)
		eventually(t, "the hub runs out of descriptors", func() error {
			if st := hub.stats(); st.fds < nofile-2 {
				return fmt.Errorf("%d descriptors open", st.fds)
			}
			return nil
		})
		during := hub.stats()
		// A sync attempt while the hub has no descriptor left: its sync
		// listener's accept fails (EMFILE).
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		sum, err := dev.client().Sync(sctx)
		cancel()
		t.Logf("hub exhausted: %v; a sync attempt meanwhile: %+v, %v", during, sum, err)
		closeAll(conns)
		took := honestSync(t, dev, hub, "after", 15*time.Second)
		t.Logf("hub after the attack: %v; honest sync %v after the connections closed", hub.stats(), took)
		if !strings.Contains(hub.log.String(), "accepting connections failed; retrying") {
			t.Errorf("the hub did not log the accept failures at ERROR")
		}
		eventually(t, "descriptors back to where they were", func() error {
			if st := hub.stats(); st.fds > before.fds+4 {
				return fmt.Errorf("%d descriptors open, %d before the attack", st.fds, before.fds)
			}
			return nil
		})
		t.Logf("hub settled: %v", hub.stats())
	})

	t.Run("bounded", func(t *testing.T) {
		hub := startLimited(t, "hub2", nofile, "--role", "hub", "--gossip-addr", "off", "--api-read-timeout", "3s")
		dev.retarget(t, hub)
		before := hub.stats()
		t.Logf("hub before: %v; honest sync %v", before, honestSync(t, dev, hub, "b-before", 10*time.Second))
		start := time.Now()
		conns := idleConns(t, hub.api, 2*nofile)
		// The bound is a quarter of the limit: 64 idle connections stay,
		// the others are closed at once.
		eventually(t, "the hub closes the connections beyond its bound", func() error {
			if st := hub.stats(); st.fds > before.fds+nofile/4+8 {
				return fmt.Errorf("%d descriptors open", st.fds)
			}
			return nil
		})
		during := hub.stats()
		took := honestSync(t, dev, hub, "b-during", 10*time.Second)
		t.Logf("hub under attack (%d idle connections): %v; honest sync %v", len(conns), during, took)
		if time.Since(start) > 2500*time.Millisecond {
			t.Logf("(the sync during the attack ended %v after it began, the idle connections may have been cut already)", time.Since(start))
		}
		if during.fds >= nofile-16 {
			t.Errorf("descriptors under attack %d of %d", during.fds, nofile)
		}
		// The idle connections are cut after the read timeout (3 s).
		eventually(t, "idle connections cut", func() error {
			if st := hub.stats(); st.fds > before.fds+4 {
				return fmt.Errorf("%d descriptors open, %d before the attack", st.fds, before.fds)
			}
			return nil
		})
		after := hub.stats()
		t.Logf("hub %v after the attack began: %v", time.Since(start).Round(100*time.Millisecond), after)
		if !strings.Contains(hub.log.String(), "too many open connections") {
			t.Errorf("the hub did not log the connections it closed")
		}
	})
}

// retarget points device d at hub: restarts it with --hub hub.sync.
func (n *node) retarget(t *testing.T, hub *node) {
	t.Helper()
	n.stop()
	n.args = []string{"--pull-interval", "1h", "--hub", hub.sync}
	n.start()
}

// startLimited is startNode under a descriptor limit.
func startLimited(t *testing.T, name string, nofile int, args ...string) *node {
	t.Helper()
	n := &node{t: t, name: name, dir: filepath.Join(t.TempDir(), name), api: freeAddr(t), sync: freeAddr(t), args: args, nofile: nofile}
	n.start()
	t.Cleanup(n.kill)
	return n
}

// TestAPITimeouts: a partial body, an idle keep-alive and a connection
// that got a 401 are closed (they used to be held forever), while the
// change feed's long poll and event stream outlive the read and write
// timeouts.
func TestAPITimeouts(t *testing.T) {
	d := startNode(t, "dev", "--api-read-timeout", "1s", "--api-write-timeout", "1s", "--api-idle-timeout", "1s")
	closedWithin := func(what string, c net.Conn, limit time.Duration) {
		t.Helper()
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(limit))
		_, err := io.Copy(io.Discard, c)
		if err != nil {
			t.Errorf("%s: connection not closed by the agent within %v: %v", what, limit, err)
			return
		}
		t.Logf("%s: closed by the agent after %v", what, time.Since(start).Round(10*time.Millisecond))
	}
	// A partial body.
	c, err := net.Dial("tcp", d.api)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "PUT /v1/tables/jobs/records/j1 HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"fields\":", d.api)
	closedWithin("partial body", c, 5*time.Second)
	c.Close()
	// An idle keep-alive connection after an answered request.
	c, err = net.Dial("tcp", d.api)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /v1/status HTTP/1.1\r\nHost: %s\r\n\r\n", d.api)
	closedWithin("idle keep-alive", c, 5*time.Second)
	c.Close()
	// The long poll outlives both timeouts.
	start := time.Now()
	ch, err := d.client().Changes(context.Background(), "now", 2500*time.Millisecond)
	if err != nil || len(ch.Changes) != 0 || time.Since(start) < 2*time.Second {
		t.Errorf("long poll of 2.5 s: %+v, %v after %v", ch, err, time.Since(start))
	}
	// The event stream too: a change made 2 s after it began arrives.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		got <- d.client().Follow(ctx, "now", func(c client.Change) error { return io.EOF })
	}()
	time.Sleep(2 * time.Second)
	if _, err := d.client().Put(ctx, "jobs", "late", map[string]json.RawMessage{"a": json.RawMessage("1")}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != io.EOF {
		t.Errorf("event stream: %v, want the change made 2 s after it began", err)
	}

	// With a token: a refused request's connection is closed after the 401.
	tok := &node{t: t, name: "tok", dir: filepath.Join(t.TempDir(), "tok"), api: freeAddr(t), sync: freeAddr(t), args: []string{"--api-auth", "token"}}
	t.Setenv(client.EnvTokenFile, filepath.Join(tok.dir, "api-token"))
	tok.start()
	t.Cleanup(tok.kill)
	c, err = net.Dial("tcp", tok.api)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET /v1/status HTTP/1.1\r\nHost: %s\r\n\r\n", tok.api)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the token: %v, %v", resp, err)
	}
	closedWithin("after a 401", c, time.Second)
	c.Close()
}

// rawRequest sends one request and returns the answer's status and how
// long it took.
func rawRequest(t *testing.T, addr, req string) (int, string, time.Duration) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, req)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.60q: %v", req, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), time.Since(start)
}

// TestHostAndBodyChecks: foreign Host names are refused (localhost,
// loopback and --api-host names answered), state changes need a JSON body,
// a huge Content-Length gets 413 before any body is sent, and an
// unauthenticated request naming a restricted node gets 401 before the
// read rules say anything.
func TestHostAndBodyChecks(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hub.hcl")
	if err := os.WriteFile(cfg, []byte(`permission "techs" {
  nodes = ["00000000000000aa/64"]
  read  = ["jobs"]
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	hub := &node{t: t, name: "hub", dir: filepath.Join(dir, "hub"), api: freeAddr(t), sync: freeAddr(t),
		args: []string{"--role", "hub", "--gossip-addr", "off", "--config", cfg, "--api-auth", "token", "--api-host", "hub.example"}}
	t.Setenv(client.EnvTokenFile, filepath.Join(hub.dir, "api-token"))
	hub.start()
	t.Cleanup(hub.kill)
	tokb, err := os.ReadFile(filepath.Join(hub.dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	auth := "Authorization: Bearer " + strings.TrimSpace(string(tokb)) + "\r\n"
	port := strings.Split(hub.api, ":")[1]
	for _, c := range []struct {
		host string
		code int
	}{{"evil.example", 421}, {"evil.example:" + port, 421}, {"hub.example:" + port, 200}, {"localhost:" + port, 200}, {"127.0.0.1:" + port, 200}, {"[::1]:" + port, 200}, {"127.0.0.2", 200}} {
		code, body, _ := rawRequest(t, hub.api, "GET /v1/status HTTP/1.1\r\nHost: "+c.host+"\r\n"+auth+"\r\n")
		if code != c.code {
			t.Errorf("Host %s: %d %s, want %d", c.host, code, body, c.code)
		}
	}
	put := func(ct, extra string) (int, string, time.Duration) {
		body := `{"fields":{"a":1}}`
		return rawRequest(t, hub.api, fmt.Sprintf("PUT /v1/tables/jobs/records/j1 HTTP/1.1\r\nHost: %s\r\n%sContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s", hub.api, auth, ct, len(body), extra, body))
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		if code, body, _ := put(ct, ""); code != http.StatusUnsupportedMediaType {
			t.Errorf("PUT with %s: %d %s, want 415", ct, code, body)
		}
	}
	if code, body, _ := put("application/json; charset=utf-8", ""); code != 200 {
		t.Errorf("PUT with JSON: %d %s", code, body)
	}
	// 10 GB announced, nothing sent: the answer comes at once.
	code, body, took := rawRequest(t, hub.api, fmt.Sprintf("PUT /v1/tables/jobs/records/big HTTP/1.1\r\nHost: %s\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", hub.api, auth, int64(10)<<30))
	if code != http.StatusRequestEntityTooLarge || took > 2*time.Second {
		t.Errorf("10 GB Content-Length: %d %s after %v, want 413 at once", code, body, took)
	}
	t.Logf("10 GB Content-Length: %d after %v", code, took.Round(time.Millisecond))
	// Naming a restricted node without the token: 401, not the rules'
	// 404/403.
	for _, path := range []string{"/v1/tables/secret/records/x", "/v1/status"} {
		code, body, _ := rawRequest(t, hub.api, "GET "+path+" HTTP/1.1\r\nHost: "+hub.api+"\r\nX-Replicad-Node: 00000000000000aa\r\n\r\n")
		if code != http.StatusUnauthorized {
			t.Errorf("GET %s naming a restricted node, no token: %d %s, want 401", path, code, body)
		}
	}
}
