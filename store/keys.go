package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/replicad/replicad/hlc"
)

// Key prefixes; see LAYOUT.md.
const (
	pMeta     = 'm'
	pRecord   = 'r'
	pLog      = 'l'
	pOrigin   = 'o'
	pEmpty    = 'g'
	pFeed     = 'f'
	pParked   = 'k'
	pPeer     = 'p'
	pSyncErr  = 'e'
	pConflict = 'c'
	pTomb     = 't'
	pMerged   = 'v'
	pHidden   = 'x'
	pQueue    = 'q'
	pRestamp  = 'a'
	pBase     = 'b'
	pDraft    = 'u' // drafts.go: unpublished field values, device-only
	pDupKey   = 'd' // duplicate detection: key-value index, pending flags (dupindex.go)
	pConsumer = 'w' // feed consumers (workflows): cursor and outcomes (consumer.go)
)

// Metadata names (m<name>).
const (
	metaMagic   = "magic"
	metaFormat  = "format"
	metaNode    = "node"
	metaCluster = "cluster"
	metaHLC     = "hlc"
	// boots.go
	metaScopeSeq = "scope-seq"
	metaBoots    = "boots"
)

// magicValue is stored under m"magic".
const magicValue = "replicad-store"

// FormatVersion is the newest store layout version this package reads: 1
// (values plain) or 2 (values encrypted at rest, or being encrypted; see
// cipher.go). It writes 1 for a plain store and 2 for an encrypted one.
const FormatVersion = formatSealed

// Limits on names.
const (
	MaxTableLen = 64
	MaxIDLen    = 256
)

// ValidTable reports whether name is a valid table name: 1-64 characters
// from [A-Za-z0-9_.-].
func ValidTable(name string) bool {
	if len(name) == 0 || len(name) > MaxTableLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// ValidID reports whether id is a valid record id: 1-256 bytes of valid
// UTF-8 without NUL.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDLen || !utf8.ValidString(id) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			return false
		}
	}
	return true
}

func checkName(table, id string) error {
	if !ValidTable(table) {
		return fmt.Errorf("%w: table name %q (want 1-%d chars of [A-Za-z0-9_.-])", ErrInvalid, table, MaxTableLen)
	}
	if !ValidID(id) {
		return fmt.Errorf("%w: record id %q (want 1-%d bytes of UTF-8 without NUL)", ErrInvalid, id, MaxIDLen)
	}
	return nil
}

func be(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func metaKey(name string) []byte { return append([]byte{pMeta}, name...) }

// recordKey: r<table>\x00<id>.
func recordKey(dst []byte, table, id string) []byte {
	dst = append(dst, pRecord)
	dst = append(dst, table...)
	dst = append(dst, 0)
	return append(dst, id...)
}

// splitName splits "<table>\x00<id>" (the part after the prefix).
func splitName(b []byte) (table, id string, ok bool) {
	for i, c := range b {
		if c == 0 {
			t, r := string(b[:i]), string(b[i+1:])
			return t, r, ValidTable(t) && ValidID(r)
		}
	}
	return "", "", false
}

func u64Key(dst []byte, p byte, a uint64) []byte {
	dst = append(dst, p)
	return binary.BigEndian.AppendUint64(dst, a)
}

func u64u64Key(dst []byte, p byte, a, b uint64) []byte {
	dst = append(dst, p)
	dst = binary.BigEndian.AppendUint64(dst, a)
	return binary.BigEndian.AppendUint64(dst, b)
}

func logKey(dst []byte, origin hlc.NodeID, seq uint64) []byte {
	return u64u64Key(dst, pLog, uint64(origin), seq)
}

func originKey(origin hlc.NodeID) []byte { return u64Key(nil, pOrigin, uint64(origin)) }

func feedKey(dst []byte, n uint64) []byte { return u64Key(dst, pFeed, n) }

func emptyKey(origin hlc.NodeID, lo uint64) []byte {
	return u64u64Key(nil, pEmpty, uint64(origin), lo)
}

func parkedKey(origin hlc.NodeID, seq uint64) []byte {
	return u64u64Key(nil, pParked, uint64(origin), seq)
}

func peerKey(peer hlc.NodeID, table string) []byte {
	return append(u64Key(nil, pPeer, uint64(peer)), table...)
}

func syncErrKey(id uint64) []byte { return u64Key(nil, pSyncErr, id) }

func conflictKey(table, id, field string) []byte {
	k := []byte{pConflict}
	k = append(k, table...)
	k = append(k, 0)
	k = append(k, id...)
	k = append(k, 0)
	return append(k, field...)
}

func tombKey(table, id string) []byte {
	k := []byte{pTomb}
	k = append(k, table...)
	k = append(k, 0)
	return append(k, id...)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // no upper bound
}

// logBounds returns the iterator bounds of origin's log entries with
// sequence numbers in [lo, hi].
func logBounds(origin hlc.NodeID, lo, hi uint64) (lower, upper []byte) {
	lower = logKey(nil, origin, lo)
	if hi == math.MaxUint64 {
		return lower, prefixEnd(u64Key(nil, pLog, uint64(origin)))
	}
	return lower, logKey(nil, origin, hi+1)
}
