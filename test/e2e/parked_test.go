package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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
}

// TestReleaseKeepsTheHubsClock: a device 10 minutes fast writes a record;
// the hub parks it; releasing it applies the values as the hub's own
// write stamped now. The hub's clock does not move (before and after a
// restart): its later writes are not parked on a device with a true
// clock, and that device's later edit of the released record wins.
func TestReleaseKeepsTheHubsClock(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off")
	fast := startNode(t, "fast", "--hub", hub.sync, "--clock-offset", "10m", "--pull-interval", "1h")
	dev := startNode(t, "dev", "--hub", hub.sync, "--pull-interval", "1h")
	ctx := context.Background()
	fast.mustCLI("put", "jobs", "j1", "title=from the future")
	fast.mustCLI("sync")
	var parked struct {
		Parked []struct {
			Origin string `json:"origin"`
			Seq    uint64 `json:"seq"`
		} `json:"parked"`
	}
	mustGet(t, hub.api, "/v1/parked", &parked)
	if len(parked.Parked) != 1 {
		t.Fatalf("hub parked %+v, want the fast device's write", parked)
	}
	p := parked.Parked[0]
	resp, err := http.Post(fmt.Sprintf("http://%s/v1/parked/%s/%d/release", hub.api, p.Origin, p.Seq), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var rel map[string]any
	json.NewDecoder(resp.Body).Decode(&rel)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("release: %d %v", resp.StatusCode, rel)
	}
	t.Logf("release: %v", rel)
	// The log line is written before the answer, but reaches the test
	// through the process's stderr pipe: wait for it.
	eventually(t, "the hub logs the release", func() error {
		if !strings.Contains(hub.log.String(), "parked write released") {
			return fmt.Errorf("no %q line in the hub's log yet", "parked write released")
		}
		return nil
	})
	check := func(step string) {
		t.Helper()
		// The hub's next write is not parked on a device with a true clock.
		id := "hub-" + step
		if _, err := hub.client().Put(ctx, "jobs", id, map[string]json.RawMessage{"by": json.RawMessage(`"hub"`)}); err != nil {
			t.Fatal(err)
		}
		dev.mustCLI("sync")
		var dp struct {
			Parked []any `json:"parked"`
		}
		mustGet(t, dev.api, "/v1/parked", &dp)
		if len(dp.Parked) != 0 {
			t.Errorf("%s: the device parked the hub's writes: %v", step, dp.Parked)
		}
		if _, err := dev.client().Get(ctx, "jobs", id); err != nil {
			t.Errorf("%s: the hub's write %s did not reach the device: %v", step, id, err)
		}
		// The device's edit of the released record wins on the hub.
		title := "edited by dev " + step
		b, _ := json.Marshal(title)
		if _, err := dev.client().Put(ctx, "jobs", "j1", map[string]json.RawMessage{"title": b}); err != nil {
			t.Fatal(err)
		}
		dev.mustCLI("sync")
		r, err := hub.client().Get(ctx, "jobs", "j1")
		if err != nil {
			t.Fatal(err)
		}
		if got := fieldsOf(t, r); got != fmt.Sprintf(`{"title":%s}`, b) || len(r.Conflicts) != 0 {
			t.Errorf("%s: hub j1 = %s (conflicts %v), want the device's edit", step, got, r.Conflicts)
		}
	}
	check("after-release")
	hub.stop()
	hub.start()
	check("after-restart")
	// The fast device is not asked to offer its write again: the hub
	// holds its sequence number.
	fast.mustCLI("sync")
	mustGet(t, hub.api, "/v1/parked", &parked)
	if len(parked.Parked) != 0 {
		t.Errorf("the released write was parked again: %+v", parked)
	}
}

func mustGet(t *testing.T, addr, path string, out any) {
	t.Helper()
	if err := getJSON(addr, path, out, 5*time.Second); err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
}

// TestParkedBoundAndPaging: with --max-parked 3, a device an hour fast
// writes 5 records; the hub parks 3, refuses the others with a sync error
// and a log line (they stay with the device), pages the list, counts them
// in its status; once one is released, the next sync parks one more.
func TestParkedBoundAndPaging(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--max-parked", "3")
	fast := startNode(t, "fast", "--hub", hub.sync, "--clock-offset", "1h", "--pull-interval", "1h")
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		fast.mustCLI("put", "jobs", fmt.Sprintf("j%d", i), "title=ahead")
	}
	fast.mustCLI("sync")
	type page struct {
		Parked []struct {
			Origin string `json:"origin"`
			Seq    uint64 `json:"seq"`
		} `json:"parked"`
		Next     string         `json:"next"`
		Total    int            `json:"total"`
		ByOrigin map[string]int `json:"by_origin"`
	}
	var p1, p2 page
	mustGet(t, hub.api, "/v1/parked?limit=2", &p1)
	if len(p1.Parked) != 2 || p1.Next == "" || p1.Total != 3 || len(p1.ByOrigin) != 1 {
		t.Fatalf("first page: %+v; want 2 of 3 and a next cursor", p1)
	}
	mustGet(t, hub.api, "/v1/parked?limit=2&after="+p1.Next, &p2)
	if len(p2.Parked) != 1 || p2.Next != "" || p2.Parked[0].Seq <= p1.Parked[1].Seq {
		t.Fatalf("second page: %+v after %+v", p2, p1)
	}
	st, err := hub.client().Status(ctx)
	if err != nil || st.Parked != 3 {
		t.Errorf("hub status: parked %v, %v; want 3", st, err)
	}
	errs, err := hub.client().SyncErrors(ctx, 0)
	if err != nil || len(errs) != 1 || !strings.Contains(errs[0].Detail, "--max-parked") {
		t.Errorf("hub sync errors: %+v, %v; want one naming the bound", errs, err)
	}
	if !strings.Contains(hub.log.String(), "remote write not parked") {
		t.Errorf("the hub did not log the refused writes")
	}
	// Release one: the next sync parks one of the refused writes, which
	// the device still held.
	resp, err := http.Post(fmt.Sprintf("http://%s/v1/parked/%s/%d/release", hub.api, p1.Parked[0].Origin, p1.Parked[0].Seq), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fast.mustCLI("sync")
	var p3 page
	mustGet(t, hub.api, "/v1/parked?limit=10", &p3)
	if p3.Total != 3 || len(p3.Parked) != 3 || p3.Parked[2].Seq != p2.Parked[0].Seq+1 {
		t.Errorf("after a release and a sync: %+v; want 3 parked, the fourth write among them", p3)
	}
}
