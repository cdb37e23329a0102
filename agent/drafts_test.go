package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/replicad/replicad/client"
)

// Draft writes racing with commits lose nothing: every field put in a
// draft is either published by a commit or still in the draft, and a
// draft is published at most once per revision.
func TestDraftCommitRace(t *testing.T) {
	a, _ := runAgent(t, testConfig(t, "device"))
	c := client.New(a.APIAddr())
	ctx := context.Background()
	const writers, each = 4, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+64)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				f := fmt.Sprintf("f%d_%d", w, i)
				if _, err := c.PutDraft(ctx, "jobs", "j1", map[string]json.RawMessage{f: json.RawMessage(fmt.Sprint(i))}); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	stop := make(chan struct{})
	var cw sync.WaitGroup
	cw.Add(1)
	commits := 0
	go func() {
		defer cw.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.CommitDraft(ctx, "jobs", "j1"); err == nil {
				commits++
			} else if !client.IsNotFound(err) {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(stop)
	cw.Wait()
	if _, err := c.CommitDraft(ctx, "jobs", "j1"); err != nil && !client.IsNotFound(err) {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	r, err := c.Get(ctx, "jobs", "j1")
	if err != nil {
		t.Fatal(err)
	}
	for w := 0; w < writers; w++ {
		for i := 0; i < each; i++ {
			if v := string(r.Fields[fmt.Sprintf("f%d_%d", w, i)]); v != fmt.Sprint(i) {
				t.Errorf("field f%d_%d = %q after every commit, want %d", w, i, v, i)
			}
		}
	}
	if p, err := c.Drafts(ctx, "", "", 0); err != nil || len(p.Drafts) != 0 {
		t.Errorf("drafts left: %+v %v", p, err)
	}
	ch, err := c.Changes(ctx, "0", 0)
	if err != nil || len(ch.Changes) > commits+1 {
		t.Errorf("%d writes for %d commits (%v)", len(ch.Changes), commits+1, err)
	}
	t.Logf("%d commits while drafting", commits)
}
