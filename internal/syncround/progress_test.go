package syncround

import (
	"context"
	"testing"

	"github.com/replicad/replicad/replication"
)

type fakeRounder struct {
	t      *testing.T
	p      *Progress
	failed []string
}

func (f fakeRounder) SyncNow(ctx context.Context, progress func(replication.Stats)) replication.Summary {
	progress(replication.Stats{WritesSent: 3})
	st := f.p.State()
	if !st.Running || st.Started == "" || st.Progress.WritesSent != 3 {
		f.t.Errorf("during the round: %+v", st)
	}
	return replication.Summary{Partners: 2, Succeeded: 2 - len(f.failed), Failed: f.failed, Stats: replication.Stats{WritesSent: 3}}
}

// Progress shows a round while it runs, with its figures so far; the
// summary says whether a partner failed and never has a nil Failed.
func TestProgress(t *testing.T) {
	p := &Progress{}
	if st := p.State(); st.Running || st.Started != "" {
		t.Fatalf("before any round: %+v", st)
	}
	sum, ok := p.Round(context.Background(), fakeRounder{t: t, p: p})
	if !ok || sum.Partners != 2 || sum.Succeeded != 2 || sum.Failed == nil || len(sum.Failed) != 0 || sum.Stats.WritesSent != 3 {
		t.Fatalf("round: %+v %v", sum, ok)
	}
	if st := p.State(); st.Running {
		t.Fatalf("after the round: %+v", st)
	}
	if sum, ok := p.Round(context.Background(), fakeRounder{t: t, p: p, failed: []string{"a: refused"}}); ok || len(sum.Failed) != 1 {
		t.Fatalf("failed round: %+v %v", sum, ok)
	}
}
