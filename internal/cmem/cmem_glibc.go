//go:build cgo && linux

package cmem

/*
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

static int cmem_supported(void) {
#ifdef __GLIBC__
	return 1;
#else
	return 0;
#endif
}

static int cmem_arena_max(int n) {
#ifdef __GLIBC__
	return mallopt(M_ARENA_MAX, n);
#else
	return 0;
#endif
}

static int cmem_trim(void) {
#ifdef __GLIBC__
	return malloc_trim(0);
#else
	return 0;
#endif
}

// cmem_stats fills out[0..4]: arena, in use, free, mmap'd, releasable.
static int cmem_stats(long long *out) {
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 33)
	struct mallinfo2 mi = mallinfo2();
	out[0] = (long long)mi.arena;
	out[1] = (long long)mi.uordblks;
	out[2] = (long long)mi.fordblks;
	out[3] = (long long)mi.hblkhd;
	out[4] = (long long)mi.keepcost;
	return 1;
#else
	return 0;
#endif
}
*/
import "C"

// Supported reports whether this process's malloc is glibc's (cgo on
// Linux), which the other functions act on.
func Supported() bool { return C.cmem_supported() == 1 }

// LimitArenas caps the number of malloc arenas at n (mallopt
// M_ARENA_MAX): a thread without an arena then shares one instead of
// making a new one. Arenas made before stay (a Go process with cgo has a
// few by the time main runs: each thread that called malloc made one).
// It returns false when malloc is not glibc's.
func LimitArenas(n int) bool { return C.cmem_arena_max(C.int(n)) == 1 }

// Trim returns the free memory of every malloc arena to the OS, whole
// free pages inside the arenas included (malloc_trim(0)), and reports
// whether any was returned.
func Trim() bool { return C.cmem_trim() == 1 }

// ReadStats returns malloc's figures, ok false when unavailable (not
// glibc, or glibc before 2.33). It walks every arena's free lists.
func ReadStats() (s Stats, ok bool) {
	var out [5]C.longlong
	if C.cmem_stats(&out[0]) != 1 {
		return Stats{}, false
	}
	return Stats{Arena: int64(out[0]), InUse: int64(out[1]), Free: int64(out[2]), Mapped: int64(out[3]), Releasable: int64(out[4])}, true
}
