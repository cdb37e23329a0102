package store

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Test for them with errors.Is; the store wraps them with
// context (the key, the path, the underlying Pebble error).
var (
	// ErrNotFound: the record or bookkeeping entry does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrOutOfScope: the record is held but hidden because it left this
	// replica's scope (offline profile). errors.Is(ErrOutOfScope,
	// ErrNotFound) holds.
	ErrOutOfScope = fmt.Errorf("%w: not in this replica's scope", ErrNotFound)
	// ErrNotReplicadStore: Open was given a directory that holds something
	// other than a replicad store (another Pebble database, other files).
	// Nothing was changed.
	ErrNotReplicadStore = errors.New("store: not a replicad store")
	// ErrNewerFormat: the store was written by a newer replicad whose
	// format this version cannot read. Nothing was changed.
	ErrNewerFormat = errors.New("store: store format is newer than this version supports")
	// ErrClusterMismatch: the store belongs to another cluster than
	// Options.ClusterID. Nothing was changed.
	ErrClusterMismatch = errors.New("store: cluster id mismatch")
	// ErrCorrupt: a stored value (or key) does not decode. Errors wrapping
	// it are *CorruptError and name the key.
	ErrCorrupt = errors.New("store: corrupt data")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrFailed: an earlier write hit an I/O error after it may have become
	// visible; the store refuses further writes and reads until it is closed
	// and reopened (reopening recovers exactly the durable state).
	ErrFailed = errors.New("store: failed after an I/O error; close and reopen")
	// ErrKeyRequired: the store's values are encrypted at rest (or being
	// encrypted: an interrupted migration) and Options.EncryptionKey was
	// not given. Nothing was changed.
	ErrKeyRequired = errors.New("store: the store is encrypted at rest and no key was given")
	// ErrWrongKey: Options.EncryptionKey is not the key the store was
	// encrypted with. Nothing was changed.
	ErrWrongKey = errors.New("store: wrong encryption key")
	// ErrInvalid: an argument was refused (bad table name or id, malformed
	// write, bad range).
	ErrInvalid = errors.New("store: invalid argument")
)

// CorruptError reports a stored value that does not decode. It wraps
// ErrCorrupt (errors.Is(err, ErrCorrupt)) and the decoder's error.
type CorruptError struct {
	Key []byte // the key whose value is bad (owned by the error)
	Err error  // the decoding error
}

func (e *CorruptError) Error() string {
	return "store: corrupt value at key " + FormatKey(e.Key) + ": " + e.Err.Error()
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the decoding error.
func (e *CorruptError) Unwrap() error { return e.Err }

func corrupt(key []byte, err error) error {
	return &CorruptError{Key: append([]byte(nil), key...), Err: err}
}

func corruptf(key []byte, format string, args ...any) error {
	return corrupt(key, fmt.Errorf(format, args...))
}

// FormatKey renders a store key for messages: the prefix letter, then the
// rest quoted (Go syntax), with 8-byte integers of the fixed-width layouts
// shown in hex.
func FormatKey(k []byte) string {
	if len(k) == 0 {
		return `""`
	}
	p := k[0]
	rest := k[1:]
	switch p {
	case pLog, pParked, pRestamp:
		if len(rest) == 16 {
			return string(p) + "/" + hexU(rest[:8]) + "/" + strconv.FormatUint(be(rest[8:]), 10)
		}
	case pOrigin, pFeed, pSyncErr:
		if len(rest) == 8 {
			return string(p) + "/" + hexU(rest)
		}
	case pEmpty, pState:
		if len(rest) == 16 {
			return string(p) + "/" + hexU(rest[:8]) + "/" + strconv.FormatUint(be(rest[8:]), 10)
		}
	case pPeer:
		if len(rest) >= 8 {
			return string(p) + "/" + hexU(rest[:8]) + "/" + strconv.Quote(string(rest[8:]))
		}
	}
	return string(p) + "/" + strconv.Quote(string(rest))
}

func hexU(b []byte) string {
	const hx = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, hx[c>>4], hx[c&0xf])
	}
	return string(out)
}
