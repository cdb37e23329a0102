package secure

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Gossip keyring files hold memberlist keys, one base64 key (16, 24 or 32
// bytes) per line; the first is the primary key (used to encrypt), the
// others are accepted when decrypting. '#' starts a comment.

// NewGossipKey returns a fresh 32-byte key, base64-encoded.
func NewGossipKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// ParseGossipKey decodes a base64 key and checks its length.
func ParseGossipKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("gossip key: not base64: %v", err)
	}
	switch len(k) {
	case 16, 24, 32:
		return k, nil
	}
	return nil, fmt.Errorf("gossip key: %d bytes, want 16, 24 or 32", len(k))
}

// KeyFingerprint names a key without revealing it (first 8 bytes of its
// SHA-256, hex).
func KeyFingerprint(k []byte) string {
	h := sha256.Sum256(k)
	return hex.EncodeToString(h[:8])
}

// ReadKeyring reads a keyring file: its keys, the primary first. The file
// must not be readable by group or others.
func ReadKeyring(path string) ([][]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("gossip keyring %s has mode %v: want 0600", path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}
	keys, err := ParseKeyring(b)
	if err != nil {
		return nil, fmt.Errorf("gossip keyring %s: %w", path, err)
	}
	return keys, nil
}

// ParseKeyring parses a keyring file's contents.
func ParseKeyring(b []byte) ([][]byte, error) {
	var keys [][]byte
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		k, err := ParseGossipKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		if !seen[string(k)] {
			seen[string(k)] = true
			keys = append(keys, k)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no key")
	}
	return keys, nil
}

// WriteKeyring replaces a keyring file atomically (mode 0600), primary
// first.
func WriteKeyring(path string, primary []byte, keys [][]byte) error {
	var buf bytes.Buffer
	buf.WriteString("# replicad gossip keyring: the first key encrypts, every key decrypts\n")
	buf.WriteString(base64.StdEncoding.EncodeToString(primary) + "\n")
	for _, k := range keys {
		if !bytes.Equal(k, primary) {
			buf.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyring-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
