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

// scalarOf decodes v if it is the canonical encoding of a scalar: the Go
// value Decode returns (nil, bool, int64, uint64, float64, string).
func scalarOf(v []byte) (any, bool) {
	if len(v) == 0 {
		return nil, false
	}
	b := v[0]
	switch {
	case b <= 0x7f:
		return int64(b), len(v) == 1
	case b >= 0xe0:
		return int64(int8(b)), len(v) == 1
	case b >= 0xa0 && b <= 0xbf:
		n := int(b & 0x1f)
		if len(v) != 1+n {
			return nil, false
		}
		return string(v[1:]), true
	}
	switch b {
	case 0xc0:
		return nil, len(v) == 1
	case 0xc2:
		return false, len(v) == 1
	case 0xc3:
		return true, len(v) == 1
	case 0xd0:
		if len(v) != 2 {
			return nil, false
		}
		x := int64(int8(v[1]))
		return x, x < -32
	case 0xd1:
		if len(v) != 3 {
			return nil, false
		}
		x := int64(int16(binary.BigEndian.Uint16(v[1:])))
		return x, x < math.MinInt8 || x > math.MaxInt8
	case 0xd2:
		if len(v) != 5 {
			return nil, false
		}
		x := int64(int32(binary.BigEndian.Uint32(v[1:])))
		return x, x < math.MinInt16 || x > math.MaxInt16
	case 0xd3:
		if len(v) != 9 {
			return nil, false
		}
		x := int64(binary.BigEndian.Uint64(v[1:]))
		return x, x < math.MinInt32 || x > math.MaxInt32
	case 0xcf:
		if len(v) != 9 {
			return nil, false
		}
		x := binary.BigEndian.Uint64(v[1:])
		return x, x > math.MaxInt64
	case 0xcb:
		if len(v) != 9 {
			return nil, false
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(v[1:]))
		if math.IsNaN(f) || math.IsInf(f, 0) || f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return nil, false // not what ValueOf makes of any number
		}
		return f, true
	case 0xd9:
		if len(v) < 2 || int(v[1]) < 32 || len(v) != 2+int(v[1]) {
			return nil, false
		}
		return string(v[2:]), true
	case 0xda:
		if len(v) < 3 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint16(v[1:]))
		if n < 256 || len(v) != 3+n {
			return nil, false
		}
		return string(v[3:]), true
	case 0xdb:
		if len(v) < 5 {
			return nil, false
		}
		n := int(binary.BigEndian.Uint32(v[1:]))
		if n < 1<<16 || len(v) != 5+n {
			return nil, false
		}
		return string(v[5:]), true
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
	x, ok := scalarOf(v)
	if !ok {
		return nil, false
	}
	switch x := x.(type) {
	case nil:
		return []byte("null"), true
	case bool:
		if x {
			return []byte("true"), true
		}
		return []byte("false"), true
	case int64:
		return strconv.AppendInt(nil, x, 10), true
	case uint64:
		return strconv.AppendUint(nil, x, 10), true
	}
	b, err := json.Marshal(x) // strings (escaping) and floats (formatting) as the general path does
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
	x, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil {
		return nil, false
	}
	return appendInt(make([]byte, 0, 9), x), true
}
