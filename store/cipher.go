package store

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// Encryption at rest of the store's values (Options.EncryptionKey).
//
// A sealed value is
//
//	0x01 | nonce:12 | AES-256-GCM(key, nonce, value, additional data = the Pebble key)
//
// (29 bytes more than the value). The Pebble key is the additional data,
// so a sealed value copied under another key does not open. Keys stay
// plain: table names, record ids, node ids, sequence and feed numbers,
// the sizes of values and when they were written are visible on disk.
//
// Nonces: an 8-byte prefix drawn from crypto/rand when the cipher is made
// (each Open) and again after every 2^32 seals, followed by a 4-byte
// counter of the seals made under that prefix, under a mutex. Within one
// prefix the counter never repeats; two seals can share a nonce only if
// two prefix draws collide, which for D draws has probability at most
// D²/2^65 (D = 2^20 opens or prefix changes: 2^-25), whatever the number
// of values: purely random 96-bit nonces would reach NIST SP 800-38D's
// 2^-32 collision bound after 2^32 values, about ten days of a busy hub.
//
// Every value but three is sealed: m"magic", m"format" and m"atrest"
// stay plain, since Open reads them to learn that the store is sealed and
// whether the key given is the store's. m"atrest" holds the state (see
// atRestValue) and a key check value: a known constant sealed with the
// key (additional data m"atrest"); a key that does not open it is the
// wrong key (ErrWrongKey).

// KeySize is the length of Options.EncryptionKey: AES-256.
const KeySize = 32

const (
	sealVersion  = 0x01
	nonceSize    = 12
	sealOverhead = 1 + nonceSize + 16
	metaAtRest   = "atrest"
	// keyCheckText is sealed as the key check value.
	keyCheckText = "replicad at-rest key check v1"
)

// Formats of m"format": a plain store is written as formatPlain; a store
// whose values are sealed (or being sealed) as formatSealed, so that a
// replicad that predates encryption refuses it with ErrNewerFormat instead
// of reading sealed bytes as values.
const (
	formatPlain  = 1
	formatSealed = 2
)

// At-rest states (atRestValue.State). A plain store has no m"atrest".
const (
	atRestPlain      = 0
	atRestMigrating  = 1 // values below Cursor are sealed, the others plain
	atRestCompacting = 2 // every value is sealed; old files still to compact away
	atRestSealed     = 3 // every value is sealed, old plaintext files compacted away
)

// atRestValue is m"atrest" (msgpack map).
type atRestValue struct {
	State  uint8
	Check  []byte // keyCheckText sealed with the key
	Cursor []byte // atRestMigrating: the first key not sealed yet
	Done   uint64 // atRestMigrating: values sealed so far (progress)
}

// valueCipher seals and opens the store's values.
type valueCipher struct {
	aead cipher.AEAD

	mu     sync.Mutex
	prefix [8]byte
	ctr    uint32 // seals made under prefix
	fresh  bool   // prefix drawn, ctr counts from 0
}

func newValueCipher(key []byte) (*valueCipher, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: encryption key of %d bytes (want %d: AES-256)", ErrInvalid, len(key), KeySize)
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: encryption key: %v", ErrInvalid, err)
	}
	aead, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, fmt.Errorf("%w: encryption key: %v", ErrInvalid, err)
	}
	return &valueCipher{aead: aead}, nil
}

// nonce writes a fresh nonce into dst (12 bytes).
func (c *valueCipher) nonce(dst []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fresh || c.ctr == ^uint32(0) {
		if _, err := io.ReadFull(rand.Reader, c.prefix[:]); err != nil {
			return fmt.Errorf("store: nonce: %w", err)
		}
		c.ctr, c.fresh = 0, true
	}
	c.ctr++
	copy(dst, c.prefix[:])
	binary.BigEndian.PutUint32(dst[8:], c.ctr)
	return nil
}

// sealInPlace seals the value in dst[1+nonceSize:][:n] under key, in
// place: dst is exactly sealOverhead+n bytes.
func (c *valueCipher) sealInPlace(dst, key []byte, n int) error {
	dst[0] = sealVersion
	if err := c.nonce(dst[1 : 1+nonceSize]); err != nil {
		return err
	}
	pt := dst[1+nonceSize : 1+nonceSize+n]
	out := c.aead.Seal(pt[:0], dst[1:1+nonceSize], pt, key)
	if len(out) != len(dst)-1-nonceSize {
		return fmt.Errorf("store: sealed %d bytes into %d", len(out), len(dst)-1-nonceSize)
	}
	return nil
}

// seal appends the sealed form of val under key to dst.
func (c *valueCipher) seal(dst, key, val []byte) ([]byte, error) {
	n := len(dst)
	dst = append(dst, make([]byte, sealOverhead+len(val))...)
	copy(dst[n+1+nonceSize:], val)
	if err := c.sealInPlace(dst[n:], key, len(val)); err != nil {
		return nil, err
	}
	return dst, nil
}

// open appends the value sealed in v under key to dst. A value that does
// not open (garbled, truncated, moved to another key, another key's) is
// ErrCorrupt naming the key.
func (c *valueCipher) open(dst, key, v []byte) ([]byte, error) {
	if len(v) < sealOverhead {
		return nil, corruptf(key, "sealed value of %d bytes (at least %d)", len(v), sealOverhead)
	}
	if v[0] != sealVersion {
		return nil, corruptf(key, "sealed value of unknown version %#x", v[0])
	}
	out, err := c.aead.Open(dst, v[1:1+nonceSize], v[1+nonceSize:], key)
	if err != nil {
		return nil, corruptf(key, "sealed value does not open with the store's key (garbled, or written under another key)")
	}
	return out, nil
}

// isBootstrap reports whether k is one of the values that stay plain.
func isBootstrap(k []byte) bool {
	if len(k) == 0 || k[0] != pMeta {
		return false
	}
	n := string(k[1:])
	return n == metaMagic || n == metaFormat || n == metaAtRest
}

// sealedView says which values of a store are sealed: every one but the
// bootstrap values (state sealed or compacting), those below a cursor
// (migrating), or none (plain).
type sealedView struct {
	c      *valueCipher // nil: no key given
	state  uint8
	cursor []byte
	done   uint64 // migrating: values sealed so far
}

func (v *sealedView) sealed(k []byte) bool {
	switch v.state {
	case atRestPlain:
		return false
	case atRestMigrating:
		return !isBootstrap(k) && bytes.Compare(k, v.cursor) < 0
	}
	return !isBootstrap(k)
}

// openAt returns the value v of k as written: opened if it is sealed.
func (v *sealedView) openAt(k, val []byte) ([]byte, error) {
	if !v.sealed(k) {
		return val, nil
	}
	return v.c.open(nil, k, val)
}

// readAtRest reads m"atrest" and checks the key against it: a store that
// is sealed (or being sealed) needs the key (ErrKeyRequired), the right
// one (ErrWrongKey). c may be nil (no key given).
func readAtRest(r pebble.Reader, c *valueCipher) (*sealedView, error) {
	k := metaKey(metaAtRest)
	raw, closer, err := r.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return &sealedView{c: c}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read %s: %w", FormatKey(k), err)
	}
	var av atRestValue
	err = decodeValue(k, raw, &av)
	closer.Close()
	if err != nil {
		return nil, err
	}
	if av.State < atRestMigrating || av.State > atRestSealed {
		return nil, corruptf(k, "unknown at-rest state %d", av.State)
	}
	if av.State == atRestMigrating && len(av.Cursor) == 0 && av.Done > 0 {
		return nil, corruptf(k, "migration without a cursor")
	}
	if c == nil {
		what := "its values are encrypted at rest"
		if av.State == atRestMigrating {
			what = "its values are being encrypted at rest (an interrupted migration)"
		}
		return nil, fmt.Errorf("%w: %s; give its key (replicad agent --encryption-key-file, --encryption-key-env or --encryption-key-command)", ErrKeyRequired, what)
	}
	if got, err := c.open(nil, k, av.Check); err != nil || string(got) != keyCheckText {
		return nil, fmt.Errorf("%w: the key given does not open the store's key check value: it is not the key the store was encrypted with", ErrWrongKey)
	}
	return &sealedView{c: c, state: av.State, cursor: av.Cursor, done: av.Done}, nil
}

// atRestMeta returns the encoded m"atrest" for state (with cursor and
// progress while migrating), with a fresh key check value.
func (c *valueCipher) atRestMeta(state uint8, cursor []byte, done uint64) ([]byte, error) {
	check, err := c.seal(nil, metaKey(metaAtRest), []byte(keyCheckText))
	if err != nil {
		return nil, err
	}
	return encodeValue(nil, &atRestValue{State: state, Check: check, Cursor: cursor, Done: done})
}

// --- reading through the cipher ---

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// get reads k with its value opened; the value is valid until the
// closer is closed. Without a key it is s.db.Get (k does not escape).
func (s *Store) get(k []byte) ([]byte, io.Closer, error) {
	v, c, err := s.db.Get(k)
	if err != nil || s.ciph == nil || isBootstrap(k) {
		return v, c, err
	}
	return s.opened(append([]byte(nil), k...), v, c)
}

// getFrom is get on a snapshot (Verify).
func (s *Store) getFrom(r pebble.Reader, k []byte) ([]byte, io.Closer, error) {
	v, c, err := r.Get(k)
	if err != nil || s.ciph == nil || isBootstrap(k) {
		return v, c, err
	}
	return s.opened(k, v, c)
}

// opened opens v, the value of k, and closes c.
func (s *Store) opened(k, v []byte, c io.Closer) ([]byte, io.Closer, error) {
	out, err := s.ciph.open(nil, k, v)
	c.Close()
	if err != nil {
		return nil, nil, err
	}
	return out, nopCloser{}, nil
}

// itValue returns the iterator's current value, opened (into *buf, which
// it reuses: the value is valid until the next call, like it.Value()).
func (s *Store) itValue(it *pebble.Iterator, buf *[]byte) ([]byte, error) {
	if s.ciph == nil || isBootstrap(it.Key()) {
		return it.Value(), nil
	}
	out, err := s.ciph.open((*buf)[:0], it.Key(), it.Value())
	if err != nil {
		return nil, err
	}
	*buf = out
	return out, nil
}

// Encrypted reports whether the store's values are encrypted at rest (it
// was opened with Options.EncryptionKey).
func (s *Store) Encrypted() bool { return s.ciph != nil }
