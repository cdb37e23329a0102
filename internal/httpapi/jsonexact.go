package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/replicad/replicad/crdt"
)

// JSON the API refuses rather than changes: encoding/json replaces
// invalid UTF-8 with U+FFFD and a number with float64, so a body with
// invalid UTF-8, or an integer beyond 64 bits, would be stored as
// something other than what was sent. Both are 400, naming the field. An
// integer of up to 64 bits (int64 or uint64) is kept exact; a number with
// a fraction or an exponent is a float64 (IEEE 754 double); a value that
// must keep more digits is sent as a string.

// checkBodyUTF8 refuses a request body that is not valid UTF-8, naming
// the field whose value holds the invalid bytes when it can.
func checkBodyUTF8(data []byte) error {
	if utf8.Valid(data) {
		return nil
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) == nil {
		if raw, ok := top["fields"]; ok {
			var fields map[string]json.RawMessage
			if json.Unmarshal(raw, &fields) == nil {
				for name, v := range fields {
					if !utf8.Valid(v) {
						return Errorf(http.StatusBadRequest, "field %q: the value is not valid UTF-8 (JSON text must be UTF-8; send binary data base64-encoded)", strings.ToValidUTF8(name, "\uFFFD"))
					}
				}
				if !utf8.Valid(raw) {
					return Errorf(http.StatusBadRequest, "a field name is not valid UTF-8 (at byte %d of the body): JSON text must be UTF-8", invalidAt(data))
				}
			}
		}
		for key, v := range top {
			if !utf8.Valid(v) {
				return Errorf(http.StatusBadRequest, "%q: the value is not valid UTF-8 (JSON text must be UTF-8)", strings.ToValidUTF8(key, "\uFFFD"))
			}
		}
	}
	return Errorf(http.StatusBadRequest, "request body is not valid UTF-8 at byte %d: JSON text must be UTF-8", invalidAt(data))
}

// invalidAt returns the offset of the first byte of data that is not
// valid UTF-8.
func invalidAt(data []byte) int {
	off := 0
	for off < len(data) {
		r, n := utf8.DecodeRune(data[off:])
		if r == utf8.RuneError && n <= 1 {
			break
		}
		off += n
	}
	return off
}

// ExactValue is crdt.ValueFromJSON refusing what it would not keep
// exactly: invalid UTF-8 and integers beyond 64 bits.
func ExactValue(raw []byte) (crdt.Value, error) {
	if !utf8.Valid(raw) {
		return nil, errors.New("the value is not valid UTF-8 (JSON text must be UTF-8; send binary data base64-encoded)")
	}
	if longDigits(raw) {
		if err := checkIntegers(raw); err != nil {
			return nil, err
		}
	}
	return crdt.ValueFromJSON(raw)
}

// longDigits reports whether raw has a run of 19 or more digits (the
// shortest integer that may not fit 64 bits), so that values without one
// are not scanned again.
func longDigits(raw []byte) bool {
	run := 0
	for _, c := range raw {
		if c >= '0' && c <= '9' {
			if run++; run >= 19 {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// checkIntegers refuses an integer literal (no fraction, no exponent)
// beyond int64 and uint64.
func checkIntegers(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return nil // ValueFromJSON reports malformed JSON
		}
		n, ok := tok.(json.Number)
		if !ok || strings.ContainsAny(string(n), ".eE") {
			continue
		}
		var i big.Int
		if _, ok := i.SetString(string(n), 10); ok && (i.IsInt64() || i.IsUint64()) {
			continue
		}
		return fmt.Errorf("integer %s is beyond 64 bits and would be rounded: send it as a string (\"%s\") to keep it exact", n, n)
	}
}
