// Package ordkey defines the total order of field values that queries
// sort by and its byte encoding, which the store's secondary indexes use
// as keys so that a range scan returns records in query order.
//
// The order, by kind first: absent or null < bool (false < true) <
// number < string < other (lists, maps, anything else). Numbers compare
// by value whatever their type (3 == 3.0); integers beyond 2^53 compare
// by their nearest float64 first, then exactly. Strings compare bytewise
// (UTF-8), so RFC 3339 times in one format and offset sort as times.
// Lists and maps compare by their canonical encoding (bytewise): a total
// order, not a meaningful one.
//
// An encoded value is self-delimiting, so a tuple of them followed by a
// record id sorts as (values..., id), and bytes.Compare of two encodings
// is the order of the values.
package ordkey

import (
	"encoding/binary"
	"math"

	"github.com/replicad/replicad/crdt"
)

// Kind tags, the first byte of an encoded value.
const (
	KindNull   byte = 0x10
	KindBool   byte = 0x20
	KindNumber byte = 0x30
	KindString byte = 0x40
	KindOther  byte = 0x50
	// KindEnd is greater than every encoded value's first byte.
	KindEnd byte = 0x60
)

// Append appends the encoding of a stored field value (nil or empty:
// the field is absent).
func Append(dst []byte, v crdt.Value) []byte {
	if len(v) == 0 {
		return append(dst, KindNull)
	}
	x, err := v.Decode()
	switch x.(type) {
	case []any, map[string]any:
		err = errOther
	}
	if err != nil {
		// Not a scalar: ordered by its (canonical) encoding.
		return appendEscaped(append(dst, KindOther), v)
	}
	return AppendScalar(dst, x)
}

type otherErr struct{}

func (otherErr) Error() string { return "not a scalar" }

var errOther error = otherErr{}

// AppendScalar appends the encoding of a scalar: nil, bool, int64,
// uint64, float64 or string (any other type is encoded as null; callers
// give only these).
func AppendScalar(dst []byte, x any) []byte {
	switch t := x.(type) {
	case bool:
		if t {
			return append(dst, KindBool, 1)
		}
		return append(dst, KindBool, 0)
	case int64:
		dst = append(dst, KindNumber)
		dst = appendFloat(dst, float64(t))
		if f := float64(t); f >= -(1<<53) && f <= 1<<53 {
			return append(dst, 0)
		}
		dst = append(dst, 1)
		return binary.BigEndian.AppendUint64(dst, uint64(t)^1<<63)
	case uint64:
		dst = append(dst, KindNumber)
		dst = appendFloat(dst, float64(t))
		if t <= 1<<53 {
			return append(dst, 0)
		}
		dst = append(dst, 2)
		return binary.BigEndian.AppendUint64(dst, t)
	case float64:
		dst = append(dst, KindNumber)
		dst = appendFloat(dst, t)
		return append(dst, 0)
	case string:
		return appendEscaped(append(dst, KindString), []byte(t))
	}
	return append(dst, KindNull)
}

// appendFloat appends 8 bytes that sort as the float does (NaN first).
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) {
		return binary.BigEndian.AppendUint64(dst, 0)
	}
	if f == 0 {
		f = 0 // -0 == 0
	}
	b := math.Float64bits(f)
	if b&(1<<63) != 0 {
		b = ^b
	} else {
		b |= 1 << 63
	}
	return binary.BigEndian.AppendUint64(dst, b)
}

// appendEscaped appends b with 0x00 written as 0x00 0xff, then the
// terminator 0x00 0x01: a prefix sorts before every longer string.
func appendEscaped(dst, b []byte) []byte {
	for _, c := range b {
		if c == 0 {
			dst = append(dst, 0, 0xff)
			continue
		}
		dst = append(dst, c)
	}
	return append(dst, 0, 1)
}

// Len returns the length of the encoded value at the start of b, or -1
// if b does not start with one.
func Len(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	switch b[0] {
	case KindNull:
		return 1
	case KindBool:
		if len(b) < 2 {
			return -1
		}
		return 2
	case KindNumber:
		if len(b) < 10 {
			return -1
		}
		if b[9] == 0 {
			return 10
		}
		if len(b) < 18 {
			return -1
		}
		return 18
	case KindString, KindOther:
		for i := 1; i+1 < len(b); i++ {
			if b[i] == 0 {
				if b[i+1] == 1 {
					return i + 2
				}
				i++ // escaped 0x00
			}
		}
		return -1
	}
	return -1
}

// TupleLen returns the length of n encoded values at the start of b, or
// -1 if b does not start with n of them.
func TupleLen(b []byte, n int) int {
	off := 0
	for i := 0; i < n; i++ {
		l := Len(b[off:])
		if l < 0 {
			return -1
		}
		off += l
	}
	return off
}

// PrefixEnd returns the smallest key greater than every key starting
// with p (nil if there is none: p is all 0xff).
func PrefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}
