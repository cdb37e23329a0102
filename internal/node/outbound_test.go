package node

import (
	"testing"
	"time"

	"github.com/replicad/replicad/replication"
)

// TestOutboundBounded: a node that never syncs with a hub keeps a bounded
// number of marks however many writes it makes, still counts every write
// pending, and never takes a write as delivered by a session attempted
// before the write.
func TestOutboundBounded(t *testing.T) {
	o := NewOutbound(0)
	const n = 3 * maxMarks
	var cut time.Time
	for seq := uint64(1); seq <= n; seq++ {
		if seq == n/2 {
			cut = time.Now()
		}
		o.Wrote(seq)
		if len(o.marks) > maxMarks {
			t.Fatalf("%d marks after %d writes", len(o.marks), seq)
		}
	}
	if p := o.Pending(); p != n {
		t.Fatalf("pending %d, want %d", p, n)
	}
	// A session with a hub attempted before write n/2 was made.
	o.Observe([]replication.PartnerStatus{{Role: "hub", LastAttempt: cut, LastSuccess: cut}})
	if o.delivered >= n/2 {
		t.Fatalf("delivered %d: writes made after the session counted as delivered", o.delivered)
	}
	later := time.Now()
	o.Observe([]replication.PartnerStatus{{Role: "hub", LastAttempt: later, LastSuccess: later}})
	if p := o.Pending(); p != 0 || len(o.marks) != 0 {
		t.Fatalf("after a later session: pending %d, %d marks", p, len(o.marks))
	}
}
