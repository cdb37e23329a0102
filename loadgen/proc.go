package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Agent is a replicad agent this tool started (or, with Pid 0, one that
// was already running and is only addressed).
type Agent struct {
	API, Sync string // host:port
	Dir       string // data directory ("" when not started here)
	Pid       int

	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// StartAgent runs `bin agent` with its data in dir on free loopback ports
// (gossip off) and extra flags, and returns once its API answers.
// Its log goes to dir/../NAME.log.
func StartAgent(ctx context.Context, bin, dir string, extra ...string) (*Agent, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(dir + ".log")
	if err != nil {
		return nil, err
	}
	args := append([]string{"agent", "--data-dir", dir, "--api-addr", "127.0.0.1:0", "--sync-addr", "127.0.0.1:0",
		"--gossip-addr", "off", "--log-json", "--log-level", "info"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stdout = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	a := &Agent{Dir: dir, Pid: cmd.Process.Pid, cmd: cmd, done: make(chan error, 1), log: logf}
	addrs := make(chan [2]string, 1)
	go func() {
		// Copy the log, and pick the addresses out of "agent running".
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			logf.Write(append(line, '\n'))
			if sent {
				continue
			}
			var m struct {
				Msg  string `json:"@message"`
				API  string `json:"api"`
				Sync string `json:"sync"`
			}
			if json.Unmarshal(line, &m) == nil && m.Msg == "agent running" {
				addrs <- [2]string{m.API, m.Sync}
				sent = true
			}
		}
		io.Copy(logf, stderr)
		a.done <- cmd.Wait()
	}()
	select {
	case ad := <-addrs:
		a.API, a.Sync = ad[0], ad[1]
	case err := <-a.done:
		a.done <- err
		return nil, fmt.Errorf("agent exited before serving (%v); log: %s", err, logf.Name())
	case <-time.After(60 * time.Second):
		a.Stop()
		return nil, fmt.Errorf("agent did not start within 60s; log: %s", logf.Name())
	case <-ctx.Done():
		a.Stop()
		return nil, ctx.Err()
	}
	return a, nil
}

// Stop ends an agent this tool started (SIGTERM, then SIGKILL after 20s)
// and waits for it.
func (a *Agent) Stop() error {
	if a == nil || a.cmd == nil {
		return nil
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-a.done:
	case <-time.After(20 * time.Second):
		a.cmd.Process.Kill()
		err = <-a.done
	}
	a.done <- err
	a.log.Close()
	a.cmd = nil
	return err
}

// Metrics scrapes the agent's /metrics and returns the samples without
// labels (name → value), plus the sum over labels of labelled ones.
func (a *Agent) Metrics(ctx context.Context) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a.API+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return ParseMetrics(resp.Body)
}

// ParseMetrics reads the Prometheus text format: name → value, labelled
// series summed under their bare name.
func ParseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name, val := line[:sp], line[sp+1:]
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		out[strings.TrimSpace(name)] += v
	}
	return out, sc.Err()
}

// RSS returns the agent's resident memory: from /proc for a process this
// tool started, else its process_resident_memory_bytes metric.
func (a *Agent) RSS(ctx context.Context) (int64, error) {
	if a.Pid > 0 {
		if v, err := procStatus(a.Pid, "VmRSS:"); err == nil {
			return v, nil
		}
	}
	m, err := a.Metrics(ctx)
	if err != nil {
		return 0, err
	}
	v, ok := m["process_resident_memory_bytes"]
	if !ok {
		return 0, errors.New("no process_resident_memory_bytes metric")
	}
	return int64(v), nil
}

// procStatus reads a "kB" field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
