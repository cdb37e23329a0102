// Package msgp appends msgpack encodings of the few kinds the hot paths
// write by hand (unsigned integers, strings, byte strings, array headers,
// booleans), in the forms github.com/ugorji/go/codec reads, without
// reflection. It is pure: it only appends to byte slices.
package msgp
