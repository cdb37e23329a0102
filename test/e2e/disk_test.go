package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/replicad/replicad/client"
	"github.com/replicad/replicad/store"
)

// TestCompactAndDiskUse: a device's disk use is in its status and
// metrics, by kind; `replicad compact` compacts online (the agent keeps
// answering) and prints the disk use before and after; a malformed body
// is refused; a clean stop leaves no write-ahead log behind (the memtable
// is flushed at close, obsolete logs are deleted, none preallocated).
func TestCompactAndDiskUse(t *testing.T) {
	d := startNode(t, "device")
	ctx := context.Background()
	c := d.client()
	val := json.RawMessage(strconv.Quote(strings.Repeat("field work notes ", 20)))
	for round := range 4 {
		for i := range 150 {
			if _, err := c.Put(ctx, "jobs", fmt.Sprintf("j%03d", i), map[string]json.RawMessage{"notes": val, "round": json.RawMessage(strconv.Itoa(round))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Disk.Total <= 0 || st.Disk.WAL <= 0 || st.Disk.Total != st.Disk.SST+st.Disk.WAL+st.Disk.Other {
		t.Fatalf("status disk use %+v", st.Disk)
	}

	out := d.mustCLI("compact")
	var r client.CompactResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("compact output %q: %v", out, err)
	}
	if r.Before.Total <= 0 || r.After.SST <= 0 || r.After.Total <= 0 || r.FreedBytes != r.Before.Total-r.After.Total || r.DurationMs < 0 {
		t.Fatalf("compact answered %+v", r)
	}
	// Still serving, the record readable.
	if rec, err := c.Get(ctx, "jobs", "j007"); err != nil || string(rec.Fields["round"]) != "3" {
		t.Fatalf("after compact: %v %v", rec, err)
	}

	resp, err := http.Get("http://" + d.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`(?m)^replicad_store_disk_bytes\{kind="sst"\} (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no replicad_store_disk_bytes{kind=\"sst\"} in /metrics")
	}
	if v, _ := strconv.ParseFloat(string(m[1]), 64); v <= 0 {
		t.Fatalf("sst bytes %s", m[1])
	}
	for _, kind := range []string{"wal", "other"} {
		if !strings.Contains(string(body), `replicad_store_disk_bytes{kind="`+kind+`"}`) {
			t.Fatalf("no %s disk bytes in /metrics", kind)
		}
	}

	req, _ := http.NewRequest(http.MethodPost, "http://"+d.api+"/v1/compact", strings.NewReader(`{"x":1}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("compact with an unknown field: %d", resp.StatusCode)
	}

	// A write after the compaction, then a clean stop.
	if _, err := c.Put(ctx, "jobs", "last", map[string]json.RawMessage{"notes": val}); err != nil {
		t.Fatal(err)
	}
	d.stop()
	u, err := store.DirUsage(nil, filepath.Join(d.dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	if u.WAL > 64<<10 || u.SST <= 0 {
		t.Fatalf("after a clean stop: %+v: want the memtable flushed into tables and no log beyond a few KiB", u)
	}
}
