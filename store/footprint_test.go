package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// footprint is one disk-footprint measurement: the data directory's
// allocated bytes (du) after the workload and a clean stop, and on a
// device that received the same writes by sync, before any restart; each
// against the live data of the same store after a full compaction.
type footprint struct {
	cleanStop, cleanStopLive DiskUsage
	synced, syncedLive       DiskUsage
	compact                  Compacted
}

func (f footprint) cleanStopRatio() float64 {
	return float64(f.cleanStop.Total) / float64(f.cleanStopLive.Total)
}
func (f footprint) syncedRatio() float64 {
	return float64(f.synced.Total) / float64(f.syncedLive.Total)
}

// footprintWorkload: records records of fields fields (one write each),
// then updates single-field updates spread over them, through Write on a
// device store on the real disk (NoSync: the files are the same, only
// their fsyncs are left out). The store is then closed (a clean stop) and
// measured, opened again, compacted fully and measured: the live data.
// The device's log is then applied by ApplyRemote, in chunks of 1,000 as
// a session applies them, to a fresh device store, measured before any
// restart once the flushes the sync started are done (Settle), then
// compacted and measured.
func footprintWorkload(tb testing.TB, records, fields, updates int) footprint {
	tb.Helper()
	dir := tb.TempDir()
	opts := Options{Dir: filepath.Join(dir, "a"), NoSync: true, MemTableSize: DeviceMemTableSize}
	s := mustOpen(tb, opts)
	clock := fakeClock(t0)
	val := func(i int) crdt.FieldValue {
		return crdt.FieldValue{Name: fmt.Sprintf("field_%02d", i%fields), Value: crdt.MustValue(fmt.Sprintf("a value of some thirty bytes %03d", i%1000))}
	}
	for r := range records {
		fs := make([]crdt.FieldValue, fields)
		for f := range fields {
			fs[f] = val(r*fields + f)
		}
		if _, err := s.Write(clock, "jobs", fmt.Sprintf("job-%05d", r), fs, false); err != nil {
			tb.Fatal(err)
		}
	}
	for i := range updates {
		if _, err := s.Write(clock, "jobs", fmt.Sprintf("job-%05d", (i*7919)%records), []crdt.FieldValue{val(i)}, false); err != nil {
			tb.Fatal(err)
		}
	}
	node := s.NodeID()
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	var fp footprint
	var err error
	if fp.cleanStop, err = DirUsage(nil, opts.Dir); err != nil {
		tb.Fatal(err)
	}
	s = mustOpen(tb, opts)
	defer s.Close()
	if fp.compact, err = s.Compact(context.Background()); err != nil {
		tb.Fatal(err)
	}
	fp.cleanStopLive = fp.compact.After

	// A device synced from it.
	dopts := Options{Dir: filepath.Join(dir, "b"), NoSync: true, MemTableSize: DeviceMemTableSize}
	d := mustOpen(tb, dopts)
	defer d.Close()
	dclock := hlc.NewClock(nil, time.Minute)
	var chunk []*crdt.Write
	apply := func() {
		if _, err := d.ApplyRemote(dclock, chunk, nil); err != nil {
			tb.Fatal(err)
		}
		chunk = chunk[:0]
	}
	if err := s.Stream(node, 0, func(w *crdt.Write) error {
		chunk = append(chunk, w)
		if len(chunk) == 1000 {
			apply()
		}
		return nil
	}); err != nil {
		tb.Fatal(err)
	}
	if len(chunk) > 0 {
		apply()
	}
	if err := d.Settle(); err != nil {
		tb.Fatal(err)
	}
	if fp.synced, err = d.DiskUsage(); err != nil {
		tb.Fatal(err)
	}
	c, err := d.Compact(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	fp.syncedLive = c.After
	return fp
}

// TestDiskFootprintCleanStop: after a smaller version of the footprint
// workload (200 records of 20 fields, 20,000 updates: several memtable
// flushes), a clean stop leaves at most twice the live data on disk
// (allocated blocks), with no write-ahead log beyond a few KiB (the
// memtable was flushed at Close, the obsolete logs deleted, not kept for
// recycling, and none preallocated); the same for a device freshly synced
// with it, before any restart. Compact reports before and after.
func TestDiskFootprintCleanStop(t *testing.T) {
	fp := footprintWorkload(t, 200, 20, 20000)
	t.Logf("clean stop: %+v; live after full compaction: %+v (%.2fx)", fp.cleanStop, fp.cleanStopLive, fp.cleanStopRatio())
	t.Logf("synced device before restart: %+v; live: %+v (%.2fx)", fp.synced, fp.syncedLive, fp.syncedRatio())
	if fp.cleanStopRatio() > 2 {
		t.Errorf("clean stop: %d bytes on disk, %.2fx the live data (%d): want ≤ 2x", fp.cleanStop.Total, fp.cleanStopRatio(), fp.cleanStopLive.Total)
	}
	if fp.cleanStop.WAL > 64<<10 {
		t.Errorf("clean stop left %d bytes of write-ahead logs: the memtable was not flushed at Close, or logs were kept", fp.cleanStop.WAL)
	}
	if fp.syncedRatio() > 2 {
		t.Errorf("synced device: %d bytes on disk, %.2fx the live data (%d): want ≤ 2x", fp.synced.Total, fp.syncedRatio(), fp.syncedLive.Total)
	}
	if fp.compact.Before.Total == 0 || fp.compact.After.Total == 0 || fp.compact.After.SST == 0 || fp.compact.Duration <= 0 {
		t.Errorf("compact reported %+v", fp.compact)
	}
}

// TestCloseFlushesMemtable: a write acknowledged before a clean Close is
// in an sstable afterwards, not only in the write-ahead log (the next
// open replays nothing).
func TestCloseFlushesMemtable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s := mustOpen(t, Options{Dir: dir, NoSync: true})
	if _, err := s.Write(fakeClock(t0), "jobs", "j1", []crdt.FieldValue{fv("status", strings.Repeat("x", 100))}, false); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	u, err := DirUsage(nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	if u.SST == 0 {
		t.Fatalf("no sstable after a clean stop: %+v", u)
	}
	s = mustOpen(t, Options{Dir: dir, NoSync: true})
	defer s.Close()
	rec, err := s.Get("jobs", "j1")
	if err != nil || rec == nil {
		t.Fatalf("record after reopen: %v %v", rec, err)
	}
}

// BenchmarkDiskFootprint runs the footprint workload at full size (1,000
// records of 20 fields, 100,000 single-field updates: 101,000 writes) and
// reports the data directory's allocated bytes after a clean stop and on
// a freshly synced device before any restart, each against the live data
// after a full compaction (target: ≤ 2x), and the full compaction's
// before, after and duration.
func BenchmarkDiskFootprint(b *testing.B) {
	for range b.N {
		fp := footprintWorkload(b, 1000, 20, 100000)
		b.ReportMetric(fp.cleanStopRatio(), "clean-stop/live")
		b.ReportMetric(fp.syncedRatio(), "synced/live")
		b.ReportMetric(float64(fp.cleanStop.Total)/(1<<20), "clean-stop-MiB")
		b.ReportMetric(float64(fp.cleanStop.WAL)/(1<<20), "clean-stop-wal-MiB")
		b.ReportMetric(float64(fp.cleanStopLive.Total)/(1<<20), "live-MiB")
		b.ReportMetric(float64(fp.synced.Total)/(1<<20), "synced-MiB")
		b.ReportMetric(float64(fp.synced.WAL)/(1<<20), "synced-wal-MiB")
		b.ReportMetric(float64(fp.syncedLive.Total)/(1<<20), "synced-live-MiB")
		b.ReportMetric(float64(fp.compact.Before.Total)/(1<<20), "compact-before-MiB")
		b.ReportMetric(fp.compact.Duration.Seconds(), "compact-s")
	}
}

// slowLogRemoveFS deletes write-ahead logs late, as Pebble's cleanup
// goroutine does on a loaded machine.
type slowLogRemoveFS struct {
	vfs.FS
	delay time.Duration
}

func (f slowLogRemoveFS) Remove(name string) error {
	if strings.HasSuffix(name, ".log") {
		time.Sleep(f.delay)
	}
	return f.FS.Remove(name)
}

// TestSettleWaitsForObsoleteLogs: Settle returns only once the logs the
// flushes made obsolete are gone from the directory, however late
// Pebble's cleanup deletes them (its metrics count the tables queued for
// deletion, not the logs).
func TestSettleWaitsForObsoleteLogs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "s")
	s := mustOpen(t, Options{Dir: dir, FS: slowLogRemoveFS{vfs.Default, 300 * time.Millisecond}, NoSync: true, MemTableSize: DeviceMemTableSize})
	defer s.Close()
	clock := fakeClock(t0)
	write := func(i int) {
		if _, err := s.Write(clock, "jobs", fmt.Sprintf("job-%04d", i%300), []crdt.FieldValue{fv("note", strings.Repeat("x", 300))}, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		write(i)
	}
	if _, err := s.Compact(context.Background()); err != nil { // nothing left to compact: the next flush is alone
		t.Fatal(err)
	}
	flushes := s.db.Metrics().Flush.Count
	for i := 0; s.db.Metrics().Flush.Count == flushes; i++ { // past the 512 KiB bound: a flush, leaving an obsolete log
		if i == 100000 {
			t.Fatal("no flush after 100,000 writes")
		}
		write(i)
	}
	if err := s.Settle(); err != nil {
		t.Fatal(err)
	}
	u, err := s.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	m := s.db.Metrics()
	if n := s.logFilesOnDisk(); n > m.WAL.Files {
		t.Fatalf("after Settle: %d logs on disk, %d live (%+v)", n, m.WAL.Files, u)
	}
	if u.WAL > int64(DeviceMemTableSize/16)+64<<10 {
		t.Fatalf("after Settle: %d bytes of logs on disk, want at most the 512 KiB bound and a little: %+v", u.WAL, u)
	}
}
