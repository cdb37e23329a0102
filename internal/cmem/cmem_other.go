//go:build !(cgo && linux)

package cmem

// Supported reports whether this process's malloc is glibc's (cgo on
// Linux): never here, where Pebble allocates Go memory.
func Supported() bool { return false }

// LimitArenas does nothing without glibc's malloc.
func LimitArenas(int) bool { return false }

// Trim does nothing without glibc's malloc.
func Trim() bool { return false }

// ReadStats has no figures without glibc's malloc.
func ReadStats() (Stats, bool) { return Stats{}, false }
