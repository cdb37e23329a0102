package metrics

import (
	"strings"
	"testing"

	"github.com/replicad/replicad/internal/cmem"
)

// TestCmemMetrics: the metrics export C malloc's figures where malloc has
// them (glibc with cgo), and none elsewhere.
func TestCmemMetrics(t *testing.T) {
	m := New(nil, Build{Version: "devel", GoVersion: "go1"})
	out := exposition(t, m)
	_, ok := cmem.ReadStats()
	for _, name := range []string{"replicad_c_malloc_inuse_bytes ", "replicad_c_malloc_free_bytes ", "replicad_c_malloc_mmap_bytes "} {
		if strings.Contains(out, "\n"+name) != ok {
			t.Errorf("malloc's figures available %v, but %q in the metrics: %v", ok, name, !ok)
		}
	}
}
