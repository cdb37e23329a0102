package crdt

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// Fast paths for the scalar values nearly every field holds (strings,
// integers, floats, booleans, null): they read and write the canonical
// msgpack bytes directly instead of going through the codec and Go
// values. Each one answers only for exactly the canonical encodings
// ValueOf produces and leaves everything else (arrays, maps, and any
// non-canonical or unusual encoding) to the general path, so results are
// identical (value_fast_test.go checks them against it).

// Scalar kinds.
const (
	kNone byte = iota
	kNil
	kFalse
	kTrue
	kInt   // int64 at v[off:]: fixint in v[0] when off == 0
	kUint  // uint64 above MaxInt64 at v[1:]
	kFloat // float64 at v[1:]
	kStr   // string bytes at v[off:]
)

// scalarKind reports whether v is exactly the canonical encoding of a
// scalar, of which kind, and where its payload starts.
func scalarKind(v []byte) (kind byte, off int) {
	if len(v) == 0 {
		return kNone, 0
	}
	b := v[0]
	one := func(k byte) (byte, int) {
		if len(v) != 1 {
			return kNone, 0
		}
		return k, 0
	}
	switch {
	case b <= 0x7f || b >= 0xe0:
		return one(kInt)
	case b >= 0xa0 && b <= 0xbf:
		if len(v) != 1+int(b&0x1f) {
			return kNone, 0
		}
		return kStr, 1
	}
	switch b {
	case 0xc0:
		return one(kNil)
	case 0xc2:
		return one(kFalse)
	case 0xc3:
		return one(kTrue)
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (b - 0xd0) // payload bytes
		if len(v) != 1+n {
			return kNone, 0
		}
		x := intAt(v)
		lo, hi := int64(-33), int64(-129) // canonical when outside what fewer bytes hold
		switch n {
		case 1:
			if x < -32 {
				return kInt, 1
			}
			return kNone, 0
		case 2:
			lo, hi = math.MinInt8, math.MaxInt8
		case 4:
			lo, hi = math.MinInt16, math.MaxInt16
		case 8:
			lo, hi = math.MinInt32, math.MaxInt32
		}
		if x < lo || x > hi {
			return kInt, 1
		}
		return kNone, 0
	case 0xcf:
		if len(v) != 9 || binary.BigEndian.Uint64(v[1:]) <= math.MaxInt64 {
			return kNone, 0
		}
		return kUint, 1
	case 0xcb:
		if len(v) != 9 {
			return kNone, 0
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(v[1:]))
		if math.IsNaN(f) || math.IsInf(f, 0) || f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return kNone, 0 // not what ValueOf makes of any number
		}
		return kFloat, 1
	case 0xd9:
		if len(v) < 2 || int(v[1]) < 32 || len(v) != 2+int(v[1]) {
			return kNone, 0
		}
		return kStr, 2
	case 0xda:
		if len(v) < 3 {
			return kNone, 0
		}
		if n := int(binary.BigEndian.Uint16(v[1:])); n < 256 || len(v) != 3+n {
			return kNone, 0
		}
		return kStr, 3
	case 0xdb:
		if len(v) < 5 {
			return kNone, 0
		}
		if n := int(binary.BigEndian.Uint32(v[1:])); n < 1<<16 || len(v) != 5+n {
			return kNone, 0
		}
		return kStr, 5
	}
	return kNone, 0
}

// intAt reads the integer of a canonical kInt encoding.
func intAt(v []byte) int64 {
	switch v[0] {
	case 0xd0:
		return int64(int8(v[1]))
	case 0xd1:
		return int64(int16(binary.BigEndian.Uint16(v[1:])))
	case 0xd2:
		return int64(int32(binary.BigEndian.Uint32(v[1:])))
	case 0xd3:
		return int64(binary.BigEndian.Uint64(v[1:]))
	}
	return int64(int8(v[0])) // fixint: 0x00-0x7f, 0xe0-0xff
}

// scalarOf decodes v if it is the canonical encoding of a scalar: the Go
// value Decode returns (nil, bool, int64, uint64, float64, string).
func scalarOf(v []byte) (any, bool) {
	k, off := scalarKind(v)
	switch k {
	case kNil:
		return nil, true
	case kFalse:
		return false, true
	case kTrue:
		return true, true
	case kInt:
		return intAt(v), true
	case kUint:
		return binary.BigEndian.Uint64(v[1:]), true
	case kFloat:
		return math.Float64frombits(binary.BigEndian.Uint64(v[1:])), true
	case kStr:
		return string(v[off:]), true
	}
	return nil, false
}

// appendInt appends the canonical encoding of an integer.
func appendInt(dst []byte, x int64) []byte {
	switch {
	case x >= 0 && x <= 0x7f, x < 0 && x >= -32:
		return append(dst, byte(x))
	case x >= math.MinInt8 && x <= math.MaxInt8:
		return append(dst, 0xd0, byte(x))
	case x >= math.MinInt16 && x <= math.MaxInt16:
		return binary.BigEndian.AppendUint16(append(dst, 0xd1), uint16(x))
	case x >= math.MinInt32 && x <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(append(dst, 0xd2), uint32(x))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(x))
}

// appendStr appends the canonical encoding of a string.
func appendStr(dst []byte, s []byte) []byte {
	n := len(s)
	switch {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n < 256:
		dst = append(dst, 0xd9, byte(n))
	case n < 1<<16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

// jsonScalar returns the JSON text of a scalar value, if v is one.
func jsonScalar(v []byte) ([]byte, bool) {
	k, off := scalarKind(v)
	switch k {
	case kNone:
		return nil, false
	case kNil:
		return []byte("null"), true
	case kFalse:
		return []byte("false"), true
	case kTrue:
		return []byte("true"), true
	case kInt:
		return strconv.AppendInt(make([]byte, 0, 20), intAt(v), 10), true
	case kUint:
		return strconv.AppendUint(make([]byte, 0, 20), binary.BigEndian.Uint64(v[1:]), 10), true
	case kFloat:
		b, err := json.Marshal(math.Float64frombits(binary.BigEndian.Uint64(v[1:]))) // JSON's float formatting
		return b, err == nil
	}
	b, err := json.Marshal(string(v[off:])) // JSON's escaping (HTML characters, invalid UTF-8)
	return b, err == nil
}

// valueFromJSONScalar encodes a JSON literal that is null, true, false, a
// string without escapes or control characters, or an integer of at most
// 18 digits; ok is false for anything else.
func valueFromJSONScalar(data []byte) (Value, bool) {
	switch string(data) {
	case "null":
		return Value{0xc0}, true
	case "true":
		return Value{0xc3}, true
	case "false":
		return Value{0xc2}, true
	}
	if len(data) >= 2 && data[0] == '"' && data[len(data)-1] == '"' {
		s := data[1 : len(data)-1]
		for _, c := range s {
			if c == '"' || c == '\\' || c < 0x20 {
				return nil, false
			}
		}
		if !utf8.Valid(s) {
			return nil, false
		}
		return appendStr(make([]byte, 0, len(s)+5), s), true
	}
	digits := data
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 18 || len(digits) > 1 && digits[0] == '0' {
		return nil, false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, false
		}
	}
	var x int64 // at most 18 digits: no overflow
	for _, c := range digits {
		x = x*10 + int64(c-'0')
	}
	if len(digits) < len(data) {
		x = -x
	}
	return appendInt(make([]byte, 0, 9), x), true
}
