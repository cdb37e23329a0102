package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Field arguments of put, as httpie writes them: FIELD=TEXT sets a
// string, FIELD:=JSON any JSON value (it must parse). With --guess, a
// FIELD=VALUE is JSON where it parses and a string otherwise.

const fieldsUsage = "FIELD=TEXT|FIELD:=JSON..."

// parseFields parses put's field arguments. Notes and warnings (a text
// that would have meant JSON, a guessed value that looks like broken
// JSON) go to stderr.
func parseFields(args []string, guess bool, stderr io.Writer) (map[string]json.RawMessage, error) {
	fields := make(map[string]json.RawMessage, len(args))
	for _, kv := range args {
		i := strings.IndexByte(kv, '=')
		if i <= 0 || i == 1 && kv[0] == ':' {
			return nil, usagef("put: %q: want FIELD=TEXT (a string) or FIELD:=JSON (any JSON value)", kv)
		}
		k, v := kv[:i], kv[i+1:]
		if strings.HasSuffix(k, ":") {
			k = strings.TrimSuffix(k, ":")
			raw, err := jsonArg(v)
			if err != nil {
				return nil, usagef("put: %s:=%s: %v; for text write %s=%s", k, v, err, k, v)
			}
			fields[k] = raw
			continue
		}
		if guess {
			fields[k] = guessValue(k, v, stderr)
			continue
		}
		if v != "" && json.Valid([]byte(v)) {
			fmt.Fprintf(stderr, "replicad: note: %s=%s stores the text %s; %s:=%s would store it as JSON\n", k, v, quoteJSON(v), k, v)
		}
		fields[k] = quoteJSON(v)
	}
	return fields, nil
}

// jsonArg returns v if it is one JSON value, else an error saying where
// it breaks.
func jsonArg(v string) (json.RawMessage, error) {
	if strings.TrimSpace(v) == "" {
		return nil, errors.New("no JSON value")
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("not JSON: %s at offset %d", se.Error(), max(se.Offset-1, 0))
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, errors.New("not JSON: it ends before the value is complete")
		}
		return nil, fmt.Errorf("not JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("not JSON: more than one value (at offset %d)", dec.InputOffset())
	}
	return json.RawMessage(v), nil
}

// guessValue is FIELD=VALUE under --guess: JSON where it parses, else a
// string, with a warning when the value looks like JSON that does not
// parse (a broken array stored as text is rarely what was meant).
func guessValue(k, v string, stderr io.Writer) json.RawMessage {
	if strings.TrimSpace(v) != "" && json.Valid([]byte(v)) {
		return json.RawMessage(v)
	}
	if looksLikeJSON(v) {
		_, err := jsonArg(v)
		fmt.Fprintf(stderr, "replicad: warning: %s=%s is not valid JSON (%v); stored as the text %s\n", k, v, strings.TrimPrefix(err.Error(), "not JSON: "), quoteJSON(v))
	}
	return quoteJSON(v)
}

// looksLikeJSON: v starts as an array, object or string does, or is
// number-like, or is true, false or null in another case.
func looksLikeJSON(v string) bool {
	t := strings.TrimSpace(v)
	if t == "" {
		return false
	}
	switch t[0] {
	case '[', '{', '"':
		return true
	}
	switch strings.ToLower(t) {
	case "true", "false", "null":
		return true
	}
	number := strings.TrimLeft(t, "-+")
	return number != "" && strings.Trim(number, "0123456789.eE+-") == "" && strings.ContainsAny(number[:1], "0123456789.")
}

func quoteJSON(s string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
