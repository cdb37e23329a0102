package replica

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/hlc"
	"github.com/replicad/replicad/replication"
	"github.com/replicad/replicad/secure"
	"github.com/replicad/replicad/store"
)

// testPKI is a cluster CA (cluster DefaultClusterID) in a temporary
// directory.
func testPKI(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := secure.CreateCA(secure.CAOptions{Dir: dir, Cluster: DefaultClusterID}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// nodeTLS issues a node certificate (for 127.0.0.1) and returns the
// mutual-TLS configuration an embedder gives Config.TLS. nodeID 0: a
// random prefix, as `replicad tls cert create` binds.
func nodeTLS(t *testing.T, pki, name, role string, nodeID uint64) *tls.Config {
	t.Helper()
	if _, _, err := secure.CreateNodeCert(secure.CertOptions{Dir: pki, Name: name, Role: role, NodeID: nodeID, Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, name+".crt"), filepath.Join(pki, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := secure.ReadCertFile(filepath.Join(pki, secure.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS13}
}

// With Config.TLS, sessions run over mutual TLS; a replica without the
// certificates cannot sync with it.
func TestTLS(t *testing.T) {
	ctx := context.Background()
	pki := testPKI(t)
	hub := open(t, Config{Role: "hub", SyncAddr: "127.0.0.1:0", TLS: nodeTLS(t, pki, "hub", "hub", 0)})
	dev := open(t, Config{Hubs: []string{hub.SyncAddr()}, TLS: nodeTLS(t, pki, "dev", "device", 0)})
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

// A peer holding a valid certificate of the cluster is refused when it
// claims a node id or a role its certificate does not bind: the hub
// checks the sync handshake's claims against the certificate, as the
// agent does. The peer here is a bare replication engine (a replica
// refuses such a configuration itself).
func TestTLSPeerIdentity(t *testing.T) {
	ctx := context.Background()
	pki := testPKI(t)
	hub := open(t, Config{Role: "hub", SyncAddr: "127.0.0.1:0", TLS: nodeTLS(t, pki, "hub", "hub", 0)})
	bound := uint64(0x1111_2222_3333_4444)
	devTLS := nodeTLS(t, pki, "dev", "device", bound)
	liar := func(node uint64, role string) error {
		st, err := store.Open(store.Options{Dir: t.TempDir(), NoSync: true, NodeID: hlc.NodeID(node)})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		e := replication.NewEngine(replication.Config{
			Local: replication.Local{Node: st.NodeID(), Cluster: DefaultClusterID, Role: role, Scope: replication.FullScope(),
				Clock: hlc.NewClock(nil, 0), Store: st},
			Dial: func(ctx context.Context, addr string) (net.Conn, error) {
				return (&tls.Dialer{Config: devTLS}).DialContext(ctx, "tcp", addr)
			},
		})
		defer e.Close()
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = e.SyncWith(sctx, hub.SyncAddr())
		return err
	}
	if err := liar(bound, "device"); err != nil {
		t.Fatalf("the certificate's own node id and role: %v", err)
	}
	if err := liar(bound+1, "device"); err == nil {
		t.Fatal("a peer claiming a node id its certificate does not bind synced")
	}
	if err := liar(bound, "hub"); err == nil {
		t.Fatal("a device's certificate synced claiming role hub")
	}
}

// An embedded replica's certificate binds its node id and role: a new
// store takes a node id it binds; a store it does not bind, a
// certificate of another role or without a replicad identity is refused.
func TestTLSOwnIdentity(t *testing.T) {
	pki := testPKI(t)
	devTLS := nodeTLS(t, pki, "dev", "device", 0)
	dev := open(t, Config{TLS: devTLS})
	id, err := secure.CertIdentity(mustLeaf(t, devTLS))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := hlc.ParseNodeID(dev.NodeID())
	if !id.Allows(uint64(n)) {
		t.Fatalf("new store's node id %s not bound by the certificate (%016x/%d)", dev.NodeID(), id.ID, id.Bits)
	}
	plainDir := t.TempDir()
	plain := open(t, Config{DataDir: plainDir})
	plain.Close()
	for name, cfg := range map[string]Config{
		"unbound store": {DataDir: plainDir, TLS: devTLS},
		"role":          {Role: "hub", TLS: devTLS},
		"cluster":       {ClusterID: "east", TLS: devTLS},
		"no identity":   {TLS: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{mustLeaf(t, nodeTLS(t, pki, "x", "device", 0)).Raw[:10]}}}}},
	} {
		if cfg.DataDir == "" {
			cfg.DataDir = t.TempDir()
		}
		r, err := Open(context.Background(), cfg)
		if err == nil {
			r.Close()
			t.Errorf("%s: opened", name)
		} else if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "TLS") {
			t.Errorf("%s: %v, want ErrInvalid naming TLS", name, err)
		}
	}
}

func mustLeaf(t *testing.T, c *tls.Config) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(c.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// Config.GossipKeys is a keyring: a replica whose primary key is new and
// one whose primary is old gossip as long as each holds the other's key
// (a rotation in progress); the device finds the hub as a partner.
func TestGossipKeyring(t *testing.T) {
	ctx := context.Background()
	k1, k2 := []byte(strings.Repeat("1", 32)), []byte(strings.Repeat("2", 32))
	hub := open(t, Config{Role: "hub", SyncAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", GossipKeys: [][]byte{k1, k2}})
	dev := open(t, Config{GossipAddr: "127.0.0.1:0", Join: []string{hub.GossipAddr()}, GossipKeys: [][]byte{k2, k1}})
	if err := dev.Put(ctx, "jobs", "j1", map[string]any{"a": 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		dev.Sync(ctx) // with every alive member, once gossip found the hub
		if _, err := hub.Get(ctx, "jobs", "j1"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the device's write never reached the hub over gossip with rotated keys")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err := Open(ctx, Config{DataDir: t.TempDir(), GossipAddr: "127.0.0.1:0", GossipKeys: [][]byte{[]byte("short")}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("a 5-byte gossip key: %v, want ErrInvalid", err)
	}
}
