package secure

import (
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pki creates a CA for cluster in a temp dir and node certificates.
func pki(t *testing.T, cluster string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := CreateCA(CAOptions{Dir: dir, Cluster: cluster}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func node(t *testing.T, dir, name, role string, opts ...func(*CertOptions)) Identity {
	t.Helper()
	o := CertOptions{Dir: dir, Name: name, Role: role}
	for _, f := range opts {
		f(&o)
	}
	_, id, err := CreateNodeCert(o)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

type refusals struct {
	mu   sync.Mutex
	list []string
}

func (r *refusals) add(remote, reason string) {
	r.mu.Lock()
	r.list = append(r.list, reason)
	r.mu.Unlock()
}

func (r *refusals) has(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func load(t *testing.T, dir, name, cluster string, rf *refusals) *TLS {
	t.Helper()
	tl, err := LoadTLS(TLSOptions{
		CAFile: filepath.Join(dir, CACertFile), CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key"),
		RevokedFile: filepath.Join(dir, RevokedFile), Cluster: cluster, OnRefused: rf.add,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

// handshake runs a TLS handshake over loopback between a client config and
// a server config; it returns both sides' errors and the server's conn.
//
//lint:ignore ST1008 the two errors are the result; the conn is for the caller's checks
func handshake(t *testing.T, client *tls.Config, server *TLS) (cerr, serr error, sc net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	tl := tls.NewListener(l, server.Server())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := tl.Accept()
		if err != nil {
			serr = err
			return
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		serr = c.(*tls.Conn).Handshake()
		if serr == nil {
			// Read one byte: in TLS 1.3 the client learns of a refusal
			// only when it reads.
			b := make([]byte, 1)
			_, serr = c.Read(b)
			if serr == nil {
				c.Write(b)
			}
		}
		sc = c
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", l.Addr().String(), client)
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err = c.Write([]byte{1}); err == nil {
			_, err = c.Read(make([]byte, 1))
		}
		c.Close()
	}
	<-done
	return err, serr, sc
}

// attacker returns a client config presenting dir/name's certificate that
// verifies nothing itself (a hostile peer), so the server's check is what
// is tested.
func attacker(t *testing.T, dir, name string) *tls.Config {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{c}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}
}

func TestTLSMutualAuth(t *testing.T) {
	dir := pki(t, "acme")
	hubID := node(t, dir, "hub", "hub")
	devID := node(t, dir, "dev1", "device")
	var rf refusals
	hub, dev := load(t, dir, "hub", "acme", &rf), load(t, dir, "dev1", "acme", &rf)
	if hub.Self().Role != "hub" || dev.Self().ID != devID.ID || hubID.Bits != DefaultIDBits {
		t.Fatalf("identities: hub %+v dev %+v", hub.Self(), dev.Self())
	}

	t.Run("ok", func(t *testing.T) {
		cerr, serr, sc := handshake(t, dev.Client("hub"), hub)
		if cerr != nil || serr != nil {
			t.Fatalf("client %v, server %v", cerr, serr)
		}
		n, err := devID.NewNodeID()
		if err != nil {
			t.Fatal(err)
		}
		if err := hub.Authenticate(sc, n, "device"); err != nil {
			t.Errorf("device claiming a node id its certificate binds: %v", err)
		}
		if err := hub.Authenticate(sc, n^(1<<63), "device"); err == nil {
			t.Error("device claiming another node's id was accepted")
		}
		if err := hub.Authenticate(sc, n, "hub"); err == nil {
			t.Error("device certificate claiming role hub was accepted")
		}
		if !rf.has("claims node") || !rf.has("claims role") {
			t.Errorf("refusals not reported: %v", rf.list)
		}
	})

	t.Run("no client certificate", func(t *testing.T) {
		c := dev.Client("hub")
		c.Certificates = nil
		cerr, serr, _ := handshake(t, c, hub)
		if cerr == nil || serr == nil {
			t.Fatalf("a client without a certificate was accepted (client %v, server %v)", cerr, serr)
		}
	})

	t.Run("another cluster's CA", func(t *testing.T) {
		other := pki(t, "acme") // same cluster name, another CA
		node(t, other, "intruder", "device")
		cerr, serr, _ := handshake(t, attacker(t, other, "intruder"), hub)
		if cerr == nil || serr == nil || !errors.Is(serr, ErrRefused) {
			t.Fatalf("another CA's certificate accepted (client %v, server %v)", cerr, serr)
		}
		if !rf.has("not signed by this cluster's CA") {
			t.Errorf("refusal not logged: %v", rf.list)
		}
		// A verifying node of the other CA refuses the hub too.
		var orf refusals
		in := load(t, other, "intruder", "acme", &orf)
		if cerr, _, _ := handshake(t, in.Client("hub"), hub); cerr == nil || !orf.has("not signed by this cluster's CA") {
			t.Errorf("client side: %v, refusals %v", cerr, orf.list)
		}
	})

	t.Run("another cluster name", func(t *testing.T) {
		other := pki(t, "other")
		node(t, other, "x", "device")
		// Trust both CAs so that only the cluster name differs.
		both := filepath.Join(t.TempDir(), "both.crt")
		a, _ := os.ReadFile(filepath.Join(dir, CACertFile))
		b, _ := os.ReadFile(filepath.Join(other, CACertFile))
		os.WriteFile(both, append(a, b...), 0o644)
		var r2 refusals
		hub2, err := LoadTLS(TLSOptions{CAFile: both, CertFile: filepath.Join(dir, "hub.crt"), KeyFile: filepath.Join(dir, "hub.key"), Cluster: "acme", OnRefused: r2.add})
		if err != nil {
			t.Fatal(err)
		}
		_, serr, _ := handshake(t, attacker(t, other, "x"), hub2)
		if serr == nil || !r2.has(`for cluster "other"`) {
			t.Fatalf("certificate of another cluster accepted: %v %v", serr, r2.list)
		}
	})

	t.Run("expired", func(t *testing.T) {
		node(t, dir, "old", "device", func(o *CertOptions) {
			o.Now = time.Now().Add(-48 * time.Hour)
			o.Validity = 24 * time.Hour
		})
		// LoadTLS refuses an expired own certificate.
		if _, err := LoadTLS(TLSOptions{CAFile: filepath.Join(dir, CACertFile), CertFile: filepath.Join(dir, "old.crt"), KeyFile: filepath.Join(dir, "old.key"), Cluster: "acme"}); err == nil || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("LoadTLS with an expired certificate: %v", err)
		}
		// A peer presenting one is refused.
		_, serr, _ := handshake(t, attacker(t, dir, "old"), hub)
		if serr == nil || !rf.has("expired") {
			t.Fatalf("expired certificate accepted: %v %v", serr, rf.list)
		}
	})

	t.Run("revoked, list reloaded without restart", func(t *testing.T) {
		id := node(t, dir, "lost", "device")
		lost := load(t, dir, "lost", "acme", &rf)
		if cerr, serr, _ := handshake(t, lost.Client("hub"), hub); cerr != nil || serr != nil {
			t.Fatalf("before revocation: %v %v", cerr, serr)
		}
		f, err := os.OpenFile(filepath.Join(dir, RevokedFile), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("serial=" + SerialString(id.Serial) + "  # lost tablet\n")
		f.Close()
		_, serr, _ := handshake(t, lost.Client("hub"), hub)
		if serr == nil || !rf.has("is revoked") {
			t.Fatalf("revoked certificate accepted after the list changed: %v %v", serr, rf.list)
		}
		// Others still get in.
		if cerr, serr, _ := handshake(t, dev.Client("hub"), hub); cerr != nil || serr != nil {
			t.Fatalf("a valid device after a revocation: %v %v", cerr, serr)
		}
	})
}

func TestParseRevoked(t *testing.T) {
	set, err := ParseRevoked([]byte("# c\n0a:1B\nserial=FF\n\n  10 # x\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"A1B", "FF", "10"} {
		if !set[s] {
			t.Errorf("%s missing from %v", s, set)
		}
	}
	if _, err := ParseRevoked([]byte("zz\n")); err == nil {
		t.Error("a non-hex serial was accepted")
	}
}

func TestIdentityAllows(t *testing.T) {
	id := Identity{ID: 0xabcd123400000000, Bits: 32}
	for n, want := range map[uint64]bool{0xabcd1234deadbeef: true, 0xabcd123400000001: true, 0xabcd1235deadbeef: false, 0: false} {
		if id.Allows(n) != want {
			t.Errorf("Allows(%x) = %v", n, !want)
		}
	}
	exact := Identity{ID: 42, Bits: 64}
	if !exact.Allows(42) || exact.Allows(43) {
		t.Error("64-bit binding")
	}
	for range 50 {
		n, err := id.NewNodeID()
		if err != nil || !id.Allows(n) {
			t.Fatalf("NewNodeID %x %v", n, err)
		}
	}
}

func TestKeyringFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyring")
	k1, _ := NewGossipKey()
	b1, _ := ParseGossipKey(k1)
	if err := WriteKeyring(path, b1, nil); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadKeyring(path)
	if err != nil || len(keys) != 1 || len(keys[0]) != 32 {
		t.Fatalf("ReadKeyring: %v %v", keys, err)
	}
	k2, _ := NewGossipKey()
	b2, _ := ParseGossipKey(k2)
	if err := WriteKeyring(path, b2, keys); err != nil {
		t.Fatal(err)
	}
	got, err := ReadKeyring(path)
	if err != nil || len(got) != 2 || !bytes.Equal(got[0], b2) || !bytes.Equal(got[1], keys[0]) {
		t.Fatalf("after rewrite: %v %v", got, err)
	}
	os.Chmod(path, 0o644)
	if _, err := ReadKeyring(path); err == nil {
		t.Error("a world-readable keyring was accepted")
	}
	for _, bad := range []string{"", "# only a comment\n", "not-base64!\n", "AAAA\n"} {
		if _, err := ParseKeyring([]byte(bad)); err == nil {
			t.Errorf("keyring %q accepted", bad)
		}
	}
}
