package credentials

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/replicad/replicad/agent/config"
	"github.com/replicad/replicad/store"
)

// Encryption at rest of the store's values (store.Options.EncryptionKey):
// the agent reads the AES-256 key (LoadKey) once at start from one source, a file,
// an environment variable or a command, and keeps it in memory for the
// store's reopenings (recover.go, a reset). The key is never logged nor
// shown: status says only whether encryption is on.

// keyCommandMaxOutput bounds what the key command may print.
const keyCommandMaxOutput = 4096

// LoadKey returns the key from the configured source, or nil when none is
// configured. Errors name the source and never hold key material.
func LoadKey(c *config.AtRestConfig) ([]byte, error) {
	switch {
	case c.KeyFile != "":
		return keyFromFile(c.KeyFile)
	case c.KeyEnv != "":
		return keyFromEnv(c.KeyEnv)
	case c.KeyCommand != "":
		return keyFromCommand(c.KeyCommand, config.KeyCommandTimeout)
	}
	return nil, nil
}

// parseKey decodes a key: exactly 32 bytes are the raw key; otherwise,
// surrounding white space trimmed, 64 hex characters.
func parseKey(b []byte, source string) ([]byte, error) {
	if len(b) == store.KeySize {
		return append([]byte(nil), b...), nil
	}
	t := bytes.TrimSpace(b)
	if len(t) != 2*store.KeySize {
		return nil, fmt.Errorf("encryption key from %s: %d bytes: want exactly %d raw bytes, or %d hex characters (e.g. openssl rand -hex 32)", source, len(b), store.KeySize, 2*store.KeySize)
	}
	k := make([]byte, store.KeySize)
	if _, err := hex.Decode(k, t); err != nil {
		return nil, fmt.Errorf("encryption key from %s: %d characters but not hex: want %d raw bytes or %d hex characters", source, len(t), store.KeySize, 2*store.KeySize)
	}
	return k, nil
}

func keyFromFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("encryption key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("encryption key file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("encryption key file %s has mode %v: it must not be readable by group or others (chmod 600 %s)", path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("encryption key file %s: %w", path, err)
	}
	return parseKey(b, "file "+path)
}

func keyFromEnv(name string) ([]byte, error) {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return nil, fmt.Errorf("encryption key: environment variable %s is not set", name)
	}
	k, err := parseKey([]byte(v), "environment variable "+name)
	if err != nil {
		return nil, err
	}
	os.Unsetenv(name)
	return k, nil
}

// limitedBuffer keeps the first max bytes written and counts the rest.
type limitedBuffer struct {
	buf  bytes.Buffer
	max  int
	over int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) <= room {
			l.buf.Write(p)
		} else {
			l.buf.Write(p[:room])
			l.over += len(p) - room
		}
	} else {
		l.over += len(p)
	}
	return len(p), nil
}

func keyFromCommand(command string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Stdin = nil
	stdout := &limitedBuffer{max: keyCommandMaxOutput}
	stderr := &limitedBuffer{max: 512}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = time.Second // do not wait for a grandchild holding the pipes
	err := cmd.Run()
	detail := strings.TrimSpace(stderr.buf.String())
	if detail != "" {
		detail = " (stderr: " + detail + ")"
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("encryption key command %q did not finish within %v%s", command, timeout, detail)
	case err != nil:
		return nil, fmt.Errorf("encryption key command %q failed: %v%s", command, err, detail)
	case stdout.over > 0:
		return nil, fmt.Errorf("encryption key command %q printed more than %d bytes: want %d raw bytes or %d hex characters", command, keyCommandMaxOutput, store.KeySize, 2*store.KeySize)
	}
	return parseKey(stdout.buf.Bytes(), "command "+strconvQuote(command))
}

func strconvQuote(s string) string { return fmt.Sprintf("%q", s) }
