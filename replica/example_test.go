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

// A view: a hub declares it (with an index for its table), every replica
// it syncs with lists and runs it; device.* reads the asking device's
// attributes (here Config.Device; on a device its hub assigned an
// offline profile, the profile's).
func ExampleQuery_view() {
	ctx := context.Background()
	hubDir, devDir := tempDir(), tempDir()
	defer os.RemoveAll(hubDir)
	defer os.RemoveAll(devDir)

	hub, err := replica.Open(ctx, replica.Config{DataDir: hubDir, Role: "hub", SyncAddr: "127.0.0.1:0",
		Indexes: []replica.Index{{Name: "owner_start", Table: "bookings", Fields: []string{"owner", "start"}}},
		Views: []replica.View{{Name: "my_open_bookings", Table: "bookings",
			Where: "owner == device.user && status != 'completed'", Order: []string{"start"}}}})
	if err != nil {
		log.Fatal(err)
	}
	defer hub.Close()
	dev, err := replica.Open(ctx, replica.Config{DataDir: devDir, Hubs: []string{hub.SyncAddr()},
		Device: map[string]string{"user": "ann"}})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	if err := dev.Sync(ctx); err != nil { // brings the declarations
		log.Fatal(err)
	}
	for id, b := range map[string][2]string{"b1": {"ann", "09:00"}, "b2": {"bob", "08:00"}, "b3": {"ann", "07:30"}} {
		if err := dev.Put(ctx, "bookings", id, map[string]any{"owner": b[0], "start": b[1], "status": "open"}); err != nil {
			log.Fatal(err)
		}
	}
	for _, v := range dev.Views() {
		fmt.Println("view", v.Name, "on", v.Table)
	}
	res, err := dev.Query(ctx, replica.Query{View: "my_open_bookings", Limit: 10})
	if err != nil {
		log.Fatal(err)
	}
	for _, rec := range res.Records {
		fmt.Println(rec.ID, rec.Fields["start"])
	}
	// Output:
	// view my_open_bookings on bookings
	// b3 07:30
	// b1 09:00
}
