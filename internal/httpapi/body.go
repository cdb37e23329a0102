package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// bodyError puts an error of decoding the request body data into v in the
// user's words: which field, what it takes, what it got and at what byte
// offset; never a Go type name. v is the pointer decodeBody was given.
func bodyError(err error, data []byte, v any) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off := max(se.Offset-1, 0) // the decoder counts the offending byte in
		line, col := lineCol(data, off)
		return Errorf(http.StatusBadRequest, "malformed JSON body at offset %d (line %d, column %d): %s", off, line, col, se.Error())
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, "malformed JSON body: it ends at offset %d before the JSON is complete", len(data))
	case errors.As(err, &te):
		got := jsonKind(te.Value)
		if te.Field == "" {
			return Errorf(http.StatusBadRequest, "the body must be %s, got %s", describeType(te.Type), got)
		}
		return Errorf(http.StatusBadRequest, "field %q of the body: want %s, got %s (at offset %d)", te.Field, describeType(te.Type), got, valueStart(data, te.Offset))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		at := ""
		if key, err := strconv.Unquote(name); err == nil {
			if i := keyOffset(data, key); i >= 0 {
				at = fmt.Sprintf(" at offset %d", i)
			}
		}
		return Errorf(http.StatusBadRequest, "unknown field %s in the body%s; this request takes %s", name, at, bodyFields(v))
	}
	// Not an error of the input's shape (a read error, say): say what it
	// is without the decoder's prefix.
	return Errorf(http.StatusBadRequest, "malformed JSON body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// keyOffset is the byte offset of key among the keys of the object data
// holds, or -1.
func keyOffset(data []byte, key string) int {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return -1
	}
	for dec.More() {
		off := int(skipSpace(data, dec.InputOffset()))
		tok, err := dec.Token()
		if err != nil {
			return -1
		}
		if k, _ := tok.(string); k == key {
			if off < len(data) && data[off] == ',' {
				off++
			}
			return int(skipSpace(data, int64(off)))
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return -1
		}
	}
	return -1
}

// valueStart is where the JSON value that ends at, or whose array or
// object opens just before, offset off of data starts (the decoder
// reports a mistyped value's offset past it).
func valueStart(data []byte, off int64) int64 {
	if off <= 0 || off > int64(len(data)) {
		return off
	}
	i := off - 1
	switch data[i] {
	case '[', '{':
		return i
	case '"':
		for j := i - 1; j >= 0; j-- {
			if data[j] != '"' {
				continue
			}
			k := j // an opening quote has an even number of backslashes before it
			for k > 0 && data[k-1] == '\\' {
				k--
			}
			if (j-k)%2 == 0 {
				return j
			}
		}
		return off
	}
	j := i // a number or a literal
	for j > 0 && strings.IndexByte("0123456789+-.eEtruefalsn", data[j-1]) >= 0 {
		j--
	}
	return j
}

// skipSpace is the offset of the first byte at or after off in data that
// is not JSON whitespace.
func skipSpace(data []byte, off int64) int64 {
	for off < int64(len(data)) && strings.IndexByte(" \t\r\n", data[off]) >= 0 {
		off++
	}
	return off
}

// lineCol is the 1-based line and column of the byte at offset off in
// data.
func lineCol(data []byte, off int64) (line, col int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// jsonKind words the decoder's description of a JSON value ("array",
// "number 1.5", ...) for a message.
func jsonKind(v string) string {
	switch {
	case v == "array", v == "object":
		return "an " + v
	case v == "string":
		return "a string"
	case v == "bool":
		return "true or false"
	case v == "number":
		return "a number"
	case strings.HasPrefix(v, "number "):
		n := strings.TrimPrefix(v, "number ")
		if !strings.ContainsAny(n, ".eE") {
			return n + " (out of range)"
		}
		return n
	}
	return v
}

// describeType says in JSON terms what a Go type accepts.
func describeType(t reflect.Type) string {
	if t == nil {
		return "a JSON value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		return "a JSON object"
	case reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a JSON value"
}

// bodyFields lists the JSON names of the fields of the struct v points
// to: `"a", "b"`.
func bodyFields(v any) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return "no fields"
	}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, strconv.Quote(name))
	}
	if len(names) == 0 {
		return "no fields"
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
