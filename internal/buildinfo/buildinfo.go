// Package buildinfo is what the binary says of itself (the metrics'
// replicad_build_info, the version peers see in the sync handshake).
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Build is what the binary says of itself: its module version ("devel"
// for a build from a checkout), the VCS revision it was built from (with
// "-dirty" for uncommitted changes) and the Go version.
type Build struct {
	Version, Revision, GoVersion string
}

func (b Build) String() string {
	if b.Revision == "" {
		return b.Version
	}
	return b.Version + " (" + b.Revision + ")"
}

// Get returns the running binary's Build (read once).
var Get = sync.OnceValue(func() Build {
	b := Build{Version: "devel", GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		b.Version = v
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
			if len(b.Revision) > 12 {
				b.Revision = b.Revision[:12]
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && b.Revision != "" {
		b.Revision += "-dirty"
	}
	return b
})
