package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
)

// TestPoliciesThroughTheDaemon: the seed's work order under server-wins and
// client-wins, with the hub arbitrating: a technician offline changes the
// work order, the dispatcher (on the hub) changes it too; when the
// technician syncs, server-wins undoes the technician's change everywhere
// and logs it, client-wins keeps the technician's value (it reached the
// hub last) although the dispatcher's is stamped later.
func TestPoliciesThroughTheDaemon(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off",
		"--policy", "sw=server-wins", "--policy", "cw=client-wins")
	tech := startNode(t, "tech", "--hub", hub.sync, "--pull-interval", "1s")
	ctx := context.Background()
	for _, tb := range []string{"sw", "cw"} {
		hub.mustCLI("put", tb, "wo1", "start=08:00", "end=10:00")
	}
	tech.mustCLI("sync")
	tech.mustCLI("offline")
	tech.mustCLI("put", "sw", "wo1", "start=09:00")
	tech.mustCLI("put", "cw", "wo1", "start=09:30")
	// Not seen by the arbiter yet: tentative.
	if r, err := tech.client().Get(ctx, "sw", "wo1"); err != nil || !r.Pending {
		t.Fatalf("an offline change to a server-wins table: pending=%v, %v; want pending", r != nil && r.Pending, err)
	}
	hub.mustCLI("put", "sw", "wo1", "end=12:00")
	hub.mustCLI("put", "cw", "wo1", "start=07:00")
	tech.mustCLI("online")
	tech.mustCLI("sync")
	want := map[string]string{
		"sw": `{"end":"12:00","start":"08:00"}`, // the technician's change is undone
		"cw": `{"end":"10:00","start":"09:30"}`, // the technician's change arrived last
	}
	for _, n := range []*node{hub, tech} {
		for tb, w := range want {
			eventually(t, fmt.Sprintf("%s: %s settles", n.name, tb), func() error {
				if n == tech {
					tech.mustCLI("sync")
				}
				r, err := n.client().Get(ctx, tb, "wo1")
				if err != nil {
					return err
				}
				if got := fieldsOf(t, r); got != w {
					return fmt.Errorf("%s/wo1 = %s, want %s", tb, got, w)
				}
				if len(r.Conflicts) != 0 {
					return fmt.Errorf("%s/wo1 still has conflicts %v", tb, r.Conflicts)
				}
				if r.Pending {
					return fmt.Errorf("%s/wo1 still pending on %s", tb, n.name)
				}
				return nil
			})
		}
	}
	out := hub.mustCLI("errors", "--json")
	for _, s := range []string{`"sw"`, `server-wins`, `"cw"`, `client-wins`} {
		if !contains(out, s) {
			t.Errorf("sync errors on the hub lack %s:\n%s", s, out)
		}
	}
	// The technician sees its rejected change in its own sync-error log,
	// and retries it: made now with everything seen, the hub accepts it.
	var eid uint64
	eventually(t, "the technician's sync-error log lists the rejection", func() error {
		tech.mustCLI("sync")
		es, err := tech.client().SyncErrors(ctx, 0)
		if err != nil {
			return err
		}
		for _, e := range es {
			if e.Table == "sw" && e.Policy == "server-wins" {
				eid = e.ID
				return nil
			}
		}
		return fmt.Errorf("no server-wins error on the technician's device (%d entries)", len(es))
	})
	resp, err := http.Post(fmt.Sprintf("http://%s/v1/sync-errors/%d/retry", tech.api, eid), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("retry: HTTP %d", resp.StatusCode)
	}
	eventually(t, "the retried change is accepted everywhere", func() error {
		tech.mustCLI("sync")
		for _, n := range []*node{hub, tech} {
			r, err := n.client().Get(ctx, "sw", "wo1")
			if err != nil {
				return err
			}
			if got := fieldsOf(t, r); got != `{"end":"12:00","start":"09:00"}` {
				return fmt.Errorf("%s: sw/wo1 = %s", n.name, got)
			}
		}
		return nil
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestDeleteAgainstUpdateIsAConflict: under manual, a delete concurrent
// with an update is a conflict to choose ("_exists"); picking the update
// keeps the record everywhere.
func TestDeleteAgainstUpdateIsAConflict(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--policy", "jobs=manual")
	dev := startNode(t, "dev", "--hub", hub.sync, "--pull-interval", "1s")
	ctx := context.Background()
	hub.mustCLI("put", "jobs", "j1", "title=pump")
	dev.mustCLI("sync")
	dev.mustCLI("offline")
	dev.mustCLI("delete", "jobs", "j1")
	hub.mustCLI("put", "jobs", "j1", "status=urgent")
	dev.mustCLI("online")
	dev.mustCLI("sync")
	var cands int
	eventually(t, "the hub lists the delete/update conflict", func() error {
		cs, err := hub.client().Conflicts(ctx)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if c.Table == "jobs" && c.ID == "j1" && c.Field == "_exists" {
				cands = len(c.Candidates)
				return nil
			}
		}
		return fmt.Errorf("no _exists conflict in %+v", cs)
	})
	if cands != 2 {
		t.Fatalf("%d candidates, want the update and the delete", cands)
	}
	// Keep the update: pick the candidate that is not the delete.
	cs, _ := hub.client().Conflicts(ctx)
	pick := -1
	for _, c := range cs {
		if c.Field == "_exists" {
			for i, cand := range c.Candidates {
				if !cand.Deleted {
					pick = i
				}
			}
		}
	}
	hub.mustCLI("resolve", "jobs", "j1", "_exists", "--pick", fmt.Sprint(pick))
	eventually(t, "the record is kept everywhere", func() error {
		dev.mustCLI("sync")
		for _, n := range []*node{hub, dev} {
			r, err := n.client().Get(ctx, "jobs", "j1")
			if err != nil {
				return fmt.Errorf("%s: %v", n.name, err)
			}
			if got := fieldsOf(t, r); got != `{"status":"urgent"}` {
				return fmt.Errorf("%s: j1 = %s", n.name, got)
			}
			if len(r.Conflicts) != 0 {
				return fmt.Errorf("%s: conflicts left %v", n.name, r.Conflicts)
			}
		}
		return nil
	})
}
