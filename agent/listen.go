package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// bindListeners binds the API and sync addresses. New calls it before it
// creates anything on disk, so that an agent refused a port leaves no data
// directory, lock file or store behind.
func bindListeners(cfg Config) (api, sync net.Listener, err error) {
	api, err = listen(cfg, "api", "--api-addr", cfg.APIAddr)
	if err != nil {
		return nil, nil, err
	}
	sync, err = listen(cfg, "sync", "--sync-addr", cfg.SyncAddr)
	if err != nil {
		api.Close()
		return nil, nil, err
	}
	if err := checkGossipFree(cfg); err != nil {
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
func checkGossipFree(cfg Config) error {
	addr := cfg.GossipBind()
	if _, port, err := net.SplitHostPort(addr); addr == "" || err != nil || port == "0" {
		return nil
	}
	l, err := listen(cfg, "gossip", "--gossip-addr", addr)
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

// listen binds addr, with an error that says which address and what to
// do: a port in use is most often another agent on the same data
// directory, which is then named.
func listen(cfg Config, what, flag, addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		if pid, held := dirLockedBy(cfg.DataDir); held {
			return nil, fmt.Errorf("%w: %s is used by another replicad agent%s (its %s address %s is taken); stop it or give another --data-dir", ErrLocked, cfg.DataDir, pid, what, addr)
		}
		return nil, fmt.Errorf("%s address %s is already in use by another program; stop it or give another %s", what, addr, flag)
	}
	return nil, fmt.Errorf("%s address %s: %w (give another %s)", what, addr, err, flag)
}

// dirLockedBy reports whether an agent holds dir's lock, without creating
// anything; pid is " (pid N)" when the lock file names it.
func dirLockedBy(dir string) (pid string, held bool) {
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

// takeSyncListener returns the sync listener New bound (the first
// replica's), or binds the sync address again (a replica opened by a
// reset or a store recovery, after the previous one closed its own).
func (a *Agent) takeSyncListener() (net.Listener, error) {
	if l := a.syncLn; l != nil {
		a.syncLn = nil
		return l, nil
	}
	return listen(a.cfg, "sync", "--sync-addr", a.cfg.SyncAddr)
}
