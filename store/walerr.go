package store

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A failed write or sync of the write-ahead log (a full disk, say) ends
// the log for good: Pebble's log writer keeps the error and hands it,
// from the next block on, to every batch written after it, and Pebble
// panics on it in the middle of its commit pipeline, with the pipeline's
// mutex held. The store recovers the panic into ErrFailed, but the mutex
// stays locked: closing the database then waits on it forever (the
// agent, reopening its failed store, hung with its API), and a batch that
// rotates the log on the dead writer ends the process.
//
// So the store watches its log files itself: walErrFS notes the first
// error of a write or sync of a *.log file, before Pebble's log writer
// sees it, and from then on the store is failed (usable). Every batch is
// handed to Pebble under s.mu after usable, and the batch whose block
// took the writer's error in was handed over under s.mu before, so no
// later batch reaches the dead writer. TestFullDiskConcurrentWrites holds
// this.

// walErrors keeps the first error of a write or sync of a log file.
type walErrors struct{ first atomic.Pointer[error] }

func (w *walErrors) note(err error) {
	if err != nil {
		w.first.CompareAndSwap(nil, &err)
	}
}

// err returns the first error noted, or nil.
func (w *walErrors) err() error {
	if w == nil {
		return nil
	}
	if p := w.first.Load(); p != nil {
		return fmt.Errorf("wal: %w", *p)
	}
	return nil
}

// walErrFS wraps the log files a store creates so that their write and
// sync errors are noted in errs.
type walErrFS struct {
	vfs.FS
	errs *walErrors
}

func (f walErrFS) Unwrap() vfs.FS { return f.FS }

func (f walErrFS) wrap(name string, file vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return file, err
	}
	return walErrFile{file, f.errs}, nil
}

func (f walErrFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.Create(name, category)
	return f.wrap(name, file, err)
}

func (f walErrFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	file, err := f.FS.ReuseForWrite(oldname, newname, category)
	return f.wrap(newname, file, err)
}

type walErrFile struct {
	vfs.File
	errs *walErrors
}

func (f walErrFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.errs.note(err)
	return n, err
}

func (f walErrFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	f.errs.note(err)
	return n, err
}

func (f walErrFile) Sync() error {
	err := f.File.Sync()
	f.errs.note(err)
	return err
}

func (f walErrFile) SyncData() error {
	err := f.File.SyncData()
	f.errs.note(err)
	return err
}

func (f walErrFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	f.errs.note(err)
	return full, err
}
