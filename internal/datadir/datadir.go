// Package datadir is the data directory's lock and the listeners bound
// before it: an agent binds its API and sync addresses (and checks its
// gossip address is free) before it creates anything on disk, then takes
// an exclusive flock(2) on <data-dir>/replicad.lock. The errors say which
// address or directory and what to do; a port held by another agent on
// the same directory is named as such (ErrLocked).
package datadir

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrLocked: another agent holds the data directory.
var ErrLocked = errors.New("data directory in use")

// Addrs are the addresses an agent binds: API and sync, and gossip's
// ("": none), each with the flag that sets it.
type Addrs struct {
	API, Sync, Gossip string
}

// BindListeners binds the API and sync addresses of the agent of dir and
// checks gossip's is free. Call it before creating anything on disk, so
// that an agent refused a port leaves no data directory, lock file or
// store behind.
func BindListeners(dir string, a Addrs) (api, sync net.Listener, err error) {
	api, err = Listen(dir, "api", "--api-addr", a.API)
	if err != nil {
		return nil, nil, err
	}
	sync, err = Listen(dir, "sync", "--sync-addr", a.Sync)
	if err != nil {
		api.Close()
		return nil, nil, err
	}
	if err := checkGossipFree(dir, a.Gossip); err != nil {
		api.Close()
		sync.Close()
		return nil, nil, err
	}
	return api, sync, nil
}

// checkGossipFree tells whether gossip's address (TCP and UDP, as
// memberlist binds both) is free, before anything is created on disk.
// Gossip binds it later, with the store open; a program taking the port
// in between still fails the start then, with the store left in place.
func checkGossipFree(dir, addr string) error {
	if _, port, err := net.SplitHostPort(addr); addr == "" || err != nil || port == "0" {
		return nil
	}
	l, err := Listen(dir, "gossip", "--gossip-addr", addr)
	if err != nil {
		return err
	}
	l.Close()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("gossip address %s (UDP) is already in use by another program; stop it or give another --gossip-addr", addr)
		}
		return fmt.Errorf("gossip address %s (UDP): %w (give another --gossip-addr)", addr, err)
	}
	pc.Close()
	return nil
}

// Listen binds addr (what: "api", "sync" ...; flag: the flag that sets
// it), with an error that says which address and what to do: a port in
// use is most often another agent on the data directory dir, which is
// then named.
func Listen(dir, what, flag, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		if pid, held := lockedBy(dir); held {
			return nil, fmt.Errorf("%w: %s is used by another replicad agent%s (its %s address %s is taken); stop it or give another --data-dir", ErrLocked, dir, pid, what, addr)
		}
		return nil, fmt.Errorf("%s address %s is already in use by another program; stop it or give another %s", what, addr, flag)
	}
	return nil, fmt.Errorf("%s address %s: %w (give another %s)", what, addr, err, flag)
}

// lockedBy reports whether an agent holds dir's lock, without creating
// anything; pid is " (pid N)" when the lock file names it.
func lockedBy(dir string) (pid string, held bool) {
	path := filepath.Join(dir, "replicad.lock")
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return "", false
	}
	b := make([]byte, 32)
	n, _ := f.Read(b)
	if p := strings.TrimSpace(strings.TrimRight(string(b[:n]), "\x00")); p != "" {
		pid = " (pid " + p + ")"
	}
	return pid, true
}

// Lock creates dir if needed and takes an exclusive flock on its lock
// file, writing our pid into it. Unlock releases it.
func Lock(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	path := filepath.Join(dir, "replicad.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid, _ := os.ReadFile(path)
			who := "another replicad agent"
			if p := strings.TrimSpace(string(pid)); p != "" {
				who += " (pid " + p + ")"
			}
			return nil, fmt.Errorf("%w: %s is used by %s; stop it or give another --data-dir", ErrLocked, dir, who)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return f, nil
}

// Unlock releases the lock Lock took and closes its file.
func Unlock(f *os.File) {
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	f.Close()
}
