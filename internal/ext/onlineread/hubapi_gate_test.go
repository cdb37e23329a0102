package onlineread

import (
	"net"
	"strings"
	"testing"
)

// TestDeviceGate: an online read from a device needs it online and a
// known hub API; each refusal is a 503 saying how to fix it.
func TestDeviceGate(t *testing.T) {
	if base, err := DeviceGate(true, "http://hub:7400"); err != nil || base != "http://hub:7400" {
		t.Fatalf("online with a hub API: %q %v", base, err)
	}
	for _, c := range []struct {
		online bool
		base   string
		want   string
	}{{false, "http://hub:7400", "set offline"}, {true, "", "--hub-api"}} {
		_, err := DeviceGate(c.online, c.base)
		e, ok := err.(interface{ Status() int })
		if !ok || e.Status() != 503 || !strings.Contains(err.Error(), c.want) {
			t.Errorf("online %v base %q: %v, want a 503 naming %q", c.online, c.base, err, c.want)
		}
	}
}

// TestAdvertised: the bound address once listening, else the configured
// one unless its port is chosen at bind.
func TestAdvertised(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7401}
	if got := Advertised("127.0.0.1:0", bound); got != "127.0.0.1:7401" {
		t.Errorf("bound: %q", got)
	}
	if got := Advertised("127.0.0.1:0", nil); got != "" {
		t.Errorf("port 0 unbound: %q", got)
	}
	if got := Advertised("127.0.0.1:7400", nil); got != "127.0.0.1:7400" {
		t.Errorf("configured: %q", got)
	}
	if got := Advertised(strings.Repeat("a", 200)+":1", nil); got != "" {
		t.Errorf("over gossip's limit: %q", got)
	}
}
