package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// DiskUsage is the store's data directory on disk, by kind of file.
// On the operating system's disk the bytes are allocated blocks (what du
// counts: a preallocated or recycled write-ahead log counts in full, a
// sparse file does not), elsewhere (tests' memory filesystems) the files'
// sizes.
type DiskUsage struct {
	Total int64 `json:"total_bytes"`
	SST   int64 `json:"sst_bytes"`   // sstables (*.sst, blob files)
	WAL   int64 `json:"wal_bytes"`   // write-ahead logs (*.log), recycled ones included
	Other int64 `json:"other_bytes"` // MANIFEST, OPTIONS, markers, the lock
}

// DirUsage measures the files under dir (recursively) on fsys (nil: the
// operating system's disk).
func DirUsage(fsys vfs.FS, dir string) (DiskUsage, error) {
	var u DiskUsage
	add := func(name string, n int64) {
		switch {
		case strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob"):
			u.SST += n
		case strings.HasSuffix(name, ".log"):
			u.WAL += n
		default:
			u.Other += n
		}
		u.Total += n
	}
	if fsys == nil || fsys == vfs.Default {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil // deleted meanwhile (an obsolete file)
				}
				return err
			}
			n := fi.Size()
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n = int64(st.Blocks) * 512
			}
			add(d.Name(), n)
			return nil
		})
		return u, err
	}
	names, err := fsys.List(dir)
	if err != nil {
		return u, err
	}
	for _, n := range names {
		fi, err := fsys.Stat(fsys.PathJoin(dir, n))
		if err != nil {
			if oserrorIsNotExist(err) {
				continue
			}
			return u, err
		}
		if !fi.IsDir() {
			add(n, fi.Size())
		}
	}
	return u, nil
}

// DiskUsage measures the store's data directory now.
func (s *Store) DiskUsage() (DiskUsage, error) {
	fsys := s.opts.FS
	return DirUsage(fsys, s.opts.Dir)
}

// Compacted is what Compact did.
type Compacted struct {
	Before   DiskUsage     `json:"before"`
	After    DiskUsage     `json:"after"`
	Duration time.Duration `json:"-"`
}

// Compact flushes the memtable and compacts the whole keyspace online
// (reads and writes go on meanwhile), then waits (up to 10 s) for Pebble
// to delete the files it made obsolete, and reports the directory's disk
// use before and after. Obsolete write-ahead logs go with the flush.
func (s *Store) Compact(ctx context.Context) (Compacted, error) {
	if err := s.usable(); err != nil {
		return Compacted{}, err
	}
	var c Compacted
	var err error
	start := time.Now()
	if c.Before, err = s.DiskUsage(); err != nil {
		return c, fmt.Errorf("store: compact: %w", err)
	}
	err = func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("pebble: %v", r) // closed meanwhile
			}
		}()
		if err := s.db.Flush(); err != nil {
			return err
		}
		return s.db.Compact(ctx, []byte{0}, []byte{0xff}, true)
	}()
	if err != nil {
		return c, fmt.Errorf("store: compact: %w", err)
	}
	s.awaitSettled(10 * time.Second)
	c.Duration = time.Since(start)
	if c.After, err = s.DiskUsage(); err != nil {
		return c, fmt.Errorf("store: compact: %w", err)
	}
	return c, nil
}

// awaitSettled waits until no flush or compaction is in progress and
// Pebble has deleted the tables and logs they made obsolete (it does all
// of this in the background), or d passes. Pebble's metrics count the
// obsolete tables still queued for deletion but not the obsolete logs
// (WAL.ObsoleteFiles counts only logs kept for recycling, which this
// store turns off), so the logs are counted in the directory: no more
// than the live ones.
func (s *Store) awaitSettled(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		m := s.db.Metrics()
		if m.Flush.NumInProgress == 0 && m.Compact.NumInProgress == 0 && m.Table.ObsoleteCount == 0 && m.WAL.ObsoleteFiles == 0 &&
			s.logFilesOnDisk() <= m.WAL.Files {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logFilesOnDisk counts the write-ahead logs in the store's directory,
// live and obsolete; -1 if it cannot be listed (then nothing waits on it).
func (s *Store) logFilesOnDisk() int64 {
	names, err := s.opts.FS.List(s.opts.Dir)
	if err != nil {
		return -1
	}
	var n int64
	for _, name := range names {
		if strings.HasSuffix(name, ".log") {
			n++
		}
	}
	return n
}

// Settle waits (up to 10 s) until the store's background flushes and
// compactions are done and their obsolete files deleted: what the
// directory holds once a burst of writes (a sync) is over.
func (s *Store) Settle() error {
	if err := s.usable(); err != nil {
		return err
	}
	s.awaitSettled(10 * time.Second)
	return nil
}

// noteWAL counts n bytes handed to the write-ahead log and reports
// whether the log has grown past its bound since the last flush the store
// asked for: the caller then starts one (flushWAL) once the batch is
// durable. On a store whose tables are small (a device just synced, say),
// the unflushed log then never holds more than about half the tables, so
// the directory stays within twice its live data without waiting for a
// full memtable. The bound is half the tables' size, at least a sixteenth
// of the memtable size (512 KiB on a device); a large store (tables
// beyond twice the memtable size) flushes on a full memtable as before.
// Caller holds s.mu.
func (s *Store) noteWAL(n int) (flush bool) {
	if s.walBound == 0 {
		s.walBound = int64(s.opts.MemTableSize / 16)
	}
	s.walSince += int64(n)
	if s.walSince < s.walBound {
		return false
	}
	s.walSince = 0
	s.walBound = max(int64(s.opts.MemTableSize/16), s.db.Metrics().Total().TablesSize/2)
	return true
}

// flushWAL starts the flush noteWAL asked for, after the batch that
// crossed the bound was synced. A flush rotates the write-ahead log, and
// Pebble ends the process (a panic under its own locks, which no recover
// catches) when it cannot close the old log: its unsynced writes failed
// (a full disk) or the end-of-log trailer cannot be written. So there is
// no flush on a store that failed, or whose sync failed, and none while
// the filesystem has less room than a memtable and a little more (the
// flush writes a table of up to that much): the memtable then fills and
// Pebble flushes it itself.
//
// Callers may hold s.mu (a commit at Open) or not; s.flushMu keeps Close
// from running meanwhile.
func (s *Store) flushWAL() {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	if s.usable() != nil {
		return
	}
	if du, err := s.opts.FS.GetDiskUsage(s.opts.Dir); err == nil && du.AvailBytes < s.opts.MemTableSize+flushSpare {
		s.log.Debug("store: no flush of a grown write-ahead log: the disk is nearly full", "available", du.AvailBytes)
		return
	}
	if _, err := s.db.AsyncFlush(); err != nil {
		s.log.Warn("store: flush of a grown write-ahead log", "error", err)
	}
}

// flushSpare is the room beyond a memtable's size that flushWAL asks of
// the filesystem.
const flushSpare = 1 << 20

// noPreallocFS is the filesystem of a store without WAL preallocation:
// Pebble preallocates each new write-ahead log to 110% of the memtable
// size (fallocate with KEEP_SIZE: the blocks count on disk until the log
// is deleted); through this filesystem, files take the blocks they are
// written.
type noPreallocFS struct{ vfs.FS }

func (f noPreallocFS) Unwrap() vfs.FS { return f.FS }

func (f noPreallocFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.Create(name, category)
	if err != nil {
		return nil, err
	}
	return noPreallocFile{file}, nil
}

func (f noPreallocFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.ReuseForWrite(oldname, newname, category)
	if err != nil {
		return nil, err
	}
	return noPreallocFile{file}, nil
}

type noPreallocFile struct{ vfs.File }

func (noPreallocFile) Preallocate(offset, length int64) error { return nil }

// noRecycleCleaner deletes obsolete files (Pebble's DeleteCleaner's Clean
// and String, promoted from depth 1) and tells Pebble it needs their
// contents (the marker method of the ArchiveCleaner embedded one level
// deeper, promoted because DeleteCleaner has none): Pebble's one switch
// that turns write-ahead log recycling off. An obsolete log is then
// deleted instead of kept (up to MemTableStopWritesThreshold+1 of them,
// each up to a memtable's size) to be overwritten later.
// TestDiskFootprintCleanStop holds this.
type noRecycleCleaner struct {
	pebble.DeleteCleaner
	needsContents
}

type needsContents struct{ pebble.ArchiveCleaner }
