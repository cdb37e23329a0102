package node

import (
	"testing"

	"github.com/replicad/replicad/store"
)

// TestSyncErrorViewTime: an entry's time is shown as stored; an entry
// stored without one (older versions) shows no time, not 1970.
func TestSyncErrorViewTime(t *testing.T) {
	if got := SyncErrorView(&store.SyncError{Time: 1765000000123}).Time; got != "2025-12-06T05:46:40.123Z" {
		t.Errorf("time = %q", got)
	}
	if got := SyncErrorView(&store.SyncError{}).Time; got != "" {
		t.Errorf("an entry without a time shows %q, want \"\"", got)
	}
}

// TestSyncErrorKind: entries carry their kind; an entry stored or
// mirrored by an older version (no kind) gets the one its policy gives.
func TestSyncErrorKind(t *testing.T) {
	for _, c := range []struct{ kind, policy, want string }{
		{"", "lww", KindOverridden},
		{"", "client-wins", KindOverridden},
		{"", "server-wins", KindRejected},
		{"", "permission", KindRejected},
		{"", "system", KindRejected}, // authz.SystemPolicy
		{KindRejected, "client-wins", KindRejected},
		{KindOverridden, "server-wins", KindOverridden},
	} {
		if got := SyncErrorView(&store.SyncError{Kind: c.kind, Policy: c.policy}).Kind; got != c.want {
			t.Errorf("kind %q policy %q: %q, want %q", c.kind, c.policy, got, c.want)
		}
	}
}
