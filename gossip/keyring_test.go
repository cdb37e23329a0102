package gossip

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// TestKeyRotation rotates the gossip key of a running 3-node cluster the
// documented way (install the new key everywhere, use it everywhere,
// remove the old one) and checks that broadcasts flow at every step, that
// afterwards a node holding only the old key is not admitted, and that a
// node given only the new key is.
func TestKeyRotation(t *testing.T) {
	k1, k2 := []byte("0123456789abcdef0123456789abcdef"), []byte("fedcba9876543210fedcba9876543210")
	c := newCluster(t, nil)
	var rings []*memberlist.Keyring
	for i := range 3 {
		kr, err := memberlist.NewKeyring(nil, k1)
		if err != nil {
			t.Fatal(err)
		}
		rings = append(rings, kr)
		var join []int
		if i > 0 {
			join = []int{0}
		}
		c.add(func(cfg *Config) { cfg.Keyring = kr }, join...)
	}
	waitFor(t, 10*time.Second, "3 keyed nodes to converge", func() bool { return converged(c.nodes) })
	if got, want := c.nodes[0].MaxPayload(), MaxBroadcastSize-encryptionReserve; got != want {
		t.Errorf("MaxPayload with a keyring = %d, want %d", got, want)
	}
	step := 0
	check := func(what string) {
		t.Helper()
		step++
		for i, n := range c.nodes {
			msg := fmt.Sprintf("step%d-from%d", step, i)
			if err := n.Broadcast(fmt.Sprintf("k%d", i), []byte(msg)); err != nil {
				t.Fatal(err)
			}
			for j, m := range c.nodes {
				if j != i {
					waitFor(t, 5*time.Second, what+": "+msg+" at node "+fmt.Sprint(j), func() bool { return m.hasMsg(n.Name() + ":" + msg) })
				}
			}
		}
		if !converged(c.nodes) {
			t.Fatalf("%s: cluster not converged", what)
		}
	}
	check("before rotation")
	for _, kr := range rings {
		if err := kr.AddKey(k2); err != nil {
			t.Fatal(err)
		}
	}
	check("new key installed")
	// Switch primaries one node at a time: the others still accept both.
	for i, kr := range rings {
		if err := kr.UseKey(k2); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("new key used on %d node(s)", i+1))
	}
	for _, kr := range rings {
		if err := kr.RemoveKey(k1); err != nil {
			t.Fatal(err)
		}
		if got := len(kr.GetKeys()); got != 1 {
			t.Fatalf("keyring holds %d keys after removal", got)
		}
	}
	check("old key removed")

	// A node with only the old key is not admitted any more.
	refused := strings.Count(c.nodes[0].log.String(), "no installed keys could decrypt")
	old := c.add(func(cfg *Config) { cfg.SecretKey = k1 }, 0)
	// Positive signal first: node 0 failed to decrypt two of its join
	// attempts (memberlist logs each), then it is not in the cluster.
	waitFor(t, 10*time.Second, "two join attempts with the removed key refused", func() bool {
		return strings.Count(c.nodes[0].log.String(), "no installed keys could decrypt") >= refused+2
	})
	if s := c.nodes[0].stateOf(old.Name()); s == StateAlive {
		t.Errorf("node with the removed key is %v in the cluster", s)
	}
	// One with the new key is.
	kr, _ := memberlist.NewKeyring(nil, k2)
	nw := c.add(func(cfg *Config) { cfg.Keyring = kr }, 0)
	waitFor(t, 10*time.Second, "a node with the new key to be admitted", func() bool { return c.nodes[0].stateOf(nw.Name()) == StateAlive })
}

func TestKeyringWithoutPrimaryRefused(t *testing.T) {
	cfg := baseConfig(nodeName(0))
	cfg.Keyring = &memberlist.Keyring{}
	if _, err := New(cfg); err == nil {
		t.Fatal("a keyring without a primary key was accepted")
	}
}
