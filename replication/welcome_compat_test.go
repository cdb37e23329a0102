package replication

import (
	"testing"

	"github.com/ugorji/go/codec"
)

// welcomeV4 is Welcome as protocol version 4 first defined it, before the
// trailing advertised addresses.
type welcomeV4 struct {
	//lint:ignore U1000 read by the codec: its toarray option
	_struct      bool `codec:",toarray"` //nolint:unused
	Proto        uint16
	Cluster      string
	Node         uint64
	Role         string
	Scope        Scope
	Refused      string
	RetryAfterMs uint32
	PhysMs       int64
	Assigned     *Scope
}

// TestWelcomeTrailingFieldsCompatible: a peer that predates the trailing
// fields of Welcome decodes a new one (ignoring them), and a new peer
// decodes an old one (with them empty); so they need no version bump.
func TestWelcomeTrailingFieldsCompatible(t *testing.T) {
	m := Msg{Welcome: &Welcome{Proto: ProtocolVersion, Cluster: "c", Node: 7, Role: "hub", PhysMs: 5,
		APIAddr: "127.0.0.1:7500", GossipAddr: "127.0.0.1:7502"}}
	data, err := EncodeMsg(m)
	if err != nil {
		t.Fatal(err)
	}
	var old welcomeV4
	if err := codec.NewDecoderBytes(data[1:], wireHandle).Decode(&old); err != nil {
		t.Fatalf("an old peer cannot decode a new Welcome: %v", err)
	}
	if old.Node != 7 || old.Role != "hub" || old.PhysMs != 5 {
		t.Fatalf("old peer read %+v", old)
	}
	var buf []byte
	if err := codec.NewEncoderBytes(&buf, wireHandle).Encode(&old); err != nil {
		t.Fatal(err)
	}
	back, err := DecodeMsg(append([]byte{byte(MsgWelcome)}, buf...))
	if err != nil {
		t.Fatalf("a new peer cannot decode an old Welcome: %v", err)
	}
	if w := back.Welcome; w.Node != 7 || w.APIAddr != "" || w.GossipAddr != "" {
		t.Fatalf("new peer read %+v", w)
	}
	got, err := DecodeMsg(data)
	if err != nil || got.Welcome.APIAddr != "127.0.0.1:7500" || got.Welcome.GossipAddr != "127.0.0.1:7502" {
		t.Fatalf("round trip: %+v %v", got.Welcome, err)
	}
}
