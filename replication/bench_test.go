package replication

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
	"github.com/ugorji/go/codec"
)

// Benchmarks of the sync protocol, each with its baseline measured in the
// same run. Commands (setup stays outside the timer; run one at a time, the
// machine is shared):
//
//	go test ./replication -run '^$' -bench WireBytesPerField
//	go test ./replication -run '^$' -bench CatchUp -benchtime 1x [-sync.big]
//	go test ./replication -run '^$' -bench PartitionHeal -benchtime 1x

var flagBig = flag.Bool("sync.big", false, "BenchmarkCatchUp: 1,000,000 writes instead of 100,000")

// Node ids as production makes them (random 64-bit), so that nothing
// benefits from small ids.
const (
	benchDevice hlc.NodeID = 0x9e3779b97f4a7c15
	benchHub    hlc.NodeID = 0xc2b2ae3d27d4eb4f
	benchOther  hlc.NodeID = 0x165667b19e3779f9
)

// Realistic single-field changes: a work-order app.
var (
	benchFields = []string{"status", "assignee", "due", "notes", "priority"}
	benchValues = func() []crdt.Value {
		var vs []crdt.Value
		for i := range 1000 {
			var v any
			switch i % 5 {
			case 0:
				v = []string{"open", "in_progress", "blocked", "done"}[i%4]
			case 1:
				v = fmt.Sprintf("tech-%03d", i%300)
			case 2:
				v = fmt.Sprintf("2024-%02d-%02dT%02d:00:00Z", 1+i%12, 1+i%28, i%24)
			case 3:
				v = fmt.Sprintf("replaced valve %d, check again next visit", i)
			default:
				v = i % 5
			}
			vs = append(vs, crdt.MustValue(v))
		}
		return vs
	}()
)

type benchNode struct {
	st    *store.Store
	local *Local
}

func openBenchNode(b *testing.B, dir string, node hlc.NodeID, role string, mem, noSync bool) *benchNode {
	opts := store.Options{Dir: dir, NodeID: node, NoSync: noSync, ClusterID: "bench"}
	if mem {
		opts.FS = vfs.NewMem()
		opts.MemTableSize, opts.CacheSize = 4<<20, 4<<20
	}
	st, err := store.Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	clock := hlc.NewClock(func() int64 { return time.Now().UnixMilli() }, hlc.DefaultMaxOffset)
	return &benchNode{st: st, local: &Local{Node: st.NodeID(), Cluster: "bench", Role: role, Scope: FullScope(), Clock: clock, Store: st}}
}

func (n *benchNode) write(b *testing.B, table, id, field string, v crdt.Value) *crdt.Write {
	w, err := n.st.Write(n.local.Clock, table, id, []crdt.FieldValue{{Name: field, Value: v}}, false)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// syncMem runs one session between a (dialer) and c in memory, passing
// every message through the wire codec, and returns the chunks a sent.
func syncMem(b *testing.B, a, c *benchNode) []Msg {
	sa, sc := NewSession(a.local, true), NewSession(c.local, false)
	toC, toA := sa.Start(), sc.Start()
	var chunks []Msg
	for !(sa.Finished() && sc.Finished()) {
		var m Msg
		var dst *Session
		switch {
		case len(toC) > 0:
			m, toC, dst = toC[0], toC[1:], sc
			if m.Chunk != nil {
				chunks = append(chunks, m)
			}
		case len(toA) > 0:
			m, toA, dst = toA[0], toA[1:], sa
		default:
			b.Fatal("session stalled")
		}
		enc, err := EncodeMsg(m)
		if err != nil {
			b.Fatal(err)
		}
		m2, err := DecodeMsg(enc)
		if err != nil {
			b.Fatal(err)
		}
		out, err := dst.Handle(m2)
		if err != nil {
			b.Fatal(err)
		}
		if dst == sa {
			toC = append(toC, out...)
		} else {
			toA = append(toA, out...)
		}
	}
	return chunks
}

// chunkV1 is the protocol-1 chunk (one crdt.AppendWrite per write), kept
// here as the baseline.
type chunkV1 struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	No      uint64
	Writes  [][]byte
	Empties []OriginHeld
}

func frameBytesV1(b *testing.B, no uint64, ws []*crdt.Write) int {
	c := chunkV1{No: no}
	for _, w := range ws {
		enc, err := crdt.AppendWrite(nil, w)
		if err != nil {
			b.Fatal(err)
		}
		c.Writes = append(c.Writes, enc)
	}
	var buf []byte
	if err := codec.NewEncoderBytes(&buf, wireHandle).Encode(&c); err != nil {
		b.Fatal(err)
	}
	return 4 + 1 + len(buf)
}

// BenchmarkWireBytesPerField measures the bytes a chunk frame takes per
// changed field, for chunks a real session produced (device to hub,
// production-like random node ids, a device with a history of 2,000
// writes over 500 records).
//
// How overhead is counted: frame bytes are everything the chunk puts on the
// wire: the 4-byte length prefix, the type byte, the msgpack chunk header
// (array, chunk number, body length, empty-ranges list) and the body.
// "beyond-value-B/field" (judged: ≤ 24 for an isolated change, ≤ 8 per
// field in batches of 100) subtracts the bytes of the field values alone
// and divides by the number of fields changed: everything else the frame
// carries (table, record id and field names, clocks, framing) is overhead,
// so it cannot be negative. "encoding-B/field" also subtracts each
// distinct table, id and field name once (the bytes any encoding must
// carry to address the change): what the encoding itself costs, reported.
// "value-B/field" is the values' bytes per field (the baseline);
// "total-B/field" is frame bytes per field, everything included.
// "v1-beyond-value-B/field" is the judged count for the protocol-1 chunk
// of the same writes; Yjs needs about 32 bytes per map set.
func BenchmarkWireBytesPerField(b *testing.B) {
	type tc struct {
		name   string
		change func(dev *benchNode, rng *rand.Rand)
	}
	cases := []tc{
		{"isolated", func(dev *benchNode, rng *rand.Rand) {
			dev.write(b, "work_orders", fmt.Sprintf("wo-%06d", rng.IntN(500)), "status", benchValues[0])
		}},
		{"batch100-records", func(dev *benchNode, rng *rand.Rand) {
			for i := range 100 {
				dev.write(b, "work_orders", fmt.Sprintf("wo-%06d", 100+i*3), benchFields[rng.IntN(len(benchFields))], benchValues[rng.IntN(len(benchValues))])
			}
		}},
		{"batch100-one-record", func(dev *benchNode, rng *rand.Rand) {
			for range 100 {
				dev.write(b, "work_orders", "wo-000042", benchFields[rng.IntN(len(benchFields))], benchValues[rng.IntN(len(benchValues))])
			}
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			dev := openBenchNode(b, "/d", benchDevice, "device", true, true)
			hub := openBenchNode(b, "/h", benchHub, "hub", true, true)
			for i := range 2000 {
				dev.write(b, "work_orders", fmt.Sprintf("wo-%06d", i%500), benchFields[i%len(benchFields)], benchValues[i%len(benchValues)])
			}
			syncMem(b, dev, hub)
			c.change(dev, rng)
			chunks := syncMem(b, dev, hub)
			if len(chunks) != 1 {
				b.Fatalf("%d chunks", len(chunks))
			}
			m := chunks[0]
			ws, err := decodeChunkWrites(m.Chunk.Body, dev.local.Node, hub.local.Node)
			if err != nil {
				b.Fatal(err)
			}
			fields, values, names := 0, 0, 0
			seen := map[string]bool{}
			once := func(kind, s string) {
				if !seen[kind+s] {
					seen[kind+s] = true
					names += len(s)
				}
			}
			for _, w := range ws {
				once("t", w.Table)
				once("i", w.ID)
				for _, f := range w.Fields {
					values += len(f.Value)
					once("f", f.Name)
					fields++
				}
			}
			b.ResetTimer()
			var frame int
			for range b.N {
				enc, err := encodeChunkWrites(ws, dev.local.Node, hub.local.Node)
				if err != nil {
					b.Fatal(err)
				}
				data, err := EncodeMsg(Msg{Chunk: &Chunk{No: m.Chunk.No, Body: enc}})
				if err != nil {
					b.Fatal(err)
				}
				frame = 4 + len(data)
			}
			b.StopTimer()
			if sent, _ := EncodeMsg(m); 4+len(sent) != frame {
				b.Fatalf("re-encoded frame %d bytes, session sent %d", frame, 4+len(sent))
			}
			v1 := frameBytesV1(b, m.Chunk.No, ws)
			if frame < values+names {
				b.Fatalf("frame %d bytes < values %d + names %d: the count is wrong", frame, values, names)
			}
			b.ReportMetric(float64(frame-values)/float64(fields), "beyond-value-B/field")
			b.ReportMetric(float64(frame-values-names)/float64(fields), "encoding-B/field")
			b.ReportMetric(float64(frame)/float64(fields), "total-B/field")
			b.ReportMetric(float64(v1-values)/float64(fields), "v1-beyond-value-B/field")
			b.ReportMetric(float64(values)/float64(fields), "value-B/field")
		})
	}
}

// catchUpHub builds a hub holding n single-field writes of another device
// (origin benchOther, 10 writes per record), applied in batches.
func catchUpHub(b *testing.B, n int) *benchNode {
	hub := openBenchNode(b, filepath.Join(b.TempDir(), "hub"), benchHub, "hub", false, true)
	nrec := max(n/10, 1)
	last := make([]uint64, nrec)
	start := time.Now().UnixMilli() - int64(n/100) - 1000
	var batch []*crdt.Write
	for i := range n {
		r := i % nrec
		seq := uint64(i + 1)
		w := &crdt.Write{
			Table: "work_orders", ID: fmt.Sprintf("wo-%07d", r),
			Origin: benchOther, Seq: seq, TS: hlc.New(start+int64(i/100), uint16(i%100)),
			Fields: []crdt.FieldValue{{Name: benchFields[i%len(benchFields)], Value: benchValues[i%len(benchValues)]}},
		}
		if last[r] > 0 {
			w.Ctx = crdt.VV{{Node: benchOther, Seq: last[r]}}
		}
		last[r] = seq
		batch = append(batch, w)
		if len(batch) == 10000 || i == n-1 {
			res, err := hub.st.ApplyRemote(hub.local.Clock, batch, nil)
			if err != nil || res.Applied != len(batch) {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	return hub
}

func tcpPair(b *testing.B) (net.Conn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		ch <- c
	}()
	ca, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	cb := <-ch
	if cb == nil {
		b.Fatal("accept failed")
	}
	return ca, cb
}

type nullPebbleLogger struct{}

func (nullPebbleLogger) Infof(string, ...any)  {}
func (nullPebbleLogger) Errorf(string, ...any) {}
func (nullPebbleLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// BenchmarkCatchUp: a device that missed N single-field writes (N =
// 100,000; 1,000,000 with -sync.big; target: 1,000,000 in at most 10 s)
// catches up from a hub over loopback TCP, RunConn on both ends. Both
// stores are on disk in b.TempDir(); the device's store uses the default
// (durable: every chunk is fsynced before its Ack), the hub's NoSync (it
// only reads during the session; NoSync only speeds up building it).
// Baselines, same run, same machine: raw loopback TCP carrying the same
// number of bytes (written by one goroutine, read by another), and raw
// Pebble batched Sets of the same keys (each write's change-log key and
// record key, with values of the sizes the store writes), one synced batch
// per chunk the session sent. The device takes no record states: this
// is the log's catch-up (states: BenchmarkStateTransfer).
func BenchmarkCatchUp(b *testing.B) {
	n := 100_000
	if *flagBig {
		n = 1_000_000
	}
	b.StopTimer()
	hub := catchUpHub(b, n)
	var wire, chunks uint64
	var dur time.Duration
	for range b.N {
		dev := openBenchNode(b, filepath.Join(b.TempDir(), "dev"), benchDevice, "device", false, false)
		dev.local.NoStateTransfer = true // the log streamed (state transfer: BenchmarkStateTransfer)
		ca, cb := tcpPair(b)
		sd, sh := NewSession(dev.local, true), NewSession(hub.local, false)
		var wg sync.WaitGroup
		var ed, eh error
		wg.Add(2)
		t0 := time.Now()
		b.StartTimer()
		go func() { defer wg.Done(); ed = RunConn(context.Background(), ca, sd, ConnOptions{}) }()
		go func() { defer wg.Done(); eh = RunConn(context.Background(), cb, sh, ConnOptions{}) }()
		wg.Wait()
		b.StopTimer()
		dur += time.Since(t0)
		if ed != nil || eh != nil {
			b.Fatalf("device: %v; hub: %v", ed, eh)
		}
		if h := dev.st.HeldOf(benchOther); h.Contig != uint64(n) {
			b.Fatalf("device holds %+v, want 1..%d", h, n)
		}
		st := sh.Snapshot()
		wire = st.BytesSent + sd.Snapshot().BytesSent
		chunks = st.ChunksSent
		dev.st.Close()
	}
	secs := dur.Seconds() / float64(b.N)
	b.ReportMetric(secs, "s")
	b.ReportMetric(float64(n)/secs, "writes/s")
	b.ReportMetric(float64(wire)/secs/1e6, "MB/s")
	b.ReportMetric(float64(wire)/float64(n), "wire-B/write")

	// Baseline 1: raw loopback TCP, the same number of bytes.
	{
		ca, cb := tcpPair(b)
		buf := make([]byte, 256<<10)
		t0 := time.Now()
		go func() {
			left := int(wire)
			for left > 0 {
				k, err := ca.Write(buf[:min(left, len(buf))])
				if err != nil {
					return
				}
				left -= k
			}
			ca.Close()
		}()
		got, _ := io.Copy(io.Discard, cb)
		cb.Close()
		if got != int64(wire) {
			b.Fatalf("tcp baseline moved %d of %d bytes", got, wire)
		}
		s := time.Since(t0).Seconds()
		b.ReportMetric(s, "tcp-s")
		b.ReportMetric(float64(wire)/s/1e6, "tcp-MB/s")
	}

	// Baseline 2: raw Pebble, the same keys, one synced batch per chunk.
	{
		cache := pebble.NewCache(store.DefaultCacheSize)
		db, err := pebble.Open(filepath.Join(b.TempDir(), "raw"), &pebble.Options{
			Cache: cache, MemTableSize: store.DefaultMemTableSize, FormatMajorVersion: store.PebbleFormat, Logger: nullPebbleLogger{},
		})
		cache.Unref()
		if err != nil {
			b.Fatal(err)
		}
		perBatch := (n + int(chunks) - 1) / max(int(chunks), 1)
		logVal := make([]byte, 80)  // about a one-field crdt.AppendWrite
		recVal := make([]byte, 120) // about a one-field record state
		key := make([]byte, 0, 64)
		t0 := time.Now()
		bt := db.NewBatch()
		for i := range n {
			key = append(key[:0], 'l')
			key = binary.BigEndian.AppendUint64(key, uint64(benchOther))
			key = binary.BigEndian.AppendUint64(key, uint64(i+1))
			bt.Set(key, logVal, nil)
			key = fmt.Appendf(key[:0], "rwork_orders\x00wo-%07d", i%max(n/10, 1))
			bt.Set(key, recVal, nil)
			if (i+1)%perBatch == 0 || i == n-1 {
				if err := db.Apply(bt, pebble.Sync); err != nil {
					b.Fatal(err)
				}
				bt.Close()
				bt = db.NewBatch()
			}
		}
		bt.Close()
		s := time.Since(t0).Seconds()
		db.Close()
		b.ReportMetric(s, "pebble-s")
		b.ReportMetric(float64(n)/s, "pebble-writes/s")
	}
}

// BenchmarkPartitionHeal: a device and a hub share 1,000 records (5 fields
// each); during a partition each makes K = 1,000 single-field changes to
// random records; then one session (over net.Pipe, RunConn on both ends)
// heals. Reported: every byte both sides sent (frames of the handshake,
// Have, chunks, Acks, Done) divided by the bytes of the fields that
// changed, their values ("sent/values", judged: ≤ 1.2x); and, reported,
// divided by the values plus each distinct table, record id and field
// name once ("sent/values+names": the least any encoding must send);
// baseline in the same run: the judged ratio for the protocol-1 chunk
// encoding (the session's non-chunk bytes plus v1 chunk frames of the
// same writes).
func BenchmarkPartitionHeal(b *testing.B) {
	const k = 1000
	for range b.N {
		b.StopTimer()
		rng := rand.New(rand.NewPCG(3, 4))
		dev := openBenchNode(b, "/d", benchDevice, "device", true, true)
		hub := openBenchNode(b, "/h", benchHub, "hub", true, true)
		for i := range 5000 {
			dev.write(b, "work_orders", fmt.Sprintf("wo-%06d", i%1000), benchFields[i%len(benchFields)], benchValues[i%len(benchValues)])
		}
		syncMem(b, dev, hub)
		values, names := 0, 0
		seen := map[string]bool{}
		once := func(kind, s string) {
			if !seen[kind+s] {
				seen[kind+s] = true
				names += len(s)
			}
		}
		for range k {
			for _, n := range []*benchNode{dev, hub} {
				w := n.write(b, "work_orders", fmt.Sprintf("wo-%06d", rng.IntN(1000)), benchFields[rng.IntN(len(benchFields))], benchValues[rng.IntN(len(benchValues))])
				values += len(w.Fields[0].Value)
				once("t", w.Table)
				once("i", w.ID)
				once("f", w.Fields[0].Name)
			}
		}
		ca, cb := net.Pipe()
		sd, sh := NewSession(dev.local, true), NewSession(hub.local, false)
		var wg sync.WaitGroup
		var ed, eh error
		var chunkBytes, v1Bytes int
		wg.Add(2)
		b.StartTimer()
		go func() { defer wg.Done(); ed = RunConn(context.Background(), ca, sd, ConnOptions{}) }()
		go func() { defer wg.Done(); eh = RunConn(context.Background(), cb, sh, ConnOptions{}) }()
		wg.Wait()
		b.StopTimer()
		if ed != nil || eh != nil {
			b.Fatalf("device: %v; hub: %v", ed, eh)
		}
		total := sd.Snapshot().BytesSent + sh.Snapshot().BytesSent
		// The v1 baseline: each side's new writes as one chunk, in both
		// encodings; the difference replaces the chunk bytes in the total.
		for _, pair := range [][2]*benchNode{{dev, hub}, {hub, dev}} {
			from, to := pair[0], pair[1]
			var ws []*crdt.Write
			after := uint64(0)
			if from == dev {
				after = 5000
			}
			if err := from.st.Stream(from.local.Node, after, func(w *crdt.Write) error {
				ws = append(ws, w)
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			enc, err := encodeChunkWrites(ws, from.local.Node, to.local.Node)
			if err != nil {
				b.Fatal(err)
			}
			data, _ := EncodeMsg(Msg{Chunk: &Chunk{No: 1, Body: enc}})
			chunkBytes += 4 + len(data)
			v1Bytes += frameBytesV1(b, 1, ws)
		}
		b.ReportMetric(float64(total)/float64(values), "sent/values")
		b.ReportMetric(float64(total)/float64(values+names), "sent/values+names")
		b.ReportMetric(float64(total), "bytes-sent")
		b.ReportMetric(float64(values), "value-bytes-changed")
		b.ReportMetric(float64(values+names), "value+name-bytes-changed")
		b.ReportMetric(float64(int(total)-chunkBytes+v1Bytes)/float64(values), "v1-sent/values")
	}
}
