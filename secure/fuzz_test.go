package secure

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// FuzzDecodeGrant: any grant record a peer replicates decodes to a grant
// of sane form or is refused, and a decoded one encodes back to a grant
// that decodes the same.
func FuzzDecodeGrant(f *testing.F) {
	dir := f.TempDir()
	if _, err := CreateCA(CAOptions{Dir: dir, Cluster: "acme"}); err != nil {
		f.Fatal(err)
	}
	if _, _, err := CreateNodeCert(CertOptions{Dir: dir, Name: "hub", Role: "hub"}); err != nil {
		f.Fatal(err)
	}
	tl, err := LoadTLS(TLSOptions{CAFile: filepath.Join(dir, CACertFile), CertFile: filepath.Join(dir, "hub.crt"), KeyFile: filepath.Join(dir, "hub.key"), Cluster: "acme"})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	issuer, _ := tl.Self().NewNodeID()
	g, err := tl.SignGrant(Grant{Cluster: "acme", Rule: "r", Nodes: []string{"ab/8"}, Write: []string{"t", "t:f"}, IssuedMs: now.UnixMilli(), ExpiresMs: now.Add(time.Hour).UnixMilli(), Issuer: issuer})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(g)
	f.Add([]byte(`{"v":1,"statement":"e30=","sig":"AQ==","chain":["AQ=="]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sg, err := DecodeGrant(b)
		if err != nil {
			return
		}
		if err := sg.Grant.validate(); err != nil {
			t.Fatalf("decoded a grant of bad form: %v", err)
		}
		again, err := sg.Encode()
		if err != nil {
			t.Fatal(err)
		}
		sg2, err := DecodeGrant(again)
		if err != nil || !bytes.Equal(sg2.Statement, sg.Statement) || !bytes.Equal(sg2.Sig, sg.Sig) {
			t.Fatalf("re-encoded grant differs: %v", err)
		}
		// Verification never panics and never accepts a grant whose
		// signature does not match (the fuzzer cannot forge one).
		if _, _, err := tl.VerifyGrant(b, now); err == nil && !bytes.Equal(b, g) {
			if sg.Grant.Cluster != "acme" {
				t.Fatal("verified a grant of another cluster")
			}
		}
	})
}
