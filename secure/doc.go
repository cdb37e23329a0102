// Package secure holds replicad's security mechanisms that are not merge
// rules: the local API's bearer token, the cluster's certificate authority
// and node certificates (mutual TLS for sync streams and the hub's API, the
// node id bound to the certificate, a revocation list re-read when it
// changes), and gossip encryption keys (a keyring file for memberlist).
//
// It is a library: it depends on the standard library and hlc only; the
// agent wires it in, and cmd/replicad's `replicad tls ...` calls it.
package secure
