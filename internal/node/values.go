package node

import (
	"encoding/json"

	"github.com/replicad/replicad/crdt"
)

// JSONValue is a field value as JSON: the value itself, or, for one that
// has no JSON form (binary, from a msgpack peer), a string of its msgpack
// rendering.
func JSONValue(v crdt.Value) json.RawMessage {
	b, err := v.JSON()
	if err != nil {
		b, _ = json.Marshal(v.String())
	}
	return b
}

// JSONFields turns Go values into fields (through JSON).
func JSONFields(m map[string]any) ([]crdt.FieldValue, error) {
	out := make([]crdt.FieldValue, 0, len(m))
	for name, x := range m {
		raw, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		v, err := crdt.ValueFromJSON(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, crdt.FieldValue{Name: name, Value: v})
	}
	return out, nil
}
