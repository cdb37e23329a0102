package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// TestParkedWriteAndRelease: a device whose clock runs an hour fast (the
// diagnostic --clock-offset) writes; the hub parks the write (it is beyond
// the maximum clock offset), does not apply it and does not let its own
// clock be dragged forward; an operator lists and releases it, and it
// applies.
func TestParkedWriteAndRelease(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	fast := startNode(t, "fast", "--hub", hub.sync, "--clock-offset", "1h", "--pull-interval", "1s")
	ctx := context.Background()
	fast.mustCLI("put", "jobs", "j1", "title=from the future")
	fast.mustCLI("sync")
	var parked struct {
		Parked []struct {
			Origin  string `json:"origin"`
			Seq     uint64 `json:"seq"`
			Table   string `json:"table"`
			AheadMs int64  `json:"ahead_ms"`
		} `json:"parked"`
	}
	eventually(t, "the hub parks the write", func() error {
		resp, err := http.Get("http://" + hub.api + "/v1/parked")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&parked); err != nil {
			return err
		}
		if len(parked.Parked) != 1 {
			return fmt.Errorf("%d parked", len(parked.Parked))
		}
		return nil
	})
	p := parked.Parked[0]
	if p.Table != "jobs" || p.AheadMs < 3_000_000 {
		t.Fatalf("parked entry %+v", p)
	}
	if _, err := hub.client().Get(ctx, "jobs", "j1"); err == nil {
		t.Fatal("a parked write was applied")
	}
	resp, err := http.Post(fmt.Sprintf("http://%s/v1/parked/%s/%d/release", hub.api, p.Origin, p.Seq), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("release: HTTP %d", resp.StatusCode)
	}
	r, err := hub.client().Get(ctx, "jobs", "j1")
	if err != nil {
		t.Fatalf("released write not applied: %v", err)
	}
	if got := fieldsOf(t, r); got != `{"title":"from the future"}` {
		t.Fatalf("j1 = %s", got)
	}
	// Releasing an unknown one is a 404.
	resp, err = http.Post(fmt.Sprintf("http://%s/v1/parked/%s/%d/release", hub.api, p.Origin, p.Seq+99), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("release of an unknown parked write: HTTP %d, want 404", resp.StatusCode)
	}
	_ = time.Second
}
