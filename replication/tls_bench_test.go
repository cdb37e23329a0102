package replication

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/replicad/replicad/secure"
)

// benchTLS makes a cluster CA and two node certificates (hub, device) in
// a temporary directory and loads them as the agent does.
func benchTLS(b *testing.B) (hub, dev *secure.TLS) {
	dir := b.TempDir()
	if _, err := secure.CreateCA(secure.CAOptions{Dir: dir, Cluster: "bench"}); err != nil {
		b.Fatal(err)
	}
	load := func(name, role string) *secure.TLS {
		if _, _, err := secure.CreateNodeCert(secure.CertOptions{Dir: dir, Name: name, Role: role}); err != nil {
			b.Fatal(err)
		}
		t, err := secure.LoadTLS(secure.TLSOptions{
			CAFile: filepath.Join(dir, "ca.crt"), CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key"),
			RevokedFile: filepath.Join(dir, "revoked.txt"), Cluster: "bench",
		})
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	return load("hub", "hub"), load("dev", "device")
}

// BenchmarkCatchUpTLS is the catch-up of BenchmarkCatchUp (100,000 missed
// writes; 1,000,000 with -sync.big) over plain loopback TCP and over
// mutual TLS 1.3 (as the agent runs it: cluster certificates, the
// handshake included), alternately in the same run, after a warm-up: the cost of
// encrypting sync. go test ./replication -run '^$' -bench CatchUpTLS
// -benchtime 4x
func BenchmarkCatchUpTLS(b *testing.B) {
	n := 100_000
	if *flagBig {
		n = 1_000_000
	}
	b.StopTimer()
	hub := catchUpHub(b, n)
	hubTLS, devTLS := benchTLS(b)
	run := func(wrap bool) time.Duration {
		dev := openBenchNode(b, filepath.Join(b.TempDir(), "dev"), benchDevice, "device", false, false)
		dev.local.NoStateTransfer = true // the log streamed (state transfer: BenchmarkStateTransfer)
		defer dev.st.Close()
		ca, cb := tcpPair(b)
		var cd, ch net.Conn = ca, cb
		if wrap {
			cd = tls.Client(ca, devTLS.Client(cb.LocalAddr().String()))
			ch = tls.Server(cb, hubTLS.Server())
		}
		sd, sh := NewSession(dev.local, true), NewSession(hub.local, false)
		var wg sync.WaitGroup
		var ed, eh error
		wg.Add(2)
		t0 := time.Now()
		go func() { defer wg.Done(); ed = RunConn(context.Background(), cd, sd, ConnOptions{}) }()
		go func() { defer wg.Done(); eh = RunConn(context.Background(), ch, sh, ConnOptions{}) }()
		wg.Wait()
		el := time.Since(t0)
		if ed != nil || eh != nil {
			b.Fatalf("tls %v: device: %v; hub: %v", wrap, ed, eh)
		}
		if h := dev.st.HeldOf(benchOther); h.Contig != uint64(n) {
			b.Fatalf("tls %v: device holds %+v, want 1..%d", wrap, h, n)
		}
		return el
	}
	run(false) // warm the hub's caches: both variants read them warm
	var plain, enc time.Duration
	for i := range b.N {
		if i%2 == 0 { // alternate the order, so neither always runs first
			plain += run(false)
			enc += run(true)
		} else {
			enc += run(true)
			plain += run(false)
		}
	}
	k := float64(b.N)
	b.ReportMetric(plain.Seconds()/k, "plain-s")
	b.ReportMetric(enc.Seconds()/k, "tls-s")
	b.ReportMetric(enc.Seconds()/plain.Seconds(), "tls/plain")
	b.ReportMetric(float64(n)*k/enc.Seconds(), "tls-writes/s")
}
