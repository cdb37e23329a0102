package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/store"
	"github.com/ugorji/go/codec"
)

// ProtocolVersion is the sync protocol's version. A peer speaking another
// version is refused at the handshake.
const ProtocolVersion uint16 = 4

// Limits of the wire format.
const (
	// MaxChunkBytes bounds the encoded writes of one chunk (a single write
	// larger than this travels alone, fragmented by the framing).
	MaxChunkBytes = 1 << 20
	// MaxFrameBytes bounds one frame on the wire; larger messages are split
	// into fragment frames.
	MaxFrameBytes = MaxChunkBytes + 64<<10
	// MaxMessageBytes bounds a reassembled message; a peer announcing more
	// is cut off.
	MaxMessageBytes = 64 << 20
	// Window is the number of chunks a sender may have unacknowledged.
	Window = 2
)

// MsgType identifies a message on the wire.
type MsgType uint8

// Message types.
const (
	MsgHello MsgType = iota + 1
	MsgWelcome
	MsgHave
	MsgChunk
	MsgAck
	MsgRecordReq
	MsgRecords
	MsgDone
	MsgError
	msgFragment // a piece of a message larger than a frame
	MsgNews     // on a watch connection: the listener holds new writes (watch.go)
	msgTypeEnd
)

func (t MsgType) String() string {
	names := [...]string{"", "hello", "welcome", "have", "chunk", "ack", "record-req", "records", "done", "error", "fragment", "news"}
	if int(t) < len(names) && t > 0 {
		return names[t]
	}
	return fmt.Sprintf("msg(%d)", uint8(t))
}

// Msg is one protocol message: exactly one of the pointers is set.
type Msg struct {
	Hello     *Hello
	Welcome   *Welcome
	Have      *Have
	Chunk     *Chunk
	Ack       *Ack
	RecordReq *RecordReq
	Records   *Records
	Done      *Done
	Error     *ErrorMsg
	News      *News
}

// Type returns the message's type, or 0 if none is set.
func (m Msg) Type() MsgType {
	t, _ := m.typed()
	return t
}

func (m Msg) body() any {
	_, b := m.typed()
	return b
}

// typed returns the message's type and the body that is set.
func (m Msg) typed() (MsgType, any) {
	switch {
	case m.Hello != nil:
		return MsgHello, m.Hello
	case m.Welcome != nil:
		return MsgWelcome, m.Welcome
	case m.Have != nil:
		return MsgHave, m.Have
	case m.Chunk != nil:
		return MsgChunk, m.Chunk
	case m.Ack != nil:
		return MsgAck, m.Ack
	case m.RecordReq != nil:
		return MsgRecordReq, m.RecordReq
	case m.Records != nil:
		return MsgRecords, m.Records
	case m.Done != nil:
		return MsgDone, m.Done
	case m.Error != nil:
		return MsgError, m.Error
	case m.News != nil:
		return MsgNews, m.News
	}
	return 0, nil
}

// Hello opens a session (dialer to listener).
type Hello struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Proto   uint16
	Cluster string
	Node    uint64
	Role    string
	Scope   Scope
	PhysMs  int64 // the sender's physical clock, to measure skew
	// Version is the sender's software version (for operators).
	Version string
	// Watch asks for a watch connection instead of a session (watch.go).
	// Trailing: a listener that predates it runs a session, and the
	// dialer, seeing no Welcome.Watch, gives the watch up.
	Watch bool
}

// Welcome answers Hello: the listener's identity, or a refusal.
type Welcome struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Proto   uint16
	Cluster string
	Node    uint64
	Role    string
	Scope   Scope
	// Refused, when not empty, says why the session is refused; the dialer
	// may retry after RetryAfterMs (0: do not retry soon).
	Refused      string
	RetryAfterMs uint32
	PhysMs       int64
	// Assigned, from a hub that assigns the dialer its scope (its offline
	// profile), is that scope: the hub enforces it, the dialer adopts it.
	Assigned *Scope
	// Version is the listener's software version (for operators).
	Version string
	// The listener's HTTP API and gossip addresses as it advertises them
	// ("" if none): a device that dials a hub reads it online through
	// that API. Trailing fields: a peer that predates them ignores them.
	APIAddr    string
	GossipAddr string
	// Watch accepts a watch connection the Hello asked for: News follow.
	Watch bool
	// Arbiter: the listener arbitrates client-wins and server-wins
	// tables; Decided is then the highest sequence number up to which it
	// holds every write of the dialer and has carried out its decision on
	// each (Local.Decided). Written before the Welcome, so the session
	// brings those decisions to the dialer.
	Arbiter bool
	Decided uint64
}

// Have lists what the sender holds, per origin, and its tombstone
// horizon (flattened node, seq pairs; see Collector).
type Have struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Origins []OriginHeld
	GC      []uint64
	// Accept, when set (protocol version 4), restricts the origins whose
	// writes the Have's sender takes from its peer in this session: node
	// id prefixes as flattened (id, bits) pairs, possibly none. The peer
	// sends no write, empty range or skip of any other origin. Nil: every
	// origin. A node in a TLS cluster sets it for device peers (see
	// WriteFilter).
	Accept *AcceptOrigins
	// Void lists, per origin, sequence numbers whose empty claims were
	// found false (the origin contradicted them; see originAuthority):
	// the receiver drops the empty claims it holds within them, once, so
	// that the real writes reach it. Older senders send none.
	Void []OriginHeld
	// State: the Have's sender takes record states from its peer in this
	// session (state transfer, statexfer.go): the peer may send, instead
	// of writes, whole records (Chunk.Recs) and the numbers they include
	// (Chunk.Covered). StateTake, or 0: it takes none. Trailing: a peer
	// that predates it reads a Have without it and never sends them; one
	// that predates it ignores it.
	State uint8
}

// maxVoidOrigins bounds a Have's Void list.
const maxVoidOrigins = 1024

// AcceptOrigins lists node id prefixes: Nodes are flattened (id, bits)
// pairs, bits 1-64.
type AcceptOrigins struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Nodes   []uint64
}

// maxAcceptOrigins bounds an AcceptOrigins list.
const maxAcceptOrigins = 4096

// OriginHeld is one origin's held sequence numbers: 1..Contig and the
// inclusive ranges in Ranges (flattened lo, hi pairs, sorted, disjoint).
type OriginHeld struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Origin  uint64
	Contig  uint64
	Ranges  []uint64
}

// Chunk carries writes the receiver lacks, in HLC order, and ranges it
// needs nothing for.
type Chunk struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	No      uint64
	// Body is the writes in the compact chunk encoding of wire.go (since
	// protocol version 2; version 1 had one crdt.AppendWrite per write).
	Body    []byte
	Empties []OriginHeld
	// Skips are writes to records of tables the receiver holds filtered,
	// which by the sender's state are outside the receiver's scope: sent
	// by key, without values, so that a receiver holding the record (its
	// state may be newer than the sender's) can fetch it whole instead of
	// silently missing the write.
	Skips []Skip
	// Recs are whole records, sent (state transfer, only to a peer whose
	// Have set State) before any write or claim of the session; Covered
	// are the sequence numbers, per origin, that the records sent include
	// (or that lie outside the receiver's scope), which the receiver then
	// holds with no log entry. Trailing: never sent to an older peer.
	Recs    []RecordState
	Covered []OriginHeld
}

// Skip names one write without its values.
type Skip struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Origin  uint64
	Seq     uint64
	Table   string
	ID      string
}

// Ack acknowledges a chunk once applied durably.
type Ack struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	No      uint64
	Applied uint32
}

// RecordKey names a record.
type RecordKey struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Table   string
	ID      string
}

// RecordReq asks for whole records: records entering the asker's scope
// (Keys), and records the asker already holds and must refresh (Held),
// which are sent whatever their filter says.
type RecordReq struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Keys    []RecordKey
	Held    []RecordKey
	// Scan asks for the listing of every live record of these tables
	// that the asker's scope selects by the sender's state (reconciling a
	// filtered scope: what newly matches, what no longer does).
	Scan []string
}

// Records answers RecordReq.
type Records struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Recs    []RecordState
	Listed  []Listed // the answer to Scan
}

// Listed is one record of a Scan listing with the sender's version vector
// of it (flattened node, seq pairs).
type Listed struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Table   string
	ID      string
	Applied []uint64
}

// RecordState is one whole record; or Missing when the sender does not
// hold it; or OutOfScope when, by the sender's state, it is outside the
// asker's scope.
type RecordState struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct    bool `codec:",toarray"` //nolint:unused
	Table      string
	ID         string
	State      []byte // crdt.Record encoding
	Missing    bool
	OutOfScope bool
	// Applied is, with OutOfScope, the sender's version vector of the
	// record (flattened node, seq pairs): a receiver whose record it
	// covers may drop its copy.
	Applied []uint64
}

// Done says the sender has sent everything the receiver lacked.
type Done struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Writes  uint64
	Empties uint64
}

// News, on a watch connection, says the sender holds writes: Heads are
// flattened (origin, seq) pairs, the highest sequence number the sender
// holds of each origin whose writes it applied since its last News (none:
// a heartbeat). Both sides send heartbeats.
type News struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Heads   []uint64
}

// maxNewsHeads bounds the pairs of one News.
const maxNewsHeads = 1 << 16

// ErrorMsg ends a session with a reason.
type ErrorMsg struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct bool `codec:",toarray"` //nolint:unused
	Reason  string
}

var wireHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.WriteExt = true
	h.RawToString = true
	return h
}()

type msgCodec struct {
	enc *codec.Encoder
	dec *codec.Decoder
	buf []byte
}

var msgPool = sync.Pool{New: func() any {
	c := &msgCodec{}
	c.enc = codec.NewEncoderBytes(&c.buf, wireHandle)
	c.dec = codec.NewDecoderBytes(nil, wireHandle)
	return c
}}

// EncodeMsg returns the message's body encoding, prefixed by its type byte.
func EncodeMsg(m Msg) ([]byte, error) {
	t := m.Type()
	if t == 0 {
		return nil, errors.New("replication: empty message")
	}
	c := msgPool.Get().(*msgCodec)
	defer msgPool.Put(c)
	c.buf = c.buf[:0]
	c.enc.ResetBytes(&c.buf)
	if err := c.enc.Encode(m.body()); err != nil {
		return nil, fmt.Errorf("replication: encode %v: %w", t, err)
	}
	out := make([]byte, 1+len(c.buf))
	out[0] = byte(t)
	copy(out[1:], c.buf)
	if cap(c.buf) > 1<<20 {
		c.buf = nil // do not pin huge buffers in the pool
	}
	return out, nil
}

// DecodeMsg decodes a message encoded by EncodeMsg. It validates the shape
// of what it decodes; it never panics on hostile input.
func DecodeMsg(data []byte) (m Msg, err error) {
	if len(data) == 0 {
		return Msg{}, errors.New("replication: empty frame")
	}
	t := MsgType(data[0])
	switch t {
	case MsgHello:
		m.Hello = &Hello{}
	case MsgWelcome:
		m.Welcome = &Welcome{}
	case MsgHave:
		m.Have = &Have{}
	case MsgChunk:
		m.Chunk = &Chunk{}
	case MsgAck:
		m.Ack = &Ack{}
	case MsgRecordReq:
		m.RecordReq = &RecordReq{}
	case MsgRecords:
		m.Records = &Records{}
	case MsgDone:
		m.Done = &Done{}
	case MsgError:
		m.Error = &ErrorMsg{}
	case MsgNews:
		m.News = &News{}
	default:
		return Msg{}, fmt.Errorf("replication: unknown message type %d", data[0])
	}
	c := msgPool.Get().(*msgCodec)
	defer msgPool.Put(c)
	defer func() {
		if p := recover(); p != nil { // the codec panics on some hostile input
			m, err = Msg{}, fmt.Errorf("replication: malformed %v message: %v", t, p)
		}
	}()
	c.dec.ResetBytes(data[1:])
	if err := c.dec.Decode(m.body()); err != nil {
		return Msg{}, fmt.Errorf("replication: malformed %v message: %w", t, err)
	}
	if err := m.validate(); err != nil {
		return Msg{}, err
	}
	return m, nil
}

func (m Msg) validate() error {
	checkHeld := func(hs []OriginHeld) error {
		for _, h := range hs {
			if h.Origin == 0 {
				return errors.New("replication: origin 0")
			}
			if len(h.Ranges)%2 != 0 {
				return errors.New("replication: odd range list")
			}
			prev := h.Contig
			for i := 0; i < len(h.Ranges); i += 2 {
				lo, hi := h.Ranges[i], h.Ranges[i+1]
				if lo <= prev+1 || hi < lo {
					return fmt.Errorf("replication: bad range %d-%d after %d", lo, hi, prev)
				}
				prev = hi
			}
		}
		return nil
	}
	switch {
	case m.Have != nil:
		if _, err := flatToVV(m.Have.GC); err != nil {
			return err
		}
		if a := m.Have.Accept; a != nil {
			if _, err := a.matches(); err != nil {
				return err
			}
		}
		if len(m.Have.Void) > maxVoidOrigins {
			return fmt.Errorf("replication: void list of %d origins (limit %d)", len(m.Have.Void), maxVoidOrigins)
		}
		if err := checkHeld(m.Have.Void); err != nil {
			return err
		}
		return checkHeld(m.Have.Origins)
	case m.Chunk != nil:
		for _, k := range m.Chunk.Skips {
			if k.Origin == 0 || k.Seq == 0 {
				return errors.New("replication: skip without origin or sequence")
			}
		}
		for _, r := range m.Chunk.Recs {
			if r.Missing || r.OutOfScope || len(r.State) == 0 {
				return errors.New("replication: chunk record without a state")
			}
		}
		if err := checkHeld(m.Chunk.Covered); err != nil {
			return err
		}
		return checkHeld(m.Chunk.Empties)
	case m.Hello != nil:
		if m.Hello.Node == 0 {
			return errors.New("replication: hello without node id")
		}
		// Filters are compiled once the handshake is accepted
		// (Session.handshake).
		return m.Hello.Scope.validate(false)
	case m.Welcome != nil:
		if m.Welcome.Node == 0 && m.Welcome.Refused == "" {
			return errors.New("replication: welcome without node id")
		}
		if a := m.Welcome.Assigned; a != nil {
			if err := a.Validate(); err != nil {
				return fmt.Errorf("replication: assigned scope: %w", err)
			}
		}
		return m.Welcome.Scope.Validate()
	case m.News != nil:
		if len(m.News.Heads)%2 != 0 || len(m.News.Heads) > 2*maxNewsHeads {
			return fmt.Errorf("replication: news of %d values", len(m.News.Heads))
		}
		for i := 0; i < len(m.News.Heads); i += 2 {
			if m.News.Heads[i] == 0 {
				return errors.New("replication: news of origin 0")
			}
		}
	case m.RecordReq != nil:
		if len(m.RecordReq.Scan) > 1000 {
			return fmt.Errorf("replication: scan of %d tables", len(m.RecordReq.Scan))
		}
		for _, t := range m.RecordReq.Scan {
			if !store.ValidTable(t) {
				return fmt.Errorf("replication: scan of invalid table %q", t)
			}
		}
	}
	return nil
}

// Frames: a 4-byte big-endian length, then that many bytes: a type byte
// and the body. A message longer than MaxFrameBytes is sent as fragment
// frames (type msgFragment, then a "more" byte, then a piece), the last of
// which completes it.

// WriteMsg frames and writes m to w.
func WriteMsg(w io.Writer, m Msg) (int, error) {
	data, err := EncodeMsg(m)
	if err != nil {
		return 0, err
	}
	if len(data) > MaxMessageBytes {
		return 0, fmt.Errorf("replication: %v message of %d bytes exceeds %d", m.Type(), len(data), MaxMessageBytes)
	}
	n := 0
	var hdr [6]byte
	if len(data) <= MaxFrameBytes {
		binary.BigEndian.PutUint32(hdr[:4], uint32(len(data)))
		k, err := writeAll(w, hdr[:4], data)
		return k, err
	}
	for off := 0; off < len(data); {
		piece := min(len(data)-off, MaxFrameBytes-2)
		more := byte(0)
		if off+piece < len(data) {
			more = 1
		}
		binary.BigEndian.PutUint32(hdr[:4], uint32(piece+2))
		hdr[4], hdr[5] = byte(msgFragment), more
		k, err := writeAll(w, hdr[:6], data[off:off+piece])
		n += k
		if err != nil {
			return n, err
		}
		off += piece
	}
	return n, nil
}

func writeAll(w io.Writer, hdr, body []byte) (int, error) {
	k1, err := w.Write(hdr)
	if err != nil {
		return k1, err
	}
	k2, err := w.Write(body)
	return k1 + k2, err
}

// ReadMsg reads one message from r, reassembling fragments. It returns an
// error for a frame over MaxFrameBytes, a message over MaxMessageBytes, or
// a malformed body; the caller must then close the connection.
func ReadMsg(r io.Reader) (Msg, int, error) { return readMsg(r, readLimits{}) }

// readMsg is ReadMsg within lim (limits.go).
func readMsg(r io.Reader, lim readLimits) (_ Msg, n int, err error) {
	var hdr [4]byte
	var msg []byte
	maxFrame := uint32(MaxFrameBytes)
	if lim.frame > 0 && lim.frame < MaxFrameBytes {
		maxFrame = uint32(lim.frame)
	}
	var reserved int
	defer func() { lim.budget.release(reserved) }()
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return Msg{}, n, err
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size == 0 || size > maxFrame {
			return Msg{}, n, fmt.Errorf("replication: frame of %d bytes (limit %d%s)", size, maxFrame, lim.why)
		}
		frame := make([]byte, size)
		if _, err := io.ReadFull(r, frame); err != nil {
			return Msg{}, n, fmt.Errorf("replication: truncated frame: %w", err)
		}
		n += 4 + int(size)
		if MsgType(frame[0]) != msgFragment {
			if msg != nil {
				return Msg{}, n, errors.New("replication: message interleaved with fragments")
			}
			m, err := DecodeMsg(frame)
			return m, n, err
		}
		if lim.noFragments {
			return Msg{}, n, fmt.Errorf("replication: fragment frame%s", lim.why)
		}
		if len(frame) < 2 {
			return Msg{}, n, errors.New("replication: empty fragment")
		}
		if len(msg)+len(frame)-2 > MaxMessageBytes {
			return Msg{}, n, fmt.Errorf("replication: message over %d bytes", MaxMessageBytes)
		}
		if !lim.budget.take(len(frame) - 2) {
			return Msg{}, n, fmt.Errorf("replication: reassembling a %d-byte message would exceed the %d bytes all sessions may buffer", len(msg)+len(frame)-2, lim.budget.max)
		}
		reserved += len(frame) - 2
		msg = append(msg, frame[2:]...)
		if frame[1] == 0 {
			m, err := DecodeMsg(msg)
			return m, n, err
		}
	}
}

// flatToVV decodes a flattened version vector from the wire.
func flatToVV(flat []uint64) (crdt.VV, error) {
	if len(flat)%2 != 0 {
		return nil, errors.New("replication: odd version vector")
	}
	var vv crdt.VV
	for i := 0; i < len(flat); i += 2 {
		vv = append(vv, crdt.Dot{Node: hlc.NodeID(flat[i]), Seq: flat[i+1]})
	}
	if !vv.Valid() {
		return nil, errors.New("replication: malformed version vector")
	}
	return vv, nil
}

func vvToFlat(vv crdt.VV) []uint64 {
	out := make([]uint64, 0, 2*len(vv))
	for _, d := range vv {
		out = append(out, uint64(d.Node), d.Seq)
	}
	return out
}
