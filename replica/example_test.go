package replica_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/replicad/replicad/replica"
)

// tempDir is a fresh data directory for an example.
func tempDir() string {
	dir, err := os.MkdirTemp("", "replica-example-")
	if err != nil {
		log.Fatal(err)
	}
	return dir
}

// Two replicas in one process: a hub, and a device that syncs with it
// over loopback. A write made on the device is on the hub after a sync.
func Example_sync() {
	ctx := context.Background()
	hubDir, devDir := tempDir(), tempDir()
	defer os.RemoveAll(hubDir)
	defer os.RemoveAll(devDir)

	hub, err := replica.Open(ctx, replica.Config{DataDir: hubDir, Role: "hub", SyncAddr: "127.0.0.1:0"})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()
	dev, err := replica.Open(ctx, replica.Config{DataDir: devDir, Role: "device",
		SyncAddr: "127.0.0.1:0", Hubs: []string{hub.SyncAddr()}})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()

	if err := dev.Put(ctx, "jobs", "j1", map[string]any{"status": "open", "prio": 3}); err != nil {
		log.Fatal(err)
	}
	if err := dev.Sync(ctx); err != nil {
		log.Fatal(err)
	}
	rec, err := hub.Get(ctx, "jobs", "j1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Fields["status"], rec.Fields["prio"])
	// Output: open 3
}

// A query: a where clause, an order and a limit, on one snapshot.
func ExampleReplica_Query() {
	ctx := context.Background()
	dir := tempDir()
	defer os.RemoveAll(dir)
	r, err := replica.Open(ctx, replica.Config{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	for id, prio := range map[string]int{"j1": 1, "j2": 3, "j3": 2} {
		if err := r.Put(ctx, "jobs", id, map[string]any{"status": "open", "prio": prio}); err != nil {
			log.Fatal(err)
		}
	}
	res, err := r.Query(ctx, replica.Query{Table: "jobs", Where: "prio >= 2", Order: []string{"-prio"}, Limit: 50})
	if err != nil {
		log.Fatal(err)
	}
	for _, rec := range res.Records {
		fmt.Println(rec.ID, rec.Fields["prio"])
	}
	// Output:
	// j2 3
	// j3 2
}

// A live query: its current result first, then an event per record
// that enters, changes in or leaves it.
func ExampleReplica_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := tempDir()
	defer os.RemoveAll(dir)
	r, err := replica.Open(ctx, replica.Config{DataDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	events, err := r.Watch(ctx, replica.Query{Table: "jobs", Where: "status == 'open'"})
	if err != nil {
		log.Fatal(err)
	}
	ev := <-events
	fmt.Println(ev.Type, len(ev.Records))
	if err := r.Put(ctx, "jobs", "j1", map[string]any{"status": "open"}); err != nil {
		log.Fatal(err)
	}
	ev = <-events
	fmt.Println(ev.Type, ev.Record.ID, ev.Record.Fields["status"])
	// Output:
	// result 0
	// add j1 open
}
