package gossip

import (
	"errors"
	"fmt"
	"net"

	"github.com/hashicorp/memberlist"
	"github.com/ugorji/go/codec"
)

// Role says what a node is for.
type Role string

// The roles a node can advertise.
const (
	// RoleHub is a hub: a full replica that devices dial to sync.
	RoleHub Role = "hub"
	// RoleDevice is a field device: a partial replica, often offline.
	RoleDevice Role = "device"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r == RoleHub || r == RoleDevice }

// ProtocolVersion is the version of the replicad replication protocol this
// build speaks, advertised in every node's [Meta].
//
// Compatibility rule: two nodes talk to each other only if their protocol
// versions are compatible according to [Compatible], which for now means
// equal. Every incompatible change bumps ProtocolVersion. Meta is encoded as
// a msgpack array and decoders ignore trailing elements, so a compatible
// addition to Meta is a new field at the end, with no version bump.
const ProtocolVersion uint16 = 1

// Compatible reports whether nodes speaking protocol versions a and b may
// join the same cluster. The whole version is the major version for now,
// so they must be equal. Version 0 is never compatible (it is what an absent
// field decodes to).
func Compatible(a, b uint16) bool { return a != 0 && a == b }

// MetaMaxSize is the largest encoded [Meta] memberlist carries
// (memberlist.MetaMaxSize, 512 bytes).
const MetaMaxSize = memberlist.MetaMaxSize

// Limits on the fields of [Meta], so that any valid Meta fits MetaMaxSize.
const (
	maxClusterIDLen = 64
	maxSyncAddrLen  = 255
	maxAPIAddrLen   = 160
)

// Meta is the metadata every node advertises through memberlist.
//
// It is encoded as a msgpack array (see [Meta.Encode]) in field order; new
// fields may only be appended.
type Meta struct {
	// Role is what the node is for.
	Role Role
	// SyncAddr is the host:port the node's sync service listens on, or
	// empty if it accepts no sync connections (a device that only dials).
	SyncAddr string
	// ClusterID names the cluster; nodes of another cluster are refused.
	ClusterID string
	// Proto is the node's ProtocolVersion; incompatible nodes are refused.
	Proto uint16
	// APIAddr is the host:port of the node's HTTP API, or empty: devices
	// forward online reads to a hub's (appended field: older builds
	// ignore it).
	APIAddr string
}

// mh is the msgpack handle for Meta. It is configured here once and never
// changed afterwards (codec handles must not change after first use).
var mh = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{WriteExt: true}
	h.StructToArray = true
	h.Canonical = true
	return h
}()

// Errors returned when a Meta is invalid.
var (
	// ErrMetaTooLarge is returned when an encoded Meta exceeds MetaMaxSize.
	ErrMetaTooLarge = errors.New("gossip: meta too large")
)

// Validate checks m's fields: a known role, a non-empty cluster id of at most
// 64 bytes, sync and API addresses that are empty or host:port, a non-zero
// protocol version. It does not check compatibility with this build.
func (m Meta) Validate() error {
	if !m.Role.Valid() {
		return fmt.Errorf("gossip: meta: unknown role %q", m.Role)
	}
	if m.ClusterID == "" {
		return errors.New("gossip: meta: empty cluster id")
	}
	if len(m.ClusterID) > maxClusterIDLen {
		return fmt.Errorf("gossip: meta: cluster id longer than %d bytes", maxClusterIDLen)
	}
	if len(m.SyncAddr) > maxSyncAddrLen {
		return fmt.Errorf("gossip: meta: sync address longer than %d bytes", maxSyncAddrLen)
	}
	if m.SyncAddr != "" {
		if _, _, err := net.SplitHostPort(m.SyncAddr); err != nil {
			return fmt.Errorf("gossip: meta: sync address %q: %v", m.SyncAddr, err)
		}
	}
	if m.Proto == 0 {
		return errors.New("gossip: meta: protocol version 0")
	}
	if len(m.APIAddr) > maxAPIAddrLen {
		return fmt.Errorf("gossip: meta: api address longer than %d bytes", maxAPIAddrLen)
	}
	if m.APIAddr != "" {
		if _, _, err := net.SplitHostPort(m.APIAddr); err != nil {
			return fmt.Errorf("gossip: meta: api address %q: %v", m.APIAddr, err)
		}
	}
	return nil
}

// Encode validates m and encodes it as a msgpack array. It returns
// ErrMetaTooLarge (wrapped) if the encoding exceeds MetaMaxSize.
func (m Meta) Encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var b []byte
	if err := codec.NewEncoderBytes(&b, mh).Encode(&m); err != nil {
		return nil, fmt.Errorf("gossip: encode meta: %w", err)
	}
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMetaTooLarge, len(b), MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta decodes and validates a peer's meta. Its input is untrusted: it
// returns an error, never panics, on any malformed input, including trailing
// bytes after the array and input longer than MetaMaxSize. Extra trailing
// array elements (fields added by a newer compatible build) are ignored.
func DecodeMeta(b []byte) (m Meta, err error) {
	if len(b) == 0 {
		return Meta{}, errors.New("gossip: decode meta: empty")
	}
	if len(b) > MetaMaxSize {
		return Meta{}, fmt.Errorf("gossip: decode meta: %d bytes, limit %d", len(b), MetaMaxSize)
	}
	// The codec reports malformed input as errors; the recover is a second
	// line of defence for input it did not expect.
	defer func() {
		if r := recover(); r != nil {
			m, err = Meta{}, fmt.Errorf("gossip: decode meta: %v", r)
		}
	}()
	d := codec.NewDecoderBytes(b, mh)
	if err := d.Decode(&m); err != nil {
		return Meta{}, fmt.Errorf("gossip: decode meta: %w", err)
	}
	if n := d.NumBytesRead(); n != len(b) {
		return Meta{}, fmt.Errorf("gossip: decode meta: %d trailing bytes", len(b)-n)
	}
	if err := m.Validate(); err != nil {
		return Meta{}, err
	}
	return m, nil
}
