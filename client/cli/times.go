package cli

import (
	"strconv"
	"strings"
	"time"
)

// Times on a terminal are local RFC 3339 to the millisecond; JSON output
// keeps what the API sent (RFC 3339 UTC, and HLCs as WALL.LOGICAL).

const localTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// timeText renders an RFC 3339 time from the API in local time; anything
// else (empty, or a form it does not know) is returned as it is.
func timeText(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.Local().Format(localTimeLayout)
}

// hlcText renders a hybrid logical clock stamp ("WALL.LOGICAL", WALL in
// Unix milliseconds) as the local time of its wall clock; a nonzero
// logical counter, which orders stamps of the same millisecond, follows
// as "#N". A malformed stamp is returned as it is.
func hlcText(s string) string {
	w, l, ok := strings.Cut(s, ".")
	wall, err1 := strconv.ParseInt(w, 10, 64)
	logical, err2 := strconv.ParseUint(l, 10, 16)
	if !ok || err1 != nil || err2 != nil || wall < 0 {
		return s
	}
	out := time.UnixMilli(wall).Local().Format(localTimeLayout)
	if logical > 0 {
		out += " #" + strconv.FormatUint(logical, 10)
	}
	return out
}
