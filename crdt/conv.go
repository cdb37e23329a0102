package crdt

import "github.com/replicad/replicad/hlc"

func nodeID(u uint64) hlc.NodeID { return hlc.NodeID(u) }
func ts(u uint64) hlc.Timestamp  { return hlc.Timestamp(u) }
