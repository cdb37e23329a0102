package query

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"

	"github.com/replicad/replicad/query/ordkey"
)

// position is a record's place in a query's order: the encoded values
// of the order's fields (package ordkey), then its id.
type position struct {
	keys [][]byte
	id   string
}

const cursorVersion = 1

// identity hashes what decides a query's positions: its table, where
// and order. A cursor carries it, so that another query refuses it.
func identity(table, where string, order []orderKey, idDesc bool) uint64 {
	h := fnv.New64a()
	h.Write([]byte(table))
	h.Write([]byte{0})
	h.Write([]byte(where))
	for _, k := range order {
		h.Write([]byte{0})
		if k.desc {
			h.Write([]byte{'-'})
		}
		h.Write([]byte(k.field))
	}
	if idDesc {
		h.Write([]byte{0, '-'})
	}
	return h.Sum64()
}

// encodeCursor: base64url(version, identity:8, per order field
// uvarint(len) value, id).
func encodeCursor(ident uint64, pos *position) string {
	b := []byte{cursorVersion}
	b = binary.BigEndian.AppendUint64(b, ident)
	for _, k := range pos.keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	b = append(b, pos.id...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, ident uint64, nkeys int) (*position, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 9 || b[0] != cursorVersion {
		return nil, errAt("cursor", 0, "not a cursor this server gave")
	}
	if binary.BigEndian.Uint64(b[1:9]) != ident {
		return nil, errAt("cursor", 0, "the cursor belongs to another query (its table, where or order differ)")
	}
	b = b[9:]
	pos := &position{}
	for i := 0; i < nkeys; i++ {
		n, l := binary.Uvarint(b)
		if l <= 0 || uint64(len(b)-l) < n {
			return nil, errAt("cursor", 0, "malformed cursor")
		}
		k := b[l : l+int(n)]
		if ordkey.Len(k) != len(k) {
			return nil, errAt("cursor", 0, "malformed cursor")
		}
		pos.keys = append(pos.keys, k)
		b = b[l+int(n):]
	}
	if len(b) == 0 {
		return nil, errAt("cursor", 0, "malformed cursor")
	}
	pos.id = string(b)
	return pos, nil
}

// compare orders two positions under the query's order.
func (p *Prepared) compare(a, b *position) int {
	for i, k := range p.order {
		c := bytes.Compare(a.keys[i], b.keys[i])
		if k.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	c := compareStrings(a.id, b.id)
	if p.idDesc {
		c = -c
	}
	return c
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
