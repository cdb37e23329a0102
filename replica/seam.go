package replica

import (
	"github.com/replicad/replicad/internal/node"
	"github.com/replicad/replicad/internal/replicaseam"
)

func init() {
	replicaseam.Node = func(x any) *node.Node {
		if r, ok := x.(*Replica); ok {
			return r.n
		}
		return nil
	}
}
