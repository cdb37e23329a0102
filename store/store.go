package store

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/errors/oserror"
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/go-hclog"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

// PebbleFormat is the Pebble on-disk format the store creates and upgrades
// to. It is pinned (never "newest") because format upgrades are one-way:
// changing it is a deliberate, documented step that makes downgrades
// impossible. FormatTableFormatV6 includes WAL sync chunks, which let WAL
// replay tell a torn tail from corruption.
const PebbleFormat = pebble.FormatTableFormatV6

// Defaults for Options.
const (
	DefaultMemTableSize = 32 << 20
	// DeviceMemTableSize is the memtable size the agent gives a device:
	// a device takes a person's writes and its peers' syncs, not a
	// fleet's, and a clean stop flushes whatever the memtable holds.
	DeviceMemTableSize = 8 << 20
	DefaultCacheSize   = 128 << 20
)

// Options configure Open. The zero value of every field but Dir is usable.
type Options struct {
	// Dir is the data directory (created if missing).
	Dir string
	// FS is the filesystem; nil means the operating system's disk. Tests use
	// vfs.NewMem, vfs.NewCrashableMem and errorfs.
	FS vfs.FS
	// Logger receives Pebble's messages; nil means hclog.NewNullLogger().
	Logger hclog.Logger
	// NoSync commits writes without waiting for fsync. An acknowledged
	// write can then be lost in a crash (never half of one). For tests and
	// benchmarks only.
	NoSync bool
	// ClusterID, when set, is recorded in a new store and checked against
	// an existing one that has one (ErrClusterMismatch).
	ClusterID string
	// MemTableSize is Pebble's memtable size; 0 means DefaultMemTableSize
	// (32 MiB; Pebble's 4 MiB default stalls writes under load).
	MemTableSize uint64
	// WALPreallocate lets Pebble preallocate each new write-ahead log to
	// 110% of MemTableSize, and WALRecycling lets it keep up to three
	// obsolete logs to overwrite instead of creating new ones: both make
	// synced writes a little cheaper under sustained load and cost up to
	// four logs' worth of disk blocks at all times. Off (the zero value),
	// a log takes the blocks it is written and an obsolete one is deleted.
	// The agent turns them on for hubs only (ARCHITECTURE.md, "Disk").
	WALPreallocate, WALRecycling bool
	// CacheSize is Pebble's block cache size; 0 means DefaultCacheSize.
	CacheSize int64
	// RecordCache is the approximate memory, in bytes, of the decoded
	// records the write paths keep (0: 64 MiB).
	RecordCache int
	// NodeID, when not 0, is the node id given to a new store (deterministic
	// simulations and the research lab); an existing store keeps its own.
	// Leave it 0 in production: ids are then random and never reused.
	NodeID hlc.NodeID
	// EncryptionKey, when not nil, is the AES-256 key (KeySize bytes) the
	// store's values are encrypted with at rest (cipher.go): a new store is
	// created encrypted; a plain store is migrated (every value rewritten
	// sealed, in bounded batches, resumed after a crash, then the whole
	// keyspace compacted so that no plaintext file remains); an encrypted
	// store opens only with its key (ErrWrongKey). An encrypted store
	// opened without a key fails with ErrKeyRequired. Keys (table names,
	// record ids, node ids, sequence numbers), value sizes and write
	// timing are not hidden. Turning encryption off or changing the key is
	// not supported (see ARCHITECTURE.md).
	EncryptionKey []byte
	// MaxParkedPerOrigin bounds the parked writes of one origin (0: no
	// bound): ApplyRemote answers ParkRefused for the writes beyond it.
	MaxParkedPerOrigin int

	// Tests: the values per migration batch (0: 1,024), and a hook called
	// at each step of a migration (stage, values sealed so far).
	migrateBatch int
	testMigrate  func(stage string, done uint64)
	// Tests: Close without flushing the memtable (what a stop that
	// skipped Close leaves: the recent writes only in the WAL).
	testNoFlushAtClose bool
}

// Store is replicad's durable state on Pebble. All methods are safe for
// concurrent use. See the package documentation for the contract.
type Store struct {
	db      *pebble.DB
	cache   *pebble.Cache
	opts    Options
	log     hclog.Logger
	node    hlc.NodeID
	cluster string
	ciph    *valueCipher // nil: values are plain

	// mu serializes writers (and CompactLog): it is held while a batch is
	// built and handed to Pebble, so WAL order equals local sequence order.
	mu      sync.Mutex
	nextSeq uint64            // next local sequence number (own origin)
	parked  map[crdt.Dot]bool // parked writes (k keys), so applying one removes its key
	// parkedBy counts the parked writes per origin (MaxParkedPerOrigin,
	// ParkedCount).
	parkedBy map[hlc.NodeID]int
	rcache   *recCache     // decoded records for the write paths; guarded by mu
	otabs    originTables  // the tables each origin's log entries write (origintables.go)
	ix       indexSet      // secondary indexes (index.go)
	feed     uint64        // last feed sequence number used
	scopeSeq uint64        // scope changes published (boots.go)
	errSeq   uint64        // last sync-error id used
	qSeq     uint64        // last queue id used
	hw       hlc.Timestamp // HLC high-water last written
	// walSince counts the bytes handed to the WAL since the last flush
	// the store started; past walBound it starts one (disk.go, noteWAL).
	walSince, walBound int64
	// flushMu orders a flush flushWAL starts before Close (disk.go).
	flushMu sync.Mutex

	// hmu guards held; published Held values are never modified in place.
	hmu  sync.RWMutex
	held map[hlc.NodeID]*Held

	// hidden holds the records outside this replica's scope (x keys),
	// "table\x00id"; guarded by hidmu.
	hidmu  sync.RWMutex
	hidden map[string]crdt.VV // value: writes skipped while hidden
	purged map[string]bool    // hidden records whose state was removed

	// Durable marks: everything at or below was fsynced (or committed, with
	// NoSync). Streams of our own writes and the feed stop there, so no
	// peer or feed consumer sees a write that a crash could still take back
	// (its sequence number would be reused).
	durableSeq  atomic.Uint64
	durableFeed atomic.Uint64

	state atomic.Pointer[error] // nil: usable; else ErrClosed or a wrapped ErrFailed
	wal   *walErrors            // the first write or sync error of a log file (walerr.go)

	boots []Boot // this Open's and the last ones before it (boots.go)

	// testHookBatch, if set, sees each write batch's representation.
	testHookBatch func(repr []byte)
}

// hclogAdapter routes Pebble's logger to hclog. Pebble calls Fatalf only
// when it cannot continue (and code after Fatalf assumes it never
// returns), so Fatalf logs and then panics with a fatalPanic; the store's
// foreground calls recover it into ErrFailed.
type hclogAdapter struct{ l hclog.Logger }

type fatalPanic struct{ msg string }

func (a hclogAdapter) Infof(format string, args ...any) {
	a.l.Info(strings.TrimSpace(fmt.Sprintf(format, args...)))
}
func (a hclogAdapter) Errorf(format string, args ...any) {
	a.l.Error(strings.TrimSpace(fmt.Sprintf(format, args...)))
}
func (a hclogAdapter) Fatalf(format string, args ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, args...))
	a.l.Error("pebble fatal: " + msg)
	panic(fatalPanic{msg})
}

func (o *Options) pebbleOptions(cache *pebble.Cache, readOnly bool, wal *walErrors) *pebble.Options {
	po := &pebble.Options{
		FS:                 o.FS,
		Cache:              cache,
		MemTableSize:       o.MemTableSize,
		FormatMajorVersion: PebbleFormat,
		Logger:             hclogAdapter{o.Logger},
		ReadOnly:           readOnly,
	}
	if readOnly {
		po.ErrorIfNotExists = true
	}
	if !o.WALPreallocate && po.FS != nil {
		po.FS = noPreallocFS{po.FS}
	}
	if !o.WALRecycling {
		po.Cleaner = noRecycleCleaner{}
	}
	if wal != nil {
		if po.FS == nil {
			po.FS = vfs.Default
		}
		po.FS = walErrFS{po.FS, wal} // walerr.go
	}
	return po
}

// Open opens the store in opts.Dir, creating it if the directory is missing
// or empty. A new store gets a random node id, the format version, the
// cluster id and an HLC high-water of 0, in one synced batch.
//
// An existing directory is checked before anything is written: a
// directory that is not a Pebble database, or a Pebble database without
// replicad's marker, gives ErrNotReplicadStore; a newer store format gives
// ErrNewerFormat; an encrypted store without Options.EncryptionKey
// ErrKeyRequired, with another key ErrWrongKey; a different cluster id
// (both set) ErrClusterMismatch;
// undecodable metadata or holdings ErrCorrupt (naming the key); Pebble's
// own errors (corrupt files, I/O) are wrapped. In every failing case the
// directory is left as it was.
func Open(opts Options) (*Store, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = DefaultMemTableSize
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	if opts.Dir == "" {
		return nil, fmt.Errorf("%w: no data directory", ErrInvalid)
	}
	var ciph *valueCipher
	if opts.EncryptionKey != nil {
		var err error
		if ciph, err = newValueCipher(opts.EncryptionKey); err != nil {
			return nil, err
		}
	}
	fresh, err := checkDir(opts, ciph)
	if err != nil {
		return nil, err
	}
	cache := pebble.NewCache(opts.CacheSize)
	s, err := openDB(opts, cache, fresh, ciph)
	if err != nil {
		cache.Unref()
		return nil, err
	}
	return s, nil
}

// checkDir inspects opts.Dir without changing it. fresh reports a missing
// or empty directory, or a Pebble database with no keys at all (a crash
// during creation).
func checkDir(opts Options, ciph *valueCipher) (fresh bool, err error) {
	names, err := opts.FS.List(opts.Dir)
	if err != nil {
		if oserrorIsNotExist(err) {
			return true, nil
		}
		return false, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	if len(names) == 0 {
		return true, nil
	}
	pebbleDir := false
	for _, n := range names {
		if strings.HasPrefix(n, "MANIFEST-") || strings.HasPrefix(n, "marker.manifest.") {
			pebbleDir = true
		}
	}
	if !pebbleDir {
		return false, fmt.Errorf("%w: %s holds other files", ErrNotReplicadStore, opts.Dir)
	}
	cache := pebble.NewCache(1 << 20)
	defer cache.Unref()
	db, err := safeOpen(opts.Dir, opts.pebbleOptions(cache, true, nil))
	if err != nil {
		return false, fmt.Errorf("store: open %s (read-only check): %w", opts.Dir, err)
	}
	defer db.Close()
	// Any key at all?
	it, err := db.NewIter(nil)
	if err != nil {
		return false, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	any := it.First()
	if err := it.Close(); err != nil {
		return false, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	if !any {
		return true, nil
	}
	m, err := readMeta(db, ciph)
	if err != nil {
		return false, err
	}
	if err := m.check(opts); err != nil {
		return false, err
	}
	return false, nil
}

func oserrorIsNotExist(err error) bool {
	return oserror.IsNotExist(err)
}

type meta struct {
	magic   bool
	format  uint64
	node    hlc.NodeID
	cluster string
	hlc     hlc.Timestamp
	atRest  *sealedView // which values are sealed
}

func (m *meta) check(opts Options) error {
	if !m.magic {
		return fmt.Errorf("%w: %s is a Pebble database without replicad's marker", ErrNotReplicadStore, opts.Dir)
	}
	if m.format > FormatVersion {
		return fmt.Errorf("%w: %s has format %d, this version reads up to %d", ErrNewerFormat, opts.Dir, m.format, FormatVersion)
	}
	if opts.ClusterID != "" && m.cluster != "" && opts.ClusterID != m.cluster {
		return fmt.Errorf("%w: %s belongs to cluster %q, not %q", ErrClusterMismatch, opts.Dir, m.cluster, opts.ClusterID)
	}
	return nil
}

// readMeta reads and decodes the m keys, opening the sealed ones with
// ciph (nil: no key given). An encrypted store without a key gives
// ErrKeyRequired, with another key ErrWrongKey (readAtRest).
func readMeta(db pebble.Reader, ciph *valueCipher) (*meta, error) {
	m := &meta{atRest: &sealedView{c: ciph}}
	get := func(name string) ([]byte, error) {
		k := metaKey(name)
		v, c, err := db.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("store: read %s: %w", FormatKey(k), err)
		}
		defer c.Close()
		v, err = m.atRest.openAt(k, v)
		if err != nil {
			return nil, err
		}
		return append([]byte{}, v...), nil
	}
	v, err := get(metaMagic)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return m, nil
	}
	if string(v) != magicValue {
		return m, nil // not ours
	}
	m.magic = true
	if v, err = get(metaFormat); err != nil {
		return nil, err
	}
	if len(v) != 8 {
		return nil, corruptf(metaKey(metaFormat), "format version of %d bytes", len(v))
	}
	m.format = be(v)
	if m.format > FormatVersion {
		return m, nil // do not interpret the rest
	}
	if m.atRest, err = readAtRest(db, ciph); err != nil {
		return nil, err
	}
	if v, err = get(metaNode); err != nil {
		return nil, err
	}
	if len(v) != 8 || be(v) == 0 {
		return nil, corruptf(metaKey(metaNode), "bad node id %x", v)
	}
	m.node = hlc.NodeID(be(v))
	if v, err = get(metaCluster); err != nil {
		return nil, err
	}
	m.cluster = string(v)
	if v, err = get(metaHLC); err != nil {
		return nil, err
	}
	if len(v) != 8 {
		return nil, corruptf(metaKey(metaHLC), "hlc high-water of %d bytes", len(v))
	}
	m.hlc = hlc.Timestamp(be(v))
	return m, nil
}

func u64val(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// safeOpen opens Pebble, turning a panic (Fatalf) into an error.
func safeOpen(dir string, po *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("pebble: %v", r)
		}
	}()
	return pebble.Open(dir, po)
}

func openDB(opts Options, cache *pebble.Cache, fresh bool, ciph *valueCipher) (*Store, error) {
	wal := &walErrors{}
	db, err := safeOpen(opts.Dir, opts.pebbleOptions(cache, false, wal))
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", opts.Dir, err)
	}
	s := &Store{db: db, cache: cache, opts: opts, log: opts.Logger, held: map[hlc.NodeID]*Held{}, ciph: ciph, wal: wal}
	fail := func(err error) (*Store, error) {
		db.Close()
		return nil, err
	}
	if fresh {
		node := opts.NodeID
		for node == 0 {
			var b [8]byte
			if _, err := rand.Read(b[:]); err != nil {
				return fail(fmt.Errorf("store: node id: %w", err))
			}
			node = hlc.NodeID(be(b[:]))
		}
		b := s.newBatch()
		b.setPlain(metaKey(metaMagic), []byte(magicValue))
		if ciph != nil {
			at, err := ciph.atRestMeta(atRestSealed, nil, 0)
			if err != nil {
				b.close()
				return fail(err)
			}
			b.setPlain(metaKey(metaFormat), u64val(formatSealed))
			b.setPlain(metaKey(metaAtRest), at)
		} else {
			b.setPlain(metaKey(metaFormat), u64val(formatPlain))
		}
		b.set(metaKey(metaNode), u64val(uint64(node)))
		b.set(metaKey(metaCluster), []byte(opts.ClusterID))
		b.set(metaKey(metaHLC), u64val(0))
		if err := s.commitNow(b); err != nil {
			return fail(fmt.Errorf("store: initialize %s: %w", opts.Dir, err))
		}
	}
	m, err := readMeta(db, ciph)
	if err != nil {
		return fail(err)
	}
	if ciph != nil && m.format <= FormatVersion && m.atRest.state != atRestSealed {
		// A plain store given a key, or a migration a crash interrupted.
		if err := s.sealAll(m.atRest); err != nil {
			return fail(err)
		}
		if m, err = readMeta(db, ciph); err != nil {
			return fail(err)
		}
	}
	if err := m.check(opts); err != nil {
		return fail(err)
	}
	s.node, s.cluster, s.hw = m.node, m.cluster, m.hlc
	if err := s.load(); err != nil {
		return fail(err)
	}
	if err := s.dropHeldParkedAtOpen(); err != nil {
		return fail(err)
	}
	if err := s.buildConflictIndex(); err != nil {
		return fail(err)
	}
	if err := s.loadOriginTables(); err != nil {
		return fail(err)
	}
	if err := s.loadIndexes(); err != nil {
		s.stopIndexBuilds()
		return fail(err)
	}
	if err := s.loadBoots(); err != nil { // last: a failed Open records no boot
		s.stopIndexBuilds()
		return fail(err)
	}
	return s, nil
}

// load reads the holdings and counters.
func (s *Store) load() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{pOrigin}, UpperBound: []byte{pOrigin + 1}})
	if err != nil {
		return err
	}
	var buf []byte
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		if len(k) != 9 {
			it.Close()
			return corruptf(k, "holdings key of %d bytes", len(k))
		}
		v, err := s.itValue(it, &buf)
		if err != nil {
			it.Close()
			return err
		}
		h, err := decodeHeld(k, v)
		if err != nil {
			it.Close()
			return err
		}
		s.held[hlc.NodeID(be(k[1:]))] = &h
	}
	if err := it.Close(); err != nil {
		return err
	}
	if h := s.held[s.node]; h != nil {
		s.nextSeq = h.Max() + 1
	} else {
		s.nextSeq = 1
	}
	s.durableSeq.Store(s.nextSeq - 1)
	if s.feed, err = s.lastU64(pFeed); err != nil {
		return err
	}
	s.durableFeed.Store(s.feed)
	if s.errSeq, err = s.lastU64(pSyncErr); err != nil {
		return err
	}
	if s.qSeq, err = s.lastQueueID(); err != nil { // queues.go
		return err
	}
	s.hidden = map[string]crdt.VV{}
	s.purged = map[string]bool{}
	s.rcache = newRecCache(s.opts.RecordCache)
	if err := s.scanPrefix([]byte{pHidden}, func(k, v []byte) error {
		if _, _, ok := splitName(k[1:]); !ok {
			return corruptf(k, "malformed hidden-record key")
		}
		if isPurgeMark(v) {
			var vv crdt.VV
			if len(v) > 1 {
				var err error
				if vv, err = decodeVV(k, v[1:]); err != nil {
					return err
				}
			}
			s.hidden[string(k[1:])] = vv
			s.purged[string(k[1:])] = true
			return nil
		}
		var vv crdt.VV
		if len(v) > 0 {
			var err error
			if vv, err = decodeVV(k, v); err != nil {
				return err
			}
		}
		s.hidden[string(k[1:])] = vv
		return nil
	}); err != nil {
		return err
	}
	s.parked, s.parkedBy = map[crdt.Dot]bool{}, map[hlc.NodeID]int{}
	return s.scanKeys([]byte{pParked}, func(k []byte) error {
		if len(k) != 17 {
			return corruptf(k, "parked key of %d bytes", len(k))
		}
		s.markParked(crdt.Dot{Node: hlc.NodeID(be(k[1:9])), Seq: be(k[9:])})
		return nil
	})
}

// lastU64 returns the 8-byte integer of the last key with prefix p.
func (s *Store) lastU64(p byte) (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{p}, UpperBound: []byte{p + 1}})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	if len(it.Key()) != 9 {
		return 0, corruptf(it.Key(), "key of %d bytes", len(it.Key()))
	}
	return be(it.Key()[1:]), nil
}

func decodeHeld(key, val []byte) (Held, error) {
	var f []uint64
	if err := decodeValue(key, val, &f); err != nil {
		return Held{}, err
	}
	h, err := heldFromFlat(f)
	if err != nil {
		return Held{}, corrupt(key, err)
	}
	return h, nil
}

// Close closes the store. Writes in progress finish first, then the
// memtable is flushed (a clean stop leaves no write only in the
// write-ahead log: the next open replays nothing, and the obsolete logs
// are deleted). Close after a failure (ErrFailed) releases what it can,
// without flushing. Calling Close twice returns ErrClosed.
func (s *Store) Close() error {
	s.stopIndexBuilds()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usable() // a failed log write fails the store: no flush then (walerr.go)
	prev := s.state.Load()
	if prev != nil && errors.Is(*prev, ErrClosed) {
		return ErrClosed
	}
	closed := ErrClosed
	s.flushMu.Lock() // no flushWAL from now on
	s.state.Store(&closed)
	s.flushMu.Unlock()
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("store: close: pebble: %v", r)
			}
		}()
		if prev == nil && !s.opts.testNoFlushAtClose {
			if err := s.db.Flush(); err != nil {
				s.log.Error("store: flush at close", "error", err)
			}
		}
		return s.db.Close()
	}()
	s.cache.Unref()
	if err != nil && prev == nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// usable returns nil, ErrClosed or the failure. A write or sync of the
// log that failed fails the store (walerr.go).
func (s *Store) usable() error {
	if p := s.state.Load(); p != nil {
		return *p
	}
	if err := s.wal.err(); err != nil {
		return s.failWith(err)
	}
	return nil
}

// failWith marks the store failed.
func (s *Store) failWith(err error) error {
	f := fmt.Errorf("%w: %w", ErrFailed, err)
	s.state.CompareAndSwap(nil, &f)
	s.log.Error("store failed", "error", err)
	return f
}

// NodeID returns this replica's node id, generated once when the store was
// created.
func (s *Store) NodeID() hlc.NodeID { return s.node }

// ClusterID returns the cluster id recorded in the store ("" if none).
func (s *Store) ClusterID() string { return s.cluster }

// HighWater returns the HLC high-water mark persisted with the last write
// (restored on open). The daemon calls clock.Restore(s.HighWater()) before
// using the clock, so it never goes backwards across restarts.
func (s *Store) HighWater() hlc.Timestamp {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hw
}

// Metrics returns Pebble's metrics (for the daemon's status and tests).
func (s *Store) Metrics() *pebble.Metrics { return s.db.Metrics() }

// Failed returns the error that failed the store (wrapping ErrFailed)
// after an I/O error on a write, or nil. A failed store refuses
// everything; its owner closes it and opens it again (when the disk has
// room again, say): what was acknowledged is in the WAL.
func (s *Store) Failed() error {
	if err := s.usable(); err != nil && errors.Is(err, ErrFailed) {
		return err
	}
	return nil
}
