package gossip

import (
	"math/rand"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestFaultNet checks loss (replayable from the seed), one-way blocks and
// the gate on a pair of in-memory transports.
func TestFaultNet(t *testing.T) {
	seed := testRand(t).Int63()
	run := func() (delivered int) {
		n := NewMemNetwork()
		f := NewFaultNet(rand.New(rand.NewSource(seed)))
		a, b := n.NewTransport(), n.NewTransport()
		fa := f.Wrap("a", a.Addr(), a)
		f.Wrap("b", b.Addr(), b)
		f.SetDropRate(0.3)
		for range 500 {
			if _, err := fa.WriteTo([]byte("p"), b.Addr()); err != nil {
				t.Fatal(err)
			}
		}
		if got := fa.Stats().PacketsSent.Load() + fa.Stats().PacketsDropped.Load(); got != 500 {
			t.Fatalf("counted %d packets, want 500", got)
		}
		return len(b.PacketCh())
	}
	d1, d2 := run(), run()
	if d1 != d2 || d1 < 300 || d1 > 400 {
		t.Errorf("delivered %d then %d of 500 at 30%% loss with one seed", d1, d2)
	}

	n := NewMemNetwork()
	f := NewFaultNet(rand.New(rand.NewSource(seed)))
	a, b := n.NewTransport(), n.NewTransport()
	fa, fb := f.Wrap("a", a.Addr(), a), f.Wrap("b", b.Addr(), b)
	f.Block("a", "b")
	_, _ = fa.WriteToAddress([]byte("x"), memberlist.Address{Addr: b.Addr(), Name: "b"})
	_, _ = fb.WriteTo([]byte("y"), a.Addr())
	if len(b.PacketCh()) != 0 || len(a.PacketCh()) != 1 {
		t.Errorf("one-way block: b got %d, a got %d packets; want 0 and 1", len(b.PacketCh()), len(a.PacketCh()))
	}
	if _, err := fb.DialTimeout(a.Addr(), time.Second); err == nil {
		t.Error("stream across a one-way block succeeded")
	}
	f.Heal()
	c, err := fb.DialTimeout(a.Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()

	// The gate: offline drops packets both ways and refuses dials.
	g := NewGateTransport(a)
	defer g.Shutdown()
	g.SetOnline(false)
	_, _ = g.WriteTo([]byte("z"), b.Addr())
	if _, err := g.DialTimeout(b.Addr(), time.Second); err != ErrOffline {
		t.Errorf("offline dial: %v", err)
	}
	if gs := g.Stats(); gs.OutDropped != 1 || gs.DialsRefused != 1 {
		t.Errorf("gate stats %+v", gs)
	}
}
