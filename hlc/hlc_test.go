package hlc_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replicad/replicad/hlc"
)

// fakeClock is a settable physical clock in Unix milliseconds. Its method
// value fc.Now is an hlc.PhysicalClock. It is safe for concurrent use.
type fakeClock struct{ ms atomic.Int64 }

func newFakeClock(ms int64) *fakeClock {
	fc := new(fakeClock)
	fc.ms.Store(ms)
	return fc
}

func (fc *fakeClock) Now() int64       { return fc.ms.Load() }
func (fc *fakeClock) Set(ms int64)     { fc.ms.Store(ms) }
func (fc *fakeClock) Advance(ms int64) { fc.ms.Add(ms) }

// t0 is an arbitrary, realistic physical time (2023-11-14T22:13:20Z).
const t0 = int64(1_700_000_000_000)

func TestNewWallLogical(t *testing.T) {
	tests := []struct {
		name        string
		wall        int64
		logical     uint16
		wantWall    int64
		wantLogical uint16
	}{
		{"zero", 0, 0, 0, 0},
		{"one", 1, 1, 1, 1},
		{"realistic", t0, 42, t0, 42},
		{"max logical", t0, math.MaxUint16, t0, math.MaxUint16},
		{"max wall", hlc.MaxWall, math.MaxUint16, hlc.MaxWall, math.MaxUint16},
		{"negative clamps to 0", -1, 7, 0, 7},
		{"min int64 clamps to 0", math.MinInt64, 0, 0, 0},
		{"above MaxWall clamps", hlc.MaxWall + 1, 3, hlc.MaxWall, 3},
		{"max int64 clamps", math.MaxInt64, 0, hlc.MaxWall, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := hlc.New(tt.wall, tt.logical)
			if got := ts.Wall(); got != tt.wantWall {
				t.Errorf("New(%d, %d).Wall() = %d, want %d", tt.wall, tt.logical, got, tt.wantWall)
			}
			if got := ts.Logical(); got != tt.wantLogical {
				t.Errorf("New(%d, %d).Logical() = %d, want %d", tt.wall, tt.logical, got, tt.wantLogical)
			}
			if got, want := uint64(ts), uint64(tt.wantWall)<<16|uint64(tt.wantLogical); got != want {
				t.Errorf("uint64(New(%d, %d)) = %#x, want %#x", tt.wall, tt.logical, got, want)
			}
		})
	}
}

func TestTimestampOrderAndTime(t *testing.T) {
	// The uint64 order is (wall, logical) order.
	ordered := []hlc.Timestamp{
		0,
		hlc.New(0, 1),
		hlc.New(0, math.MaxUint16),
		hlc.New(1, 0),
		hlc.New(t0, 0),
		hlc.New(t0, 1),
		hlc.New(t0, math.MaxUint16),
		hlc.New(t0+1, 0),
		hlc.New(hlc.MaxWall, 0),
		hlc.New(hlc.MaxWall, math.MaxUint16),
	}
	for i := 1; i < len(ordered); i++ {
		if !(ordered[i-1] < ordered[i]) {
			t.Errorf("%v < %v = false, want true", ordered[i-1], ordered[i])
		}
	}
	if got, want := hlc.Timestamp(math.MaxUint64), hlc.New(hlc.MaxWall, math.MaxUint16); got != want {
		t.Errorf("largest Timestamp = %v, want %v", got, want)
	}

	ts := hlc.New(t0+123, 9)
	got := ts.Time()
	if want := time.UnixMilli(t0 + 123).UTC(); !got.Equal(want) {
		t.Errorf("%v.Time() = %v, want %v", ts, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%v.Time().Location() = %v, want UTC", ts, got.Location())
	}
}

func TestTimestampStringRoundTrip(t *testing.T) {
	tests := []struct {
		ts   hlc.Timestamp
		want string
	}{
		{0, "0.0"},
		{hlc.New(0, 1), "0.1"},
		{hlc.New(1, 0), "1.0"},
		{hlc.New(t0, 42), "1700000000000.42"},
		{hlc.New(t0, math.MaxUint16), "1700000000000.65535"},
		{hlc.New(hlc.MaxWall, 0), "281474976710655.0"},
		{hlc.Timestamp(math.MaxUint64), "281474976710655.65535"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.ts.String(); got != tt.want {
				t.Errorf("Timestamp(%#x).String() = %q, want %q", uint64(tt.ts), got, tt.want)
			}
			got, err := hlc.ParseTimestamp(tt.want)
			if err != nil {
				t.Fatalf("ParseTimestamp(%q) error = %v, want nil", tt.want, err)
			}
			if got != tt.ts {
				t.Errorf("ParseTimestamp(%q) = %#x, want %#x", tt.want, uint64(got), uint64(tt.ts))
			}
		})
	}
}

func TestParseTimestampRejects(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"dot only", "."},
		{"no dot", "1700000000000"},
		{"no logical", "1."},
		{"no wall", ".1"},
		{"two dots", "1.2.3"},
		{"non-digit wall", "a.0"},
		{"non-digit logical", "0.a"},
		{"negative wall", "-1.0"},
		{"negative logical", "1.-1"},
		{"signed logical", "1.+1"},
		{"logical overflow", "1.65536"},
		{"wall above MaxWall", "281474976710656.0"},
		{"wall overflows int64", "9223372036854775808.0"},
		{"leading space", " 1.0"},
		{"trailing space", "1.0 "},
		{"comma", "1,0"},
		{"hex wall", "0x1.0"},
		{"exponent", "1e3.0"},
		{"stamp form", "1.0@0000000000000001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hlc.ParseTimestamp(tt.in)
			if err == nil {
				t.Fatalf("ParseTimestamp(%q) = %v, nil; want an error", tt.in, got)
			}
			if got != 0 {
				t.Errorf("ParseTimestamp(%q) = %v with error, want 0", tt.in, got)
			}
			if !strings.HasPrefix(err.Error(), "hlc: ") {
				t.Errorf("ParseTimestamp(%q) error = %q, want prefix %q", tt.in, err, "hlc: ")
			}
		})
	}
}

func TestNodeIDStringRoundTrip(t *testing.T) {
	tests := []struct {
		id   hlc.NodeID
		want string
	}{
		{1, "0000000000000001"},
		{0xabc, "0000000000000abc"},
		{0x0123456789abcdef, "0123456789abcdef"},
		{0xfedcba9876543210, "fedcba9876543210"},
		{math.MaxUint64, "ffffffffffffffff"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.id.String(); got != tt.want {
				t.Errorf("NodeID(%#x).String() = %q, want %q", uint64(tt.id), got, tt.want)
			}
			got, err := hlc.ParseNodeID(tt.want)
			if err != nil {
				t.Fatalf("ParseNodeID(%q) error = %v, want nil", tt.want, err)
			}
			if got != tt.id {
				t.Errorf("ParseNodeID(%q) = %#x, want %#x", tt.want, uint64(got), uint64(tt.id))
			}
		})
	}
}

func TestParseNodeIDAccepts(t *testing.T) {
	// 1 to 16 hex digits, any case, leading zeros allowed.
	tests := []struct {
		in   string
		want hlc.NodeID
	}{
		{"1", 1},
		{"f", 0xf},
		{"00ff", 0xff},
		{"ABCDEF", 0xabcdef},
		{"0000000000000001", 1},
		{"FFFFFFFFFFFFFFFF", math.MaxUint64},
	}
	for _, tt := range tests {
		got, err := hlc.ParseNodeID(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseNodeID(%q) = %#x, %v; want %#x, nil", tt.in, uint64(got), err, uint64(tt.want))
		}
	}
}

func TestParseNodeIDRejects(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"empty", ""},
		{"zero", "0"},
		{"zero padded", "0000000000000000"},
		{"17 digits", "00000000000000001"},
		{"17 digits overflow", "1ffffffffffffffff"},
		{"non-hex", "g"},
		{"non-hex tail", "12345z"},
		{"0x prefix", "0x1"},
		{"minus", "-1"},
		{"plus", "+1"},
		{"underscore", "1_0"},
		{"leading space", " 1"},
		{"trailing space", "1 "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := hlc.ParseNodeID(tt.in)
			if err == nil {
				t.Fatalf("ParseNodeID(%q) = %v, nil; want an error", tt.in, got)
			}
			if got != 0 {
				t.Errorf("ParseNodeID(%q) = %v with error, want 0", tt.in, got)
			}
		})
	}
}

// sortedStamps is in strictly increasing stamp order.
var sortedStamps = []hlc.Stamp{
	{TS: 0, Node: 0},
	{TS: 0, Node: 1},
	{TS: 0, Node: math.MaxUint64},
	{TS: hlc.New(0, 1), Node: 1},
	{TS: hlc.New(5, 1), Node: 1},
	{TS: hlc.New(5, 1), Node: 2}, // node breaks the tie
	{TS: hlc.New(5, 1), Node: 0x100},
	{TS: hlc.New(5, 2), Node: 1}, // the timestamp dominates the node
	{TS: hlc.New(5, math.MaxUint16), Node: math.MaxUint64},
	{TS: hlc.New(6, 0), Node: 1},
	{TS: hlc.New(t0, 0), Node: 0xff},
	{TS: hlc.New(t0, 0), Node: 0x100}, // big-endian, not byte-wise little
	{TS: hlc.New(hlc.MaxWall, math.MaxUint16), Node: math.MaxUint64 - 1},
	{TS: hlc.New(hlc.MaxWall, math.MaxUint16), Node: math.MaxUint64},
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

func TestStampCompareTotalOrder(t *testing.T) {
	for i, a := range sortedStamps {
		for j, b := range sortedStamps {
			want := sign(i - j)
			if got := a.Compare(b); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", a, b, got, want)
			}
			if got := a.Less(b); got != (want < 0) {
				t.Errorf("%v.Less(%v) = %t, want %t", a, b, got, want < 0)
			}
		}
	}
}

func TestStampString(t *testing.T) {
	s := hlc.Stamp{TS: hlc.New(t0, 3), Node: 0xbeef}
	if got, want := s.String(), "1700000000000.3@000000000000beef"; got != want {
		t.Errorf("Stamp.String() = %q, want %q", got, want)
	}
}

func TestTimestampAppendKey(t *testing.T) {
	prefix := []byte("pre")
	ts := hlc.Timestamp(0x0102030405060708)
	got := ts.AppendKey(append([]byte(nil), prefix...))
	want := append(append([]byte(nil), prefix...), 1, 2, 3, 4, 5, 6, 7, 8)
	if !bytes.Equal(got, want) {
		t.Errorf("AppendKey = %x, want %x", got, want)
	}
}

func TestStampKeyRoundTrip(t *testing.T) {
	for _, s := range sortedStamps {
		key := s.AppendKey(nil)
		if len(key) != hlc.StampKeyLen {
			t.Fatalf("len(%v.AppendKey(nil)) = %d, want %d", s, len(key), hlc.StampKeyLen)
		}
		got, err := hlc.DecodeStampKey(key)
		if err != nil {
			t.Fatalf("DecodeStampKey(%x) error = %v, want nil", key, err)
		}
		if got != s {
			t.Errorf("DecodeStampKey(%v.AppendKey(nil)) = %v, want %v", s, got, s)
		}
		// Appending keeps the prefix.
		withPrefix := s.AppendKey([]byte{0xaa})
		if withPrefix[0] != 0xaa || !bytes.Equal(withPrefix[1:], key) {
			t.Errorf("%v.AppendKey([aa]) = %x, want aa%x", s, withPrefix, key)
		}
	}
	want := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if got := (hlc.Stamp{TS: 0x0102030405060708, Node: 0x090a0b0c0d0e0f10}).AppendKey(nil); !bytes.Equal(got, want) {
		t.Errorf("AppendKey = %x, want %x", got, want)
	}
}

func TestStampKeyOrder(t *testing.T) {
	for i, a := range sortedStamps {
		for j, b := range sortedStamps {
			if got, want := bytes.Compare(a.AppendKey(nil), b.AppendKey(nil)), sign(i-j); got != want {
				t.Errorf("bytes.Compare(key(%v), key(%v)) = %d, want %d", a, b, got, want)
			}
		}
	}
}

func TestDecodeStampKeyWrongLength(t *testing.T) {
	for _, n := range []int{0, 1, 8, 15, 17, 24, 32} {
		got, err := hlc.DecodeStampKey(make([]byte, n))
		if err == nil {
			t.Errorf("DecodeStampKey(%d bytes) = %v, nil; want an error", n, got)
			continue
		}
		if got != (hlc.Stamp{}) {
			t.Errorf("DecodeStampKey(%d bytes) = %v with error, want the zero Stamp", n, got)
		}
	}
}

func TestNewClockDefaults(t *testing.T) {
	c := hlc.NewClock(nil, hlc.DefaultMaxOffset)
	if got, want := c.MaxOffset(), hlc.DefaultMaxOffset; got != want {
		t.Errorf("MaxOffset() = %v, want %v", got, want)
	}
	before := time.Now().UnixMilli()
	pt := c.Physical()
	after := time.Now().UnixMilli()
	if pt < before || pt > after {
		t.Errorf("Physical() with a nil clock = %d, want the system clock in [%d, %d]", pt, before, after)
	}
	if got := c.HighWater(); got != 0 {
		t.Errorf("HighWater() of a new clock = %v, want 0", got)
	}
	if ts := c.Now(); ts.Wall() < before {
		t.Errorf("Now() = %v, want wall >= %d", ts, before)
	}
}

func TestClockNowStrictlyIncreasing(t *testing.T) {
	fc := newFakeClock(t0)
	c := hlc.NewClock(fc.Now, hlc.DefaultMaxOffset)
	// Each step advances the physical clock, then calls Now.
	steps := []struct {
		advance int64
		want    hlc.Timestamp
	}{
		{0, hlc.New(t0, 0)},
		{0, hlc.New(t0, 1)},
		{0, hlc.New(t0, 2)},
		{1, hlc.New(t0+1, 0)}, // physical time moved: counter restarts
		{0, hlc.New(t0+1, 1)},
		{5, hlc.New(t0+6, 0)},
		{1000, hlc.New(t0+1006, 0)},
		{0, hlc.New(t0+1006, 1)},
	}
	var last hlc.Timestamp
	for i, st := range steps {
		fc.Advance(st.advance)
		got := c.Now()
		if got != st.want {
			t.Errorf("step %d: Now() = %v, want %v", i, got, st.want)
		}
		if got <= last {
			t.Errorf("step %d: Now() = %v, want > previous %v", i, got, last)
		}
		if hw := c.HighWater(); hw != got {
			t.Errorf("step %d: HighWater() = %v, want the last Now %v", i, hw, got)
		}
		last = got
	}
}

func TestClockBackwardJump(t *testing.T) {
	fc := newFakeClock(t0)
	c := hlc.NewClock(fc.Now, hlc.DefaultMaxOffset)
	last := c.Now()
	top := last.Wall()
	for _, pt := range []int64{t0 - 1, t0 - 5_000, 0, -1, t0 - 3_600_000} {
		fc.Set(pt)
		for range 3 {
			got := c.Now()
			if got <= last {
				t.Fatalf("physical %d: Now() = %v, want > %v", pt, got, last)
			}
			if got.Wall() != top {
				t.Fatalf("physical %d: Now().Wall() = %d, want %d (wall must not go back)", pt, got.Wall(), top)
			}
			last = got
		}
	}
	// Back at the old time: still ticking the counter.
	fc.Set(t0)
	if got, want := c.Now(), last+1; got != want {
		t.Errorf("physical back at %d: Now() = %v, want %v", t0, got, want)
	}
	// Past it: the wall part follows physical time again.
	fc.Set(t0 + 1)
	if got, want := c.Now(), hlc.New(t0+1, 0); got != want {
		t.Errorf("physical past the old time: Now() = %v, want %v", got, want)
	}
}

func TestClockCounterOverflow(t *testing.T) {
	const n = 70_000
	fc := newFakeClock(t0)
	c := hlc.NewClock(fc.Now, hlc.DefaultMaxOffset)
	var last hlc.Timestamp
	for i := range n {
		got := c.Now()
		// 65,536 stamps per millisecond, then the wall part moves by one.
		want := hlc.New(t0+int64(i/65536), uint16(i%65536))
		if got != want {
			t.Fatalf("call %d at frozen physical time: Now() = %v, want %v", i, got, want)
		}
		if got <= last {
			t.Fatalf("call %d: Now() = %v, want > %v (counter wrapped)", i, got, last)
		}
		last = got
	}
	// Physical time catching up with the pushed wall part does not reset it.
	fc.Set(t0 + 1)
	if got, want := c.Now(), last+1; got != want {
		t.Errorf("physical at pushed wall: Now() = %v, want %v", got, want)
	}
	fc.Set(t0 + 2)
	if got, want := c.Now(), hlc.New(t0+2, 0); got != want {
		t.Errorf("physical past pushed wall: Now() = %v, want %v", got, want)
	}
}

func TestClockOverflowAfterUpdate(t *testing.T) {
	// A remote stamp with a full counter pushes the wall part on the next Now.
	fc := newFakeClock(t0)
	c := hlc.NewClock(fc.Now, hlc.DefaultMaxOffset)
	remote := hlc.New(t0+10, math.MaxUint16)
	if err := c.Update(remote); err != nil {
		t.Fatalf("Update(%v) error = %v, want nil", remote, err)
	}
	if got, want := c.Now(), hlc.New(t0+11, 0); got != want {
		t.Errorf("Now() after Update(%v) = %v, want %v", remote, got, want)
	}
}

func TestClockSaturatesAtEndOfRange(t *testing.T) {
	// Only reachable with the bound disabled (or a corrupt high-water mark),
	// but the clock must still never go backwards.
	top := hlc.Timestamp(math.MaxUint64)
	tests := []struct {
		name  string
		setup func(c *hlc.Clock) error
	}{
		{"update to max", func(c *hlc.Clock) error { return c.Update(top) }},
		{"restore to max", func(c *hlc.Clock) error { c.Restore(top); return nil }},
		{"restore just below max", func(c *hlc.Clock) error { c.Restore(top - 2); return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeClock(t0)
			c := hlc.NewClock(fc.Now, 0)
			if err := tt.setup(c); err != nil {
				t.Fatalf("setup error = %v, want nil", err)
			}
			last := c.HighWater()
			for i := range 5 {
				got := c.Now()
				if got < last {
					t.Fatalf("Now() #%d = %v, want >= %v (the clock went backwards)", i, got, last)
				}
				last = got
			}
			if got := c.HighWater(); got != top {
				t.Errorf("HighWater() = %v, want %v", got, top)
			}
			// A physical clock beyond MaxWall does not move it either.
			fc.Set(math.MaxInt64)
			if got := c.Now(); got != top {
				t.Errorf("Now() with physical time beyond MaxWall = %v, want %v", got, top)
			}
		})
	}
}

func TestClockUpdateBeyondMaxOffset(t *testing.T) {
	pt := t0
	tests := []struct {
		name      string
		maxOffset time.Duration
		remote    hlc.Timestamp
		wantAhead time.Duration
	}{
		{"default bound +1ms", hlc.DefaultMaxOffset, hlc.New(pt+60_001, 0), 60_001 * time.Millisecond},
		{"default bound far future", hlc.DefaultMaxOffset, hlc.New(pt+365*24*3_600_000, 5), 365 * 24 * time.Hour},
		{"default bound max", hlc.DefaultMaxOffset, hlc.Timestamp(math.MaxUint64), time.Duration(hlc.MaxWall-pt) * time.Millisecond},
		{"500ms bound", 500 * time.Millisecond, hlc.New(pt+501, 0), 501 * time.Millisecond},
		{"1ms bound", time.Millisecond, hlc.New(pt+2, 0), 2 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeClock(pt)
			c := hlc.NewClock(fc.Now, tt.maxOffset)
			c.Now()
			c.Now()
			hw := c.HighWater()

			for _, op := range []struct {
				name string
				f    func(hlc.Timestamp) error
			}{{"Check", c.Check}, {"Update", c.Update}} {
				err := op.f(tt.remote)
				if err == nil {
					t.Fatalf("%s(%v) at physical %d = nil, want an error", op.name, tt.remote, pt)
				}
				if !errors.Is(err, hlc.ErrClockOffset) {
					t.Errorf("errors.Is(%s error %v, ErrClockOffset) = false, want true", op.name, err)
				}
				var oe *hlc.OffsetError
				if !errors.As(err, &oe) {
					t.Fatalf("%s error %T is not an *OffsetError", op.name, err)
				}
				if oe.Remote != tt.remote {
					t.Errorf("%s: OffsetError.Remote = %v, want %v", op.name, oe.Remote, tt.remote)
				}
				if oe.Physical != pt {
					t.Errorf("%s: OffsetError.Physical = %d, want %d", op.name, oe.Physical, pt)
				}
				if oe.MaxOffset != tt.maxOffset {
					t.Errorf("%s: OffsetError.MaxOffset = %v, want %v", op.name, oe.MaxOffset, tt.maxOffset)
				}
				if got := oe.Ahead(); got != tt.wantAhead {
					t.Errorf("%s: OffsetError.Ahead() = %v, want %v", op.name, got, tt.wantAhead)
				}
				msg := err.Error()
				for _, part := range []string{tt.remote.String(), tt.wantAhead.String(), tt.maxOffset.String()} {
					if !strings.Contains(msg, part) {
						t.Errorf("%s error %q does not mention %q", op.name, msg, part)
					}
				}
				if got := c.HighWater(); got != hw {
					t.Errorf("HighWater() after refused %s = %v, want unchanged %v", op.name, got, hw)
				}
			}
			// The refused stamp left no trace: Now continues from hw.
			if got, want := c.Now(), hw+1; got != want {
				t.Errorf("Now() after refused Update = %v, want %v", got, want)
			}
			// A wrapped ErrClockOffset still matches.
			wrapped := errors.Join(errors.New("parking change"), c.Update(tt.remote))
			if !errors.Is(wrapped, hlc.ErrClockOffset) {
				t.Errorf("errors.Is(wrapped %v, ErrClockOffset) = false, want true", wrapped)
			}
		})
	}
	if errors.Is(errors.New("other"), hlc.ErrClockOffset) {
		t.Error("an unrelated error matches ErrClockOffset")
	}
}

func TestClockUpdateWithinBound(t *testing.T) {
	pt := t0
	tests := []struct {
		name      string
		maxOffset time.Duration
		remote    hlc.Timestamp
	}{
		{"zero", hlc.DefaultMaxOffset, 0},
		{"far behind", hlc.DefaultMaxOffset, hlc.New(pt-3_600_000, 9)},
		{"equal to local", hlc.DefaultMaxOffset, hlc.New(pt, 1)},
		{"just ahead of local", hlc.DefaultMaxOffset, hlc.New(pt, 2)},
		{"1ms ahead", hlc.DefaultMaxOffset, hlc.New(pt+1, 0)},
		{"exactly at bound", hlc.DefaultMaxOffset, hlc.New(pt+60_000, 0)},
		{"at bound, counter full", hlc.DefaultMaxOffset, hlc.New(pt+60_000, math.MaxUint16)},
		{"500ms bound, at bound", 500 * time.Millisecond, hlc.New(pt+500, 7)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fc := newFakeClock(pt)
			c := hlc.NewClock(fc.Now, tt.maxOffset)
			c.Now()
			prev := c.Now() // pt.1
			if err := c.Check(tt.remote); err != nil {
				t.Errorf("Check(%v) at physical %d = %v, want nil", tt.remote, pt, err)
			}
			if err := c.Update(tt.remote); err != nil {
				t.Fatalf("Update(%v) at physical %d = %v, want nil", tt.remote, pt, err)
			}
			wantHW := max(prev, tt.remote)
			if got := c.HighWater(); got != wantHW {
				t.Errorf("HighWater() after Update(%v) = %v, want %v", tt.remote, got, wantHW)
			}
			got := c.Now()
			if got <= tt.remote || got <= prev {
				t.Errorf("Now() after Update(%v) = %v, want > %v and > %v", tt.remote, got, tt.remote, prev)
			}
		})
	}
}

func TestClockNoMaxOffset(t *testing.T) {
	for _, maxOffset := range []time.Duration{0, -1, -time.Hour} {
		fc := newFakeClock(t0)
		c := hlc.NewClock(fc.Now, maxOffset)
		if got := c.MaxOffset(); got != maxOffset {
			t.Errorf("MaxOffset() = %v, want %v", got, maxOffset)
		}
		remote := hlc.New(t0+10*365*24*3_600_000, 3) // ten years ahead
		if err := c.Check(remote); err != nil {
			t.Errorf("maxOffset %v: Check(%v) = %v, want nil", maxOffset, remote, err)
		}
		if err := c.Update(remote); err != nil {
			t.Errorf("maxOffset %v: Update(%v) = %v, want nil", maxOffset, remote, err)
		}
		if got, want := c.Now(), remote+1; got != want {
			t.Errorf("maxOffset %v: Now() after Update(%v) = %v, want %v", maxOffset, remote, got, want)
		}
	}
}

func TestClockRestore(t *testing.T) {
	fc := newFakeClock(t0)
	c := hlc.NewClock(fc.Now, hlc.DefaultMaxOffset)
	c.Now()

	// Raises, ignoring the offset bound: the stamps were this node's own.
	hw := hlc.New(t0+24*3_600_000, 17)
	c.Restore(hw)
	if got := c.HighWater(); got != hw {
		t.Errorf("HighWater() after Restore(%v) = %v, want %v", hw, got, hw)
	}
	// Never lowers.
	for _, lower := range []hlc.Timestamp{0, hlc.New(t0, 0), hw - 1, hw} {
		c.Restore(lower)
		if got := c.HighWater(); got != hw {
			t.Errorf("HighWater() after Restore(%v) = %v, want unchanged %v", lower, got, hw)
		}
	}
	if got, want := c.Now(), hw+1; got != want {
		t.Errorf("Now() after Restore(%v) = %v, want %v", hw, got, want)
	}
}

func TestClockRestart(t *testing.T) {
	fc := newFakeClock(t0)
	old := hlc.NewClock(fc.Now, hlc.DefaultMaxOffset)
	var maxOld hlc.Timestamp
	for i := range 1000 {
		if i%100 == 0 {
			fc.Advance(1)
		}
		if i == 500 {
			// A remote stamp within the bound drags the clock ahead of physical time.
			if err := old.Update(hlc.New(fc.Now()+30_000, 40)); err != nil {
				t.Fatalf("Update within bound: %v", err)
			}
		}
		maxOld = max(maxOld, old.Now())
	}
	hw := old.HighWater()
	if hw != maxOld {
		t.Fatalf("old HighWater() = %v, want the largest stamp issued %v", hw, maxOld)
	}

	// The process restarts and the physical clock has gone back an hour.
	fc2 := newFakeClock(t0 - 3_600_000)
	restarted := hlc.NewClock(fc2.Now, hlc.DefaultMaxOffset)
	restarted.Restore(hw)
	last := hw
	for i := range 1000 {
		got := restarted.Now()
		if got <= last {
			t.Fatalf("restarted Now() #%d = %v, want > %v (old clock issued up to %v)", i, got, last, maxOld)
		}
		last = got
	}
}

func TestClockConcurrent(t *testing.T) {
	const (
		goroutines = 8
		perG       = 2000
	)
	fc := newFakeClock(t0)
	// The physical clock moves back by at most 286*20 ms in all, well within
	// the bound, so no Update is refused.
	c := hlc.NewClock(fc.Now, hlc.DefaultMaxOffset)
	var published atomic.Uint64 // the latest stamp any goroutine issued
	stamps := make([][]hlc.Timestamp, goroutines)
	errs := make(chan string, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]hlc.Timestamp, 0, perG)
			for i := range perG {
				switch i % 7 {
				case 0:
					fc.Advance(1)
				case 3:
					if g == 0 {
						fc.Advance(-20) // backward jumps, too
					}
				}
				var remote hlc.Timestamp
				switch i % 5 {
				case 1:
					remote = hlc.Timestamp(published.Load())
				case 2:
					remote = hlc.New(fc.Now()+500, uint16(i))
				}
				if remote != 0 {
					if err := c.Update(remote); err != nil {
						errs <- "Update(" + remote.String() + "): " + err.Error()
						return
					}
				}
				ts := c.Now()
				if remote != 0 && ts <= remote {
					errs <- "Now() = " + ts.String() + " after Update(" + remote.String() + "), want greater"
					return
				}
				if n := len(mine); n > 0 && ts <= mine[n-1] {
					errs <- "Now() = " + ts.String() + " after " + mine[n-1].String() + " in the same goroutine, want greater"
					return
				}
				mine = append(mine, ts)
				published.Store(uint64(ts))
			}
			stamps[g] = mine
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		return
	}
	seen := make(map[hlc.Timestamp]int, goroutines*perG)
	for g, mine := range stamps {
		if len(mine) != perG {
			t.Fatalf("goroutine %d issued %d stamps, want %d", g, len(mine), perG)
		}
		for _, ts := range mine {
			if other, dup := seen[ts]; dup {
				t.Fatalf("stamp %v issued to goroutines %d and %d, want unique", ts, other, g)
			}
			seen[ts] = g
		}
	}
	var maxIssued hlc.Timestamp
	for ts := range seen {
		maxIssued = max(maxIssued, ts)
	}
	if got := c.HighWater(); got < maxIssued {
		t.Errorf("HighWater() = %v, want >= every issued stamp (max %v)", got, maxIssued)
	}
}

func TestParseTimestampRejectsNonCanonical(t *testing.T) {
	for _, s := range []string{"+1.0", "-0.5", "01.00", "1.01", "1.", ".1", "1.+2"} {
		if ts, err := hlc.ParseTimestamp(s); err == nil {
			t.Errorf("ParseTimestamp(%q) = %v, want an error", s, ts)
		}
	}
}
