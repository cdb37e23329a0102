package crdt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/ugorji/go/codec"
)

// The general paths the fast ones must agree with.

func slowDecode(v Value) (any, error) {
	if len(v) == 0 {
		return nil, errors.New("empty value")
	}
	var out any
	if err := codec.NewDecoderBytes(v, ValueHandle).Decode(&out); err != nil {
		return nil, err
	}
	return fromMsgpack(out, 0)
}

func slowValidate(v Value) error {
	x, err := slowDecode(v)
	if err != nil {
		return err
	}
	c, err := ValueOf(x)
	if err != nil {
		return err
	}
	if !bytes.Equal(c, v) {
		return errors.New("not canonical")
	}
	return nil
}

func slowFromJSON(data []byte) (Value, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("more")
	}
	return ValueOf(v)
}

// checkBytes: for any bytes, the fast paths agree with the general ones.
func checkBytes(t *testing.T, v Value) {
	t.Helper()
	if x, ok := scalarOf(v); ok {
		y, err := slowDecode(v)
		if err != nil || !reflect.DeepEqual(x, y) {
			t.Fatalf("% x: fast decode %#v, general %#v (%v)", []byte(v), x, y, err)
		}
		if err := slowValidate(v); err != nil {
			t.Fatalf("% x: fast path takes it as canonical; general: %v", []byte(v), err)
		}
		j, ok := jsonScalar(v)
		sj, err := json.Marshal(y)
		if !ok || err != nil || !bytes.Equal(j, sj) {
			t.Fatalf("% x: fast JSON %s, general %s (%v)", []byte(v), j, sj, err)
		}
	}
	if (v.Validate() == nil) != (slowValidate(v) == nil) {
		t.Fatalf("% x: Validate %v, general %v", []byte(v), v.Validate(), slowValidate(v))
	}
}

func randScalar(rng *rand.Rand) any {
	switch rng.IntN(9) {
	case 0:
		return nil
	case 1:
		return rng.IntN(2) == 0
	case 2:
		return int64(rng.IntN(300)) - 150
	case 3:
		return rng.Int64() >> rng.IntN(64) * []int64{1, -1}[rng.IntN(2)]
	case 4:
		return uint64(math.MaxInt64) + 1 + rng.Uint64N(1<<62)
	case 5:
		return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(40)-20))
	case 6:
		return float64(rng.IntN(1000)) // integral: ValueOf makes it an integer
	default:
		n := []int{0, 1, 5, 31, 32, 33, 255, 256, 257, 70000}[rng.IntN(10)]
		var sb strings.Builder
		for sb.Len() < n {
			switch rng.IntN(8) {
			case 0:
				sb.WriteRune(rune(rng.IntN(0x20))) // control characters
			case 1:
				sb.WriteString(`"\<>&`)
			case 2:
				sb.WriteRune(rune(0x80 + rng.IntN(0x10000)))
			case 3:
				sb.WriteByte(byte(0x80 + rng.IntN(0x80))) // invalid UTF-8
			default:
				sb.WriteByte(byte('a' + rng.IntN(26)))
			}
		}
		return sb.String()[:n]
	}
}

// TestValueFastPaths: canonical encodings of random scalars, random byte
// strings, and JSON literals of every kind: decoding, validation, JSON
// text and parsing give what the general paths give. Replay with the
// printed seed.
func TestValueFastPaths(t *testing.T) {
	seed := rand.Uint64()
	defer func() {
		if t.Failed() {
			t.Logf("seed %d", seed)
		}
	}()
	rng := rand.New(rand.NewPCG(seed, 7))
	for range 5000 {
		x := randScalar(rng)
		v, err := ValueOf(x)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := scalarOf(v); !ok {
			t.Fatalf("%#v: canonical % x not taken by the fast path", x, []byte(v))
		}
		if i, ok := x.(int64); ok && !bytes.Equal(appendInt(nil, i), v) {
			t.Fatalf("%d: appendInt % x, ValueOf % x", i, appendInt(nil, i), []byte(v))
		}
		checkBytes(t, v)
		// Near misses: a byte changed, dropped or added.
		w := bytes.Clone(v)
		w[rng.IntN(len(w))] ^= byte(1 + rng.IntN(255))
		checkBytes(t, w)
		checkBytes(t, v[:len(v)-1])
		checkBytes(t, append(bytes.Clone(v), byte(rng.IntN(256))))
	}
	for range 5000 {
		b := make([]byte, 1+rng.IntN(10))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		checkBytes(t, b)
	}
	// Non-minimal encodings of small numbers and strings.
	for _, b := range [][]byte{{0xd0, 0x05}, {0xd1, 0x00, 0x05}, {0xd3, 0, 0, 0, 0, 0, 0, 0, 5}, {0xcc, 0x05}, {0xcf, 0, 0, 0, 0, 0, 0, 0, 5},
		{0xd9, 0x01, 'a'}, {0xda, 0x00, 0x01, 'a'}, {0xcb, 0x40, 0x08, 0, 0, 0, 0, 0, 0}, {0xca, 0x3f, 0xc0, 0, 0}} {
		checkBytes(t, b)
		if (Value(b)).Validate() == nil {
			t.Errorf("% x: a non-canonical encoding validated", b)
		}
	}
	// JSON literals.
	lits := []string{"null", "true", "false", "0", "-0", "7", "-7", "127", "128", "-33", "123456789012345678", "-123456789012345678",
		"1234567890123456789", "9223372036854775807", "9223372036854775808", "18446744073709551615", "1.5", "1e3", "-0.0", "00", "01", "+1", "1.",
		`""`, `"abc"`, `"a\"b"`, `"\u00e9"`, `"é"`, "\"tab\there\"", `"<&>"`, `"` + strings.Repeat("x", 300) + `"`, " 1", "1 ", `"a"x`, `"`, "", "[1]", `{"a":1}`, "nul"}
	for range 2000 {
		x := randScalar(rng)
		j, err := json.Marshal(x)
		if err == nil {
			lits = append(lits, string(j))
		}
		if s, ok := x.(string); ok {
			lits = append(lits, `"`+s+`"`)
		}
	}
	for _, l := range lits {
		fast, fok := valueFromJSONScalar([]byte(l))
		slow, err := slowFromJSON([]byte(l))
		if fok && (err != nil || !bytes.Equal(fast, slow)) {
			t.Fatalf("%q: fast % x, general % x (%v)", l, []byte(fast), []byte(slow), err)
		}
		got, gerr := ValueFromJSON([]byte(l))
		if (gerr == nil) != (err == nil) || !bytes.Equal(got, slow) {
			t.Fatalf("%q: ValueFromJSON % x (%v), general % x (%v)", l, []byte(got), gerr, []byte(slow), err)
		}
	}
}

// FuzzValueFast checks the fast paths against the general ones on any
// bytes and any JSON text.
func FuzzValueFast(f *testing.F) {
	for _, s := range []string{"\x05", "\xd0\xdf", "\xa3abc", "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00", "null", `"x"`, "-12", "1.5"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkBytes(t, b)
		fast, fok := valueFromJSONScalar(b)
		slow, err := slowFromJSON(b)
		if fok && (err != nil || !bytes.Equal(fast, slow)) {
			t.Fatalf("%q: fast % x, general % x (%v)", b, []byte(fast), []byte(slow), err)
		}
	})
}

// BenchmarkValueJSON is a field's value rendered for the API.
func BenchmarkValueJSON(b *testing.B) {
	for _, x := range []any{"a value of some thirty bytes 01", int64(42), 3.25} {
		v := MustValue(x)
		b.Run(fmt.Sprintf("%T", x), func(b *testing.B) {
			b.Run("fast", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					v.JSON()
				}
			})
			b.Run("general", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					x, _ := slowDecode(v)
					json.Marshal(x)
				}
			})
		})
	}
}

// TestValueFastAllocs keeps the scalar fast paths lean: validating a
// scalar allocates nothing, parsing or rendering an integer once.
func TestValueFastAllocs(t *testing.T) {
	s, i := MustValue("a value of some thirty bytes 01"), MustValue(int64(123456))
	ij, sj := []byte("123456"), []byte(`"a value"`)
	for name, c := range map[string]struct {
		f   func()
		max float64
	}{
		"Validate string": {func() { s.Validate() }, 0},
		"Validate int":    {func() { i.Validate() }, 0},
		"JSON int":        {func() { i.JSON() }, 1},
		"FromJSON int":    {func() { ValueFromJSON(ij) }, 1},
		"FromJSON string": {func() { ValueFromJSON(sj) }, 1},
	} {
		if n := testing.AllocsPerRun(200, c.f); n > c.max {
			t.Errorf("%s: %.0f allocations, want at most %.0f", name, n, c.max)
		}
	}
}
