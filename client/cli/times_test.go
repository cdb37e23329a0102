package cli

import (
	"testing"
	"time"
)

func TestHLCAndTimeText(t *testing.T) {
	zone := time.FixedZone("X", 5*3600+1800)
	old := time.Local
	time.Local = zone
	defer func() { time.Local = old }()
	for _, c := range []struct{ in, want string }{
		{"1796611422599.0", "2026-12-07T08:13:42.599+05:30"},
		{"1796611422599.3", "2026-12-07T08:13:42.599+05:30 #3"},
		{"0.0", "1970-01-01T05:30:00.000+05:30"},
		{"garbage", "garbage"},
		{"12.x", "12.x"},
		{"", ""},
	} {
		if got := hlcText(c.in); got != c.want {
			t.Errorf("hlcText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"2026-12-07T04:13:42.599123Z", "2026-12-07T09:43:42.599+05:30"},
		{"", ""},
		{"never", "never"},
	} {
		if got := timeText(c.in); got != c.want {
			t.Errorf("timeText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
