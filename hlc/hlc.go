package hlc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Timestamp is a hybrid logical clock reading: the upper 48 bits are wall
// milliseconds since the Unix epoch, the lower 16 bits a logical counter.
// The zero Timestamp is before every reading of a real clock.
type Timestamp uint64

const (
	logicalBits = 16
	logicalMask = 1<<logicalBits - 1
	// MaxWall is the largest wall time, in Unix milliseconds, a Timestamp can
	// hold (the year 10889).
	MaxWall = 1<<48 - 1
)

// New builds a Timestamp from wall milliseconds and a logical counter. Wall
// values outside [0, MaxWall] are clamped.
func New(wallMillis int64, logical uint16) Timestamp {
	if wallMillis < 0 {
		wallMillis = 0
	}
	if wallMillis > MaxWall {
		wallMillis = MaxWall
	}
	return Timestamp(uint64(wallMillis)<<logicalBits | uint64(logical))
}

// Wall returns the wall part in Unix milliseconds.
func (t Timestamp) Wall() int64 { return int64(t >> logicalBits) }

// Logical returns the logical counter.
func (t Timestamp) Logical() uint16 { return uint16(t & logicalMask) }

// Time returns the wall part as a time.Time in UTC.
func (t Timestamp) Time() time.Time { return time.UnixMilli(t.Wall()).UTC() }

// String formats t as "WALL.LOGICAL", wall in Unix milliseconds, which
// [ParseTimestamp] reads back.
func (t Timestamp) String() string {
	return strconv.FormatInt(t.Wall(), 10) + "." + strconv.FormatUint(uint64(t.Logical()), 10)
}

// ParseTimestamp parses the form written by [Timestamp.String].
func ParseTimestamp(s string) (Timestamp, error) {
	w, l, ok := strings.Cut(s, ".")
	if !ok || !plainDigits(w) || !plainDigits(l) {
		return 0, fmt.Errorf("hlc: timestamp %q: want WALL.LOGICAL", s)
	}
	wall, err := strconv.ParseInt(w, 10, 64)
	if err != nil || wall < 0 || wall > MaxWall {
		return 0, fmt.Errorf("hlc: timestamp %q: bad wall part", s)
	}
	lg, err := strconv.ParseUint(l, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("hlc: timestamp %q: bad logical part", s)
	}
	return New(wall, uint16(lg)), nil
}

// plainDigits reports whether s is a decimal number as String writes it:
// digits only, no sign, no leading zero.
func plainDigits(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// AppendKey appends the 8-byte big-endian encoding of t, which sorts
// bytewise in timestamp order.
func (t Timestamp) AppendKey(b []byte) []byte { return binary.BigEndian.AppendUint64(b, uint64(t)) }

// NodeID identifies a replica. It is generated once when a data directory is
// created and never reused; it is the final tie-break between equal
// timestamps.
type NodeID uint64

// String formats n as 16 lower-case hex digits.
func (n NodeID) String() string {
	var b [16]byte
	const hex = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		b[i] = hex[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// ParseNodeID parses 1 to 16 hex digits. The zero NodeID is not a valid node.
func ParseNodeID(s string) (NodeID, error) {
	if len(s) == 0 || len(s) > 16 {
		return 0, fmt.Errorf("hlc: node id %q: want 1 to 16 hex digits", s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("hlc: node id %q: want hex digits", s)
	}
	if v == 0 {
		return 0, fmt.Errorf("hlc: node id %q: zero is not a node", s)
	}
	return NodeID(v), nil
}

// Stamp is a Timestamp with the node that made it. Stamps are totally
// ordered: by timestamp, then by node id.
type Stamp struct {
	TS   Timestamp
	Node NodeID
}

// StampKeyLen is the length of a Stamp's key encoding.
const StampKeyLen = 16

// Compare returns -1, 0 or +1 as a is before, equal to or after b.
func (a Stamp) Compare(b Stamp) int {
	switch {
	case a.TS < b.TS:
		return -1
	case a.TS > b.TS:
		return 1
	case a.Node < b.Node:
		return -1
	case a.Node > b.Node:
		return 1
	}
	return 0
}

// Less reports whether a is before b.
func (a Stamp) Less(b Stamp) bool { return a.Compare(b) < 0 }

// String formats s as "WALL.LOGICAL@NODE".
func (s Stamp) String() string { return s.TS.String() + "@" + s.Node.String() }

// AppendKey appends the 16-byte encoding of s (timestamp then node, both
// big-endian), which sorts bytewise in stamp order.
func (s Stamp) AppendKey(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, uint64(s.TS))
	return binary.BigEndian.AppendUint64(b, uint64(s.Node))
}

// DecodeStampKey decodes the encoding written by [Stamp.AppendKey].
func DecodeStampKey(b []byte) (Stamp, error) {
	if len(b) != StampKeyLen {
		return Stamp{}, fmt.Errorf("hlc: stamp key of %d bytes, want %d", len(b), StampKeyLen)
	}
	return Stamp{
		TS:   Timestamp(binary.BigEndian.Uint64(b[:8])),
		Node: NodeID(binary.BigEndian.Uint64(b[8:])),
	}, nil
}

// DefaultMaxOffset is the default bound on how far ahead of local physical
// time a remote timestamp may be; the package documentation justifies it.
const DefaultMaxOffset = 60 * time.Second

// ErrClockOffset matches every [*OffsetError] with errors.Is.
var ErrClockOffset = errors.New("hlc: remote timestamp beyond maximum clock offset")

// OffsetError reports a remote timestamp too far ahead of local physical
// time. The clock was left unchanged.
type OffsetError struct {
	Remote    Timestamp     // the refused timestamp
	Physical  int64         // local physical time, Unix ms, when it was refused
	MaxOffset time.Duration // the bound in force
}

// Ahead is how far the remote wall time was ahead of local physical time.
func (e *OffsetError) Ahead() time.Duration {
	return time.Duration(e.Remote.Wall()-e.Physical) * time.Millisecond
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("hlc: remote timestamp %s is %v ahead of local physical time, beyond the maximum offset %v",
		e.Remote, e.Ahead(), e.MaxOffset)
}

// Is makes errors.Is(err, ErrClockOffset) true.
func (e *OffsetError) Is(target error) bool { return target == ErrClockOffset }

// PhysicalClock returns the current physical time in Unix milliseconds.
type PhysicalClock func() int64

// SystemClock reads the machine's clock.
func SystemClock() int64 { return time.Now().UnixMilli() }

// Clock is a hybrid logical clock. It is safe for concurrent use.
type Clock struct {
	phys      PhysicalClock
	maxOffset time.Duration

	mu   sync.Mutex
	last Timestamp
}

// NewClock returns a clock reading phys, refusing remote timestamps more than
// maxOffset ahead of it. A maxOffset <= 0 disables the bound.
func NewClock(phys PhysicalClock, maxOffset time.Duration) *Clock {
	if phys == nil {
		phys = SystemClock
	}
	return &Clock{phys: phys, maxOffset: maxOffset}
}

// MaxOffset returns the bound on remote timestamps (<= 0: none).
func (c *Clock) MaxOffset() time.Duration { return c.maxOffset }

// Physical returns the physical clock's reading in Unix milliseconds.
func (c *Clock) Physical() int64 { return c.phys() }

// Now returns a timestamp for a local event (a send or a write). It is
// strictly greater than every timestamp Now returned before and than every
// timestamp given to Update or Restore, except at the very end of the range:
// once the clock holds the largest Timestamp (wall MaxWall, counter at its
// maximum), which only a disabled bound, a corrupt high-water mark or a broken
// physical clock can lead to, Now keeps returning it rather than wrap
// backwards.
func (c *Clock) Now() Timestamp {
	pt := c.phys()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = next(c.last, pt)
	return c.last
}

// next is the local-event rule of the paper: the wall part is the larger of
// the last wall part and physical time; the counter restarts when the wall
// part moves and increments otherwise. A counter at its maximum advances the
// wall part by one millisecond instead of wrapping; the largest Timestamp
// has no successor, so the clock saturates there (New would clamp the wall
// part and return a smaller timestamp).
func next(last Timestamp, pt int64) Timestamp {
	if pt > MaxWall {
		pt = MaxWall
	}
	if pt > last.Wall() {
		return New(pt, 0)
	}
	if last.Logical() == logicalMask {
		if last.Wall() >= MaxWall {
			return last
		}
		return New(last.Wall()+1, 0)
	}
	return last + 1
}

// Update records a timestamp received from another node, so that every later
// Now is greater than it. If remote is further ahead of local physical time
// than the maximum offset, Update leaves the clock unchanged and returns an
// *OffsetError; the caller must not apply the change that carried it yet.
//
// The paper's receive event, which also stamps the receipt, is Update
// followed by Now; replicad applies whole batches of received writes, so it
// ratchets once per stamp and ticks only for its own events.
func (c *Clock) Update(remote Timestamp) error {
	pt := c.phys()
	if err := c.check(remote, pt); err != nil {
		return err
	}
	c.mu.Lock()
	if remote > c.last {
		c.last = remote
	}
	c.mu.Unlock()
	return nil
}

// Check reports, without changing the clock, whether Update would accept
// remote now.
func (c *Clock) Check(remote Timestamp) error { return c.check(remote, c.phys()) }

func (c *Clock) check(remote Timestamp, pt int64) error {
	if pt < 0 {
		pt = 0
	}
	if c.maxOffset > 0 && remote.Wall()-pt > c.maxOffset.Milliseconds() {
		return &OffsetError{Remote: remote, Physical: pt, MaxOffset: c.maxOffset}
	}
	return nil
}

// HighWater returns the largest timestamp the clock has issued or accepted.
// Persist it (atomically with the writes it stamped) and hand it to Restore
// after a restart.
func (c *Clock) HighWater() Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Restore raises the clock to at least hw, a high-water mark persisted before
// a restart; it never lowers it. It ignores the maximum offset: the stamps
// were this node's own.
func (c *Clock) Restore(hw Timestamp) {
	c.mu.Lock()
	if hw > c.last {
		c.last = hw
	}
	c.mu.Unlock()
}
