package crdt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"sync"

	"github.com/ugorji/go/codec"
)

// Value is one field's value: a JSON value held as its canonical msgpack
// encoding. Equal JSON values have equal encodings (object keys are sorted,
// integers take their shortest form), so a Value can be compared, hashed and
// stored as bytes. A Value is atomic: merge never looks inside it.
//
// The nil Value is not a valid value; JSON null is the one-byte encoding 0xc0.
type Value []byte

// Null is the encoding of JSON null.
var Null = Value{0xc0}

// Cleared, as a field's value in a write, clears the field: the write's
// candidate for it is a marker like a delete's, on that field only (the
// policy layer undoes a rejected write that created a field this way). It
// is a msgpack extension, never the encoding of a JSON value, so no API
// input can produce it.
var Cleared = Value{0xd4, 0x7f, 0x00}

// IsCleared reports whether v is Cleared.
func (v Value) IsCleared() bool { return len(v) == 3 && v[0] == 0xd4 && v[1] == 0x7f && v[2] == 0 }

// ValueHandle is the msgpack configuration used for values. It is configured
// once here and must not be changed.
var ValueHandle = newValueHandle()

func newValueHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.WriteExt = true
	h.Canonical = true
	h.RawToString = true
	h.MapType = reflect.TypeOf(map[string]any(nil))
	return h
}

var encPool = sync.Pool{New: func() any {
	var buf []byte
	return &valueEncoder{enc: codec.NewEncoderBytes(&buf, ValueHandle), buf: &buf}
}}

type valueEncoder struct {
	enc *codec.Encoder
	buf *[]byte
}

// ValueFromJSON parses one JSON value and returns its canonical encoding.
// Numbers that are integers within int64 are kept as integers, others as
// float64.
func ValueFromJSON(data []byte) (Value, error) {
	if v, ok := valueFromJSONScalar(data); ok {
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("value is not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("value is not JSON: more than one value")
	}
	return ValueOf(v)
}

// ValueOf encodes a Go value built from JSON types: nil, bool, float64,
// json.Number, integers, string, []any and map[string]any.
func ValueOf(v any) (Value, error) {
	n, err := normalize(v, 0)
	if err != nil {
		return nil, err
	}
	e := encPool.Get().(*valueEncoder)
	*e.buf = (*e.buf)[:0]
	e.enc.ResetBytes(e.buf)
	err = e.enc.Encode(n)
	out := Value(bytes.Clone(*e.buf))
	encPool.Put(e)
	if err != nil {
		return nil, fmt.Errorf("encode value: %w", err)
	}
	return out, nil
}

// MustValue is ValueOf for tests and constants; it panics on error.
func MustValue(v any) Value {
	out, err := ValueOf(v)
	if err != nil {
		panic(err)
	}
	return out
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

func normalize(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("value nested deeper than %d", maxDepth)
	}
	switch x := v.(type) {
	case nil, bool, string, int64, uint64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint32:
		return uint64(x), nil
	case float32:
		return normalize(float64(x), depth)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("value is not a finite number")
		}
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x), nil
		}
		return x, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u, nil
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s out of range", x)
		}
		return normalize(f, depth)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unsupported value type %T", v)
	}
}

// Decode returns the value as Go JSON types (nil, bool, int64, uint64,
// float64, string, []any, map[string]any).
func (v Value) Decode() (any, error) {
	if len(v) == 0 {
		return nil, errors.New("empty value")
	}
	if x, ok := scalarOf(v); ok {
		return x, nil
	}
	var out any
	dec := codec.NewDecoderBytes(v, ValueHandle)
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("decode value: %w", err)
	}
	return fromMsgpack(out, 0)
}

func fromMsgpack(v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("value nested deeper than %d", maxDepth)
	}
	switch x := v.(type) {
	case nil, bool, string, int64, uint64, float64:
		return x, nil
	case float32:
		return float64(x), nil
	case []byte:
		return string(x), nil
	case []any:
		for i, e := range x {
			n, err := fromMsgpack(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
		return x, nil
	case map[string]any:
		for k, e := range x {
			n, err := fromMsgpack(e, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
		return x, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("value has a map key of type %T", k)
			}
			n, err := fromMsgpack(e, depth+1)
			if err != nil {
				return nil, err
			}
			out[ks] = n
		}
		return out, nil
	default:
		return nil, fmt.Errorf("value holds unsupported type %T", v)
	}
}

// JSON returns the value as JSON text.
func (v Value) JSON() ([]byte, error) {
	if b, ok := jsonScalar(v); ok {
		return b, nil
	}
	x, err := v.Decode()
	if err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

// Validate checks that v is one canonical encoding of a JSON value, as a
// receiver must before storing a value that came from the network.
func (v Value) Validate() error {
	if v.IsCleared() {
		return nil
	}
	if k, _ := scalarKind(v); k != kNone {
		return nil // exactly a canonical scalar encoding
	}
	x, err := v.Decode()
	if err != nil {
		return err
	}
	c, err := ValueOf(x)
	if err != nil {
		return err
	}
	if !bytes.Equal(c, v) {
		return errors.New("value is not in canonical form")
	}
	return nil
}

// String returns the JSON text, or a description of why there is none.
func (v Value) String() string {
	j, err := v.JSON()
	if err != nil {
		return fmt.Sprintf("<bad value %x>", []byte(v))
	}
	return string(j)
}

// CompareValues is the deterministic total order on values (bytewise on the
// canonical encoding). Merge uses it only as the last tie-break.
func CompareValues(a, b Value) int { return bytes.Compare(a, b) }
