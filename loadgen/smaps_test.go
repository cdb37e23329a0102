package loadgen

import (
	"os"
	"strings"
	"testing"
)

// TestParseSmaps: file-backed mappings apart from anonymous ones (no path,
// or a bracketed name such as [heap]), memtable-sized ones (32 MiB and a
// page, two of them merged) among those; field lines are not mappings.
func TestParseSmaps(t *testing.T) {
	const smaps = `00400000-01504000 r-xp 00000000 fe:00 9978441                            /usr/bin/replicad
Size:              17416 kB
Rss:               16760 kB
Pss:               16760 kB
VmFlags: rd ex mr mw me
01b0a000-01d2b000 rw-p 00000000 00:00 0                                  [heap]
Size:               2180 kB
Rss:                2000 kB
24cbc5800000-24cbda400000 rw-p 00000000 00:00 0 
Size:             339968 kB
Rss:              204872 kB
7f35bc000000-7f35bd167000 rw-p 00000000 00:00 0 
Rss:               17820 kB
7faece7fc000-7faed27fe000 rw-p 00000000 00:00 0 
Rss:               39016 kB
7faed4000000-7faed6001000 rw-p 00000000 00:00 0 
Rss:                1000 kB
7ffd1000-7ffd2000 rw-p 00000000 00:00 0                                  [stack]
Rss:                 132 kB
`
	if os.Getpagesize() != 4096 {
		t.Skip("the sample is of 4 KiB pages")
	}
	p, err := parseSmaps(strings.NewReader(smaps), 32<<20)
	if err != nil {
		t.Fatal(err)
	}
	want := RSSParts{Total: (16760 + 2000 + 204872 + 17820 + 39016 + 1000 + 132) << 10, Anon: (2000 + 204872 + 17820 + 39016 + 1000 + 132) << 10,
		File: 16760 << 10, Memtables: (39016 + 1000) << 10}
	if p != want {
		t.Fatalf("parts %+v, want %+v", p, want)
	}
	if _, err := parseSmaps(strings.NewReader("Rss: 4 kB\n"), 0); err == nil {
		t.Error("an Rss line before any mapping was accepted")
	}
	// This process: the parts add up to the total, which is about VmRSS.
	self, err := ReadRSSParts(os.Getpid(), 0)
	if err != nil {
		t.Skip("no /proc/PID/smaps here:", err)
	}
	if self.Anon <= 0 || self.File <= 0 || self.Anon+self.File != self.Total {
		t.Errorf("this process: %+v", self)
	}
}
