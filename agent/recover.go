package agent

import (
	"context"
	"time"

	"github.com/replicad/replicad/internal/httpapi"
)

var errRecovering = httpapi.ErrRecovering

// Recovery from a failed store. After an I/O error on a write (a full
// disk, say) the store refuses everything (store.ErrFailed): the write
// that failed was not acknowledged, and nothing later is. The agent then
// closes the replica and opens it again, every storeRecoverEvery, until
// it opens (space has returned); meanwhile the API answers 503. What was
// acknowledged is in the store's WAL and comes back with it.

const storeRecoverEvery = 2 * time.Second

func (a *Agent) watchStore(ctx context.Context) {
	t := time.NewTicker(storeRecoverEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.RLock()
		rep := a.rep
		var failed error
		if rep != nil {
			failed = rep.store.Failed()
		}
		a.mu.RUnlock()
		if rep != nil && failed == nil {
			continue
		}
		a.recoverStore(failed)
	}
}

// recoverStore reopens the replica of a failed store (or retries opening
// one that could not be reopened).
func (a *Agent) recoverStore(cause error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rep != nil {
		if a.rep.store.Failed() == nil {
			return
		}
		a.log.Error("the store failed; reopening it", "error", cause)
		a.rep.close()
		a.rep = nil
		a.recovering = true
	}
	if !a.recovering {
		return // a reset owns the nil replica
	}
	rp, err := a.openReplica()
	if err != nil {
		a.log.Warn("reopening the store failed; retrying", "error", err, "every", storeRecoverEvery)
		return
	}
	rp.start()
	a.rep = rp
	a.recovering = false
	a.log.Info("store reopened", "node", rp.node)
	a.feed.Notify()
}
