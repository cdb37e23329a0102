// Package replicaseam hands replicad's own packages the internals of a
// replica.Replica that its public API does not show: its node (the
// store, the write pipeline, the record views the HTTP API renders).
// Package replica sets Node when it is loaded; nothing else does.
package replicaseam

import "github.com/replicad/replicad/internal/node"

// Node returns the node of r, a *replica.Replica (nil for anything
// else, or when package replica is not linked).
var Node func(r any) *node.Node = func(any) *node.Node { return nil }
