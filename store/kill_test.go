package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/replicad/replicad/crdt"
	"github.com/replicad/replicad/hlc"
)

const killDirEnv = "REPLICAD_STORE_KILL_DIR"

// TestKillChild is the child of TestSIGKILL: it writes to the store in
// $REPLICAD_STORE_KILL_DIR in a loop until killed, printing "B dots" for
// each batch before committing it and "A dots" once it is acknowledged.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killDirEnv)
	if dir == "" {
		t.Skip("helper process for TestSIGKILL")
	}
	seed, _ := strconv.ParseUint(os.Getenv("REPLICAD_STORE_KILL_SEED"), 10, 64)
	s, err := Open(Options{Dir: dir})
	if err != nil {
		fmt.Println("E", err)
		os.Exit(2)
	}
	clock := hlc.NewClock(nil, time.Minute)
	clock.Restore(s.HighWater())
	var outMu sync.Mutex
	emit := func(kind string, ds []crdt.Dot) {
		var b strings.Builder
		b.WriteString(kind)
		for _, d := range ds {
			fmt.Fprintf(&b, " %d:%d", uint64(d.Node), d.Seq)
		}
		b.WriteByte('\n')
		outMu.Lock()
		os.Stdout.WriteString(b.String())
		outMu.Unlock()
	}
	p := newPeer(t, time.Now().UnixMilli())
	w := &crashWorkload{s: s, clock: clock, p: p, led: newLedger()}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for {
				if g == 0 {
					// remote batches
					w.mu.Lock()
					for i := 0; i < 1+rng.IntN(20); i++ {
						p.randWrite(t, rng, 50)
					}
					ws := p.stream(t, w.sent)
					w.sent += uint64(len(ws))
					w.mu.Unlock()
					var applied []crdt.Dot
					_, err := s.ApplyRemoteWith(clock, ws, nil, func(b *Batch, r *Result) error {
						for i, st := range r.Status {
							if st == Applied {
								applied = append(applied, ws[i].Dot())
							}
						}
						emit("B", applied)
						return nil
					})
					if err != nil {
						fmt.Println("E", err)
						os.Exit(3)
					}
					emit("A", applied)
					continue
				}
				id := fmt.Sprint("r", rng.IntN(50))
				r, err := s.WriteWith(clock, "t", id, []crdt.FieldValue{fv(fmt.Sprint("f", rng.IntN(4)), rng.IntN(1000))}, false, func(b *Batch, r *WriteResult) error {
					emit("B", []crdt.Dot{r.Write.Dot()})
					return nil
				})
				if err != nil {
					fmt.Println("E", err)
					os.Exit(3)
				}
				emit("A", []crdt.Dot{r.Write.Dot()})
			}
		}()
	}
	wg.Wait()
}

func parseDots(fields []string) ([]crdt.Dot, error) {
	var out []crdt.Dot
	for _, f := range fields {
		n, q, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("bad dot %q", f)
		}
		nn, err1 := strconv.ParseUint(n, 10, 64)
		qq, err2 := strconv.ParseUint(q, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad dot %q", f)
		}
		out = append(out, crdt.Dot{Node: hlc.NodeID(nn), Seq: qq})
	}
	return out, nil
}

// TestSIGKILL runs a child process that writes in a loop, kills it with
// SIGKILL at seeded random moments 20 times, and checks the store after
// each kill: every acknowledged write present, Verify passes, no partial
// batch.
func TestSIGKILL(t *testing.T) {
	if os.Getenv(killDirEnv) != "" {
		t.Skip("in the child")
	}
	dir := filepath.Join(t.TempDir(), "db")
	const seed = 42
	rng := rand.New(rand.NewPCG(seed, 0))
	led := newLedger()
	for round := 0; round < 20; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killDirEnv+"="+dir, fmt.Sprintf("REPLICAD_STORE_KILL_SEED=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		wantAcks := 1 + rng.IntN(300)
		extra := time.Duration(rng.IntN(20)) * time.Millisecond
		acks := make(chan struct{}, 1<<16)
		readErr := make(chan error, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 0 {
					continue
				}
				switch f[0] {
				case "A", "B":
					ds, err := parseDots(f[1:])
					if err != nil {
						readErr <- err
						return
					}
					if f[0] == "A" {
						led.ack(ds...)
						select {
						case acks <- struct{}{}:
						default:
						}
					} else {
						led.batch(ds)
					}
				case "E":
					readErr <- fmt.Errorf("child: %s", sc.Text())
					return
				}
			}
			readErr <- sc.Err()
		}()
		timeout := time.After(30 * time.Second)
		for n := 0; n < wantAcks; n++ {
			select {
			case <-acks:
			case err := <-readErr:
				t.Fatalf("seed %d round %d: child ended: %v", seed, round, err)
			case <-timeout:
				t.Fatalf("seed %d round %d: child too slow", seed, round)
			}
		}
		time.Sleep(extra)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := <-readErr; err != nil {
			t.Fatalf("seed %d round %d: %v", seed, round, err)
		}
		cmd.Wait()
		acked, batches := led.snapshot()
		if err := checkReopened(vfs.Default, dir, acked, batches); err != nil {
			t.Fatalf("seed %d round %d (after %d acks): %v", seed, round, len(acked), err)
		}
	}
	a, _ := led.snapshot()
	t.Logf("20 kills, %d acknowledged writes checked", len(a))
}
