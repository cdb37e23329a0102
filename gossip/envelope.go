package gossip

import (
	"encoding/binary"
	"errors"
)

// Every user message this package puts on memberlist starts with an envelope:
//
//	kind byte | uvarint len | origin | [uvarint len | key | uvarint seq] | payload
//
// The bracketed part is present for broadcasts and leave notices only. A
// leave notice is a broadcast with an empty key and payload that a node
// sends in Leave: memberlist's NotifyLeave does not say whether a node left
// or failed (its Node.State is never updated), so receivers learn it here. origin is the name of
// the node that called Broadcast or SendTo (memberlist does not tell a
// receiver who sent a message, and broadcasts are relayed). seq orders the
// broadcasts of one origin: a receiver delivers a (origin, key) broadcast
// only if its seq is higher than the last one it delivered for that pair.
const (
	kindBroadcast byte = 0x01
	kindDirect    byte = 0x02
	kindLeave     byte = 0x03
)

const (
	// MaxKeyLen is the longest key Broadcast accepts.
	MaxKeyLen = 64
	// maxNameLen bounds an origin name in an envelope (names are 16 hex
	// characters; the bound leaves room and keeps decoding cheap).
	maxNameLen = 64
	// maxEnvelopeOverhead is the most an envelope adds to a payload:
	// kind, two length-prefixed strings, a 64-bit uvarint.
	maxEnvelopeOverhead = 1 + (1 + maxNameLen) + (1 + MaxKeyLen) + binary.MaxVarintLen64
)

type envelope struct {
	kind    byte
	origin  string
	key     string // broadcasts only
	seq     uint64 // broadcasts only
	payload []byte
}

func (e *envelope) encode() []byte {
	b := make([]byte, 0, maxEnvelopeOverhead+len(e.payload))
	b = append(b, e.kind)
	b = binary.AppendUvarint(b, uint64(len(e.origin)))
	b = append(b, e.origin...)
	if e.kind != kindDirect {
		b = binary.AppendUvarint(b, uint64(len(e.key)))
		b = append(b, e.key...)
		b = binary.AppendUvarint(b, e.seq)
	}
	return append(b, e.payload...)
}

var errBadEnvelope = errors.New("gossip: malformed message envelope")

// decodeEnvelope parses untrusted input. The payload aliases b.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if len(b) < 1 {
		return e, errBadEnvelope
	}
	e.kind, b = b[0], b[1:]
	if e.kind != kindBroadcast && e.kind != kindDirect && e.kind != kindLeave {
		return e, errBadEnvelope
	}
	str := func(max int) (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(max) || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	var ok bool
	if e.origin, ok = str(maxNameLen); !ok || e.origin == "" {
		return e, errBadEnvelope
	}
	if e.kind != kindDirect {
		if e.key, ok = str(MaxKeyLen); !ok {
			return e, errBadEnvelope
		}
		var k int
		if e.seq, k = binary.Uvarint(b); k <= 0 {
			return e, errBadEnvelope
		}
		b = b[k:]
	}
	e.payload = b
	return e, nil
}

// queueName is the queue and de-duplication name of a broadcast or leave
// notice: a later one with the same name supersedes it.
func queueName(kind byte, origin, key string) string {
	return string(rune(kind)) + origin + "\x00" + key
}
