package secure

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testGrant(cluster string, issuer uint64, now time.Time) Grant {
	return Grant{Cluster: cluster, Rule: "technicians", Nodes: []string{"a1b2c3d400000000/32"},
		Write: []string{"jobs:status", "timesheets"}, Read: []string{"jobs"}, ReadSet: true,
		IssuedMs: now.UnixMilli(), ExpiresMs: now.Add(DefaultGrantValidity).UnixMilli(), Issuer: issuer}
}

// signRaw signs any statement with tl's key, bypassing SignGrant's checks
// (what a forger holding that key could do).
func signRaw(t *testing.T, tl *TLS, g Grant) []byte {
	t.Helper()
	st, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := tl.cert.PrivateKey.(*ecdsa.PrivateKey).Sign(rand.Reader, grantDigest(st), crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	b, err := (&SignedGrant{Statement: st, Sig: sig, Chain: tl.cert.Certificate}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGrantSignVerify(t *testing.T) {
	dir := pki(t, "acme")
	hubID := node(t, dir, "hub", "hub")
	node(t, dir, "dev", "device")
	node(t, dir, "hub2", "hub")
	rf := &refusals{}
	hub := load(t, dir, "hub", "acme", rf)
	dev := load(t, dir, "dev", "acme", rf)
	now := time.Now()
	g := testGrant("acme", hubID.ID|1, now)
	b, err := hub.SignGrant(g)
	if err != nil {
		t.Fatal(err)
	}

	// A device verifies it (anyone holding the CA can).
	got, signer, err := dev.VerifyGrant(b, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if signer.Name != "hub" || got.Rule != "technicians" || !got.ReadSet || strings.Join(got.Write, ",") != "jobs:status,timesheets" || got.Issuer != hubID.ID|1 {
		t.Fatalf("verified grant %+v signer %+v", got, signer)
	}

	// Another CA of the same cluster name.
	other := pki(t, "acme")
	node(t, other, "hub", "hub")
	otherHub := load(t, other, "hub", "acme", &refusals{})
	ob, err := otherHub.SignGrant(testGrant("acme", otherHubID(t, otherHub), now))
	if err != nil {
		t.Fatal(err)
	}

	// A device's certificate cannot sign through SignGrant, and a grant
	// it signed anyway is refused.
	devID := dev.Self()
	if _, err := dev.SignGrant(testGrant("acme", devID.ID|1, now)); err == nil {
		t.Fatal("a device signed a grant")
	}
	devSigned := signRaw(t, dev, testGrant("acme", devID.ID|1, now))

	// A statement for another cluster, signed with this cluster's hub key.
	wrongCluster := signRaw(t, hub, testGrant("other", hubID.ID|1, now))
	// An issuer the signer's certificate does not bind.
	wrongIssuer := signRaw(t, hub, testGrant("acme", 0x42, now))

	// Tampered: the statement says "write everything" after signing.
	sg, err := DecodeGrant(b)
	if err != nil {
		t.Fatal(err)
	}
	sg.Statement = bytes.Replace(sg.Statement, []byte(`"jobs:status"`), []byte(`"jobs"`), 1)
	tampered, _ := sg.Encode()
	// Tampered signature.
	sg, _ = DecodeGrant(b)
	sg.Sig[len(sg.Sig)-1] ^= 1
	badSig, _ := sg.Encode()
	// Another hub's chain attached to this hub's signature.
	sg, _ = DecodeGrant(b)
	sg.Chain = load(t, dir, "hub2", "acme", rf).cert.Certificate
	swapped, _ := sg.Encode()

	cases := []struct {
		name string
		b    []byte
		at   time.Time
		want string
	}{
		{"expired", b, now.Add(DefaultGrantValidity + time.Second), "expired"},
		{"not yet valid", b, now.Add(-time.Hour), "not valid before"},
		{"other CA", ob, now, "not signed by this cluster's CA"},
		{"device signer", devSigned, now, "not hub"},
		{"wrong cluster", wrongCluster, now, "for cluster \"other\""},
		{"issuer not bound", wrongIssuer, now, "not bound by the signer's certificate"},
		{"tampered statement", tampered, now, "bad signature"},
		{"tampered signature", badSig, now, "bad signature"},
		{"swapped chain", swapped, now, "bad signature"},
		{"garbage", []byte("{"), now, "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := dev.VerifyGrant(c.b, c.at)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}

	// A verifier of another cluster refuses it.
	dir2 := pki(t, "globex")
	node(t, dir2, "d", "device")
	if _, _, err := load(t, dir2, "d", "globex", &refusals{}).VerifyGrant(b, now); err == nil {
		t.Fatal("another cluster's node accepted the grant")
	}

	// Revoking the signer's certificate refuses its grants (the list is
	// re-read when it changes).
	if err := os.WriteFile(filepath.Join(dir, RevokedFile), []byte(SerialString(hubID.Serial)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(filepath.Join(dir, RevokedFile), future, future)
	if _, _, err := dev.VerifyGrant(b, now); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked signer: %v", err)
	}
}

func otherHubID(t *testing.T, tl *TLS) uint64 {
	t.Helper()
	n, err := tl.Self().NewNodeID()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestGrantForm(t *testing.T) {
	now := time.Now()
	ok := testGrant("acme", 7, now)
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(g *Grant){
		"no nodes":       func(g *Grant) { g.Nodes = nil },
		"bad node":       func(g *Grant) { g.Nodes = []string{"xyz"} },
		"bad bits":       func(g *Grant) { g.Nodes = []string{"ab/65"} },
		"bad entry":      func(g *Grant) { g.Write = []string{"jobs:"} },
		"no issuer":      func(g *Grant) { g.Issuer = 0 },
		"backwards":      func(g *Grant) { g.ExpiresMs = g.IssuedMs },
		"too long":       func(g *Grant) { g.ExpiresMs = g.IssuedMs + MaxGrantValidity.Milliseconds() + 1 },
		"read w/o set":   func(g *Grant) { g.ReadSet = false },
		"empty rule":     func(g *Grant) { g.Rule = "" },
		"empty cluster":  func(g *Grant) { g.Cluster = "" },
		"colon in field": func(g *Grant) { g.Read = []string{"a:b:c"} },
	} {
		g := testGrant("acme", 7, now)
		mut(&g)
		if err := g.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Unknown statement fields are refused (a verifier must understand
	// everything it was told to enforce).
	st := []byte(`{"cluster":"acme","rule":"r","nodes":["1"],"write":[],"issued_ms":1,"expires_ms":2,"issuer":1,"admin":true}`)
	b, _ := (&SignedGrant{Statement: st, Sig: []byte{1}, Chain: [][]byte{{1}}}).Encode()
	if _, err := DecodeGrant(b); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("unknown field: %v", err)
	}
}
