package gossip

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// DefaultPort is the conventional gossip port (memberlist's).
const DefaultPort = 7946

// Profiles name a set of memberlist timings.
const (
	// ProfileLAN is memberlist's LAN profile, for devices on one LAN and
	// for hubs in one data centre. It is the default.
	ProfileLAN = "lan"
	// ProfileLocal is for tests and loopback: fast probes and gossip, so a
	// cluster converges in tens of milliseconds and a failed node is
	// declared dead in about a second.
	ProfileLocal = "local"
)

// Defaults for zero Config fields.
const (
	// DefaultRejoinInterval is how often seeds and lost members are
	// re-joined.
	DefaultRejoinInterval = 30 * time.Second
	// DefaultMaxQueue bounds the broadcast queue.
	DefaultMaxQueue = 256
)

// Config configures a Gossip node. New copies it; the caller may reuse it.
type Config struct {
	// Name is the node's id: 16 lower-case hex digits, not all zero (the
	// format of hlc.NodeID.String). Required.
	Name string

	// BindAddr is the IP to listen on; empty means all interfaces
	// (0.0.0.0), which requires AdvertiseAddr. Ignored with a Transport.
	BindAddr string
	// BindPort is the port to listen on (UDP and TCP); 0 picks a free
	// port. Use DefaultPort for the conventional one. Ignored with a
	// Transport.
	BindPort int

	// AdvertiseAddr is the IP peers reach this node at. If empty, BindAddr
	// is used when it is a specific IP, else the Transport's own address;
	// 0.0.0.0 and :: are refused, since peers cannot dial them.
	AdvertiseAddr string
	// AdvertisePort is the port peers reach this node at; 0 means the
	// bound port (or the Transport's).
	AdvertisePort int

	// Meta is advertised to every peer. Meta.Proto 0 means
	// ProtocolVersion. Its encoding must fit MetaMaxSize.
	Meta Meta

	// Join lists seed addresses (host:port) joined at start and re-joined
	// every RejoinInterval. Failing to join is logged, not fatal: a device
	// may start offline.
	Join []string

	// RejoinInterval is how often the seeds and recently seen members that
	// are not alive are re-joined, so partitions heal once dead nodes are
	// forgotten by memberlist. 0 means DefaultRejoinInterval; negative
	// disables the loop (Rejoin still works).
	RejoinInterval time.Duration

	// Logger receives this package's and memberlist's logs; nil means
	// hclog.Default().
	Logger hclog.Logger

	// Transport replaces the real UDP/TCP transport, e.g. with a
	// MemTransport or a FaultTransport in tests. New wraps it in a
	// GateTransport and owns it from then on: Shutdown shuts it down.
	Transport memberlist.NodeAwareTransport

	// Profile selects timings: ProfileLAN (default, "") or ProfileLocal.
	Profile string

	// OnMessage, if set, receives every broadcast and direct message:
	// from is the name of the node that sent it (the origin of a relayed
	// broadcast). It is called from one dedicated goroutine, in arrival
	// order, never under memberlist's locks; payload is the callee's.
	// If it falls behind by more than 1024 messages, newer ones are
	// dropped (counted in Stats.MessagesDropped).
	OnMessage func(from string, payload []byte)

	// OnMemberChange, if set, is told of joins, leaves (a Member whose
	// State is StateDead or StateLeft) and meta updates. It is called from
	// one dedicated goroutine, in order, with copies.
	OnMemberChange func(Member, EventKind)

	// MaxQueue bounds the broadcast queue; when it is full the oldest
	// broadcast is dropped. 0 means DefaultMaxQueue.
	MaxQueue int

	// SecretKey, if set, encrypts all gossip with AES-GCM (16, 24 or 32
	// bytes); every node of the cluster needs the same key. It lowers
	// MaxPayload.
	SecretKey []byte

	// Keyring, if set, encrypts all gossip with its primary key and
	// accepts messages under any of its keys, so keys can be rotated
	// without a restart: install the new key on every node
	// (Keyring.AddKey), make it primary everywhere (UseKey), then remove
	// the old one (RemoveKey). The caller keeps it and may change it while
	// the node runs. With SecretKey too, SecretKey becomes primary.
	Keyring *memberlist.Keyring
}

func validName(s string) bool {
	if len(s) != 16 || s == "0000000000000000" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// withDefaults returns a validated copy of c with defaults filled in.
func (c Config) withDefaults() (Config, error) {
	if !validName(c.Name) {
		return c, fmt.Errorf("gossip: node name %q: want 16 lower-case hex digits, not all zero", c.Name)
	}
	if c.Meta.Proto == 0 {
		c.Meta.Proto = ProtocolVersion
	}
	if _, err := c.Meta.Encode(); err != nil {
		return c, err
	}
	switch c.Profile {
	case "":
		c.Profile = ProfileLAN
	case ProfileLAN, ProfileLocal:
	default:
		return c, fmt.Errorf("gossip: unknown profile %q (want %q or %q)", c.Profile, ProfileLAN, ProfileLocal)
	}
	if c.RejoinInterval == 0 {
		c.RejoinInterval = DefaultRejoinInterval
	}
	if c.MaxQueue == 0 {
		c.MaxQueue = DefaultMaxQueue
	}
	if c.MaxQueue < 0 {
		return c, errors.New("gossip: negative MaxQueue")
	}
	if c.Logger == nil {
		c.Logger = hclog.Default()
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return c, fmt.Errorf("gossip: secret key of %d bytes: want 16, 24 or 32", len(c.SecretKey))
	}
	c.SecretKey = append([]byte(nil), c.SecretKey...)
	if c.Keyring != nil && len(c.Keyring.GetPrimaryKey()) == 0 {
		return c, errors.New("gossip: keyring without a primary key")
	}
	c.Join = append([]string(nil), c.Join...)
	if c.BindAddr == "" {
		c.BindAddr = "0.0.0.0"
	}
	if c.Transport == nil && net.ParseIP(c.BindAddr) == nil {
		return c, fmt.Errorf("gossip: bind address %q is not an IP", c.BindAddr)
	}
	if c.AdvertiseAddr != "" {
		ip := net.ParseIP(c.AdvertiseAddr)
		if ip == nil {
			return c, fmt.Errorf("gossip: advertise address %q is not an IP", c.AdvertiseAddr)
		}
		if ip.IsUnspecified() {
			return c, fmt.Errorf("gossip: advertise address %s: peers cannot reach an unspecified address; set AdvertiseAddr to this node's IP", c.AdvertiseAddr)
		}
	}
	return c, nil
}

// memberlistConfig returns a fresh memberlist config for c's profile
// (memberlist.Create mutates the config it is given; never share one).
func (c *Config) memberlistConfig() *memberlist.Config {
	var mc *memberlist.Config
	switch c.Profile {
	case ProfileLocal:
		mc = memberlist.DefaultLocalConfig()
		// Fast enough that tests converge in tens of milliseconds and
		// detect a failure in about a second, slow enough that 30 nodes
		// in one process under -race on 2 cores do not flap.
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 150 * time.Millisecond
		mc.GossipInterval = 50 * time.Millisecond
		mc.SuspicionMult = 3
		mc.SuspicionMaxTimeoutMult = 3
		mc.RetransmitMult = 3
		// LZW allocates a 256 KiB table per packet: CPU, not bandwidth,
		// is what loopback lacks (it made 30 nodes under -race flap).
		mc.EnableCompression = false
		mc.PushPullInterval = 2 * time.Second
		mc.GossipToTheDeadTime = 2 * time.Second
		mc.TCPTimeout = 2 * time.Second
		mc.DeadNodeReclaimTime = 500 * time.Millisecond
	default:
		mc = memberlist.DefaultLANConfig()
		// A node restarting on a new address (DHCP) may take its name
		// back after this long; memberlist's default 0 refuses forever.
		mc.DeadNodeReclaimTime = 30 * time.Second
	}
	return mc
}
