package agent

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// build is what the binary says of itself: its module version ("devel"
// for a build from a checkout), the VCS revision it was built from (with
// "-dirty" for uncommitted changes) and the Go version.
type build struct {
	Version, Revision, GoVersion string
}

func (b build) String() string {
	if b.Revision == "" {
		return b.Version
	}
	return b.Version + " (" + b.Revision + ")"
}

var buildVersion = sync.OnceValue(func() build {
	b := build{Version: "devel", GoVersion: runtime.Version()}
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
