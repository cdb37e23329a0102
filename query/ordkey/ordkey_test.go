package ordkey

import (
	"bytes"
	"testing"

	"github.com/replicad/replicad/crdt"
)

// TestOrder: the total order of values, by kind then value.
func TestOrder(t *testing.T) {
	vals := []any{nil, false, true, -1e300, int64(-3), int64(0), 0.5, int64(1), 1.5, int64(1) << 60, (int64(1) << 60) + 1, "", "a", "a\x00", "ab", "b", []any{int64(1)}}
	var prev []byte
	for i, x := range vals {
		k := Append(nil, crdt.MustValue(x))
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			t.Errorf("%v does not sort after %v", x, vals[i-1])
		}
		if Len(k) != len(k) {
			t.Errorf("Len(%v) = %d, want %d", x, Len(k), len(k))
		}
		prev = k
	}
	if !bytes.Equal(Append(nil, nil), Append(nil, crdt.MustValue(nil))) {
		t.Error("absent and null differ")
	}
	if !bytes.Equal(AppendScalar(nil, int64(3)), AppendScalar(nil, 3.0)) {
		t.Error("3 and 3.0 differ")
	}
}
