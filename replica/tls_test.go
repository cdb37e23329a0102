package replica

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"
)

// selfSigned is a mutual-TLS configuration whose one certificate (for
// 127.0.0.1) is also its only CA.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "replica-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs: pool, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
}

// With Config.TLS, sessions run over mutual TLS; a replica without the
// certificates cannot sync with it.
func TestTLS(t *testing.T) {
	ctx := context.Background()
	tc := selfSigned(t)
	hub := open(t, Config{Role: "hub", SyncAddr: "127.0.0.1:0", TLS: tc})
	dev := open(t, Config{Hubs: []string{hub.SyncAddr()}, TLS: tc})
	if err := dev.Put(ctx, "jobs", "j1", map[string]any{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if err := dev.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if rec, err := hub.Get(ctx, "jobs", "j1"); err != nil || rec.Fields["a"] != int64(1) {
		t.Fatalf("over TLS: %+v %v", rec, err)
	}
	plain := open(t, Config{Hubs: []string{hub.SyncAddr()}})
	plain.Put(ctx, "jobs", "j2", map[string]any{"a": 2})
	if err := plain.Sync(ctx); err == nil {
		t.Fatal("a replica without TLS synced with a TLS hub")
	}
	if _, err := hub.Get(ctx, "jobs", "j2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the plain replica's write reached the hub: %v", err)
	}
}
