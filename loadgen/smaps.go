package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// RSSParts is a process's resident memory split by the kind of mapping
// it lies in, from /proc/PID/smaps, in bytes.
type RSSParts struct {
	Total int64 // every mapping's Rss
	// Anon: anonymous memory: the Go runtime's heap and its other
	// memory, and C malloc's (its brk heap, its arenas, its mmap'd
	// large allocations) and thread stacks.
	Anon int64
	File int64 // file-backed mappings (the binary, shared libraries, mmap'd files)
	// Memtables: the anonymous mappings the size of one or a few
	// memtables (MemTableSize plus malloc's page; adjacent ones merge):
	// C malloc maps each of Pebble's memtables on its own, and its pages
	// become resident as the memtable fills. A lower bound: a memtable
	// the kernel merged with another neighbouring mapping is missed. Part
	// of Anon; 0 unless ReadRSSParts is given the memtable size.
	Memtables int64
}

// ReadRSSParts reads /proc/PID/smaps; memtable is the process's Pebble
// memtable size (0: none counted).
func ReadRSSParts(pid int, memtable int64) (RSSParts, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		return RSSParts{}, err
	}
	defer f.Close()
	return parseSmaps(f, memtable)
}

// parseSmaps sums the Rss of each mapping of an smaps file into its part:
// a mapping with a file path is file-backed, one without or named in
// brackets ([heap], [stack], ...) anonymous.
func parseSmaps(r io.Reader, memtable int64) (RSSParts, error) {
	var p RSSParts
	mapped := memtable + int64(os.Getpagesize()) // what malloc maps for one
	memtableSized := func(lo, hi string) bool {
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		n := int64(b - a)
		return memtable > 0 && err1 == nil && err2 == nil && n%mapped == 0 && n/mapped >= 1 && n/mapped <= 4
	}
	inMemtable := false
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var part *int64
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "Rss:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return p, fmt.Errorf("smaps: %q: %w", line, err)
			}
			if part == nil {
				return p, fmt.Errorf("smaps: Rss before any mapping")
			}
			*part += kb << 10
			p.Total += kb << 10
			if inMemtable {
				p.Memtables += kb << 10
			}
			continue
		}
		// A mapping's header: "start-end perms offset dev inode [path]";
		// the lines of its fields are "Name: value".
		fields := strings.Fields(line)
		if len(fields) < 5 || strings.HasSuffix(fields[0], ":") || !strings.Contains(fields[0], "-") {
			continue
		}
		lo, hi, _ := strings.Cut(fields[0], "-")
		if len(fields) >= 6 && !strings.HasPrefix(fields[5], "[") {
			part, inMemtable = &p.File, false
		} else {
			part, inMemtable = &p.Anon, len(fields) == 5 && memtableSized(lo, hi)
		}
	}
	return p, sc.Err()
}
