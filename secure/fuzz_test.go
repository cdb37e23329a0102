package secure

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseRevoked: any revocation list parses or fails cleanly, and
// every serial it yields is in canonical form.
func FuzzParseRevoked(f *testing.F) {
	for _, s := range []string{"", "0A:1B\n", "serial=FF # lost\n", "# c\n\n10\n", "zz", "-1", "00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := ParseRevoked(b)
		if err != nil {
			return
		}
		for s := range set {
			again, err := ParseRevoked([]byte(s))
			if err != nil || !again[s] {
				t.Fatalf("serial %q does not parse back: %v", s, err)
			}
		}
	})
}

// FuzzParseKeyring: any keyring file parses or fails cleanly; parsed keys
// have a valid AES length.
func FuzzParseKeyring(f *testing.F) {
	k, _ := NewGossipKey()
	for _, s := range []string{"", k + "\n", "# c\n" + k + "\n" + k + "\n", "AAAA\n", "!!!"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := ParseKeyring(b)
		if err != nil {
			return
		}
		if len(keys) == 0 {
			t.Fatal("no error and no key")
		}
		for _, k := range keys {
			if n := len(k); n != 16 && n != 24 && n != 32 {
				t.Fatalf("key of %d bytes", n)
			}
		}
	})
}

// FuzzIdentity: any certificate a peer presents (DER) either parses to a
// replicad identity with a sane binding or is refused.
func FuzzIdentity(f *testing.F) {
	dir := f.TempDir()
	if _, err := CreateCA(CAOptions{Dir: dir, Cluster: "acme"}); err != nil {
		f.Fatal(err)
	}
	if _, _, err := CreateNodeCert(CertOptions{Dir: dir, Name: "n", Role: "hub"}); err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{"n.crt", CACertFile} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		blk, _ := pem.Decode(b)
		f.Add(blk.Bytes)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		id, err := identityOf(c)
		if err != nil {
			return
		}
		if id.Bits < 1 || id.Bits > 64 || id.Cluster == "" || (id.Role != "hub" && id.Role != "device") {
			t.Fatalf("identity accepted with a bad binding: %+v", id)
		}
	})
}
