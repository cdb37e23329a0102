package agent

import (
	"testing"

	"github.com/replicad/replicad/store"
)

// TestSyncErrorViewTime: an entry's time is shown as stored; an entry
// stored without one (older versions) shows no time, not 1970.
func TestSyncErrorViewTime(t *testing.T) {
	if got := syncErrorView(&store.SyncError{Time: 1765000000123}).Time; got != "2025-12-06T05:46:40.123Z" {
		t.Errorf("time = %q", got)
	}
	if got := syncErrorView(&store.SyncError{}).Time; got != "" {
		t.Errorf("an entry without a time shows %q, want \"\"", got)
	}
}
