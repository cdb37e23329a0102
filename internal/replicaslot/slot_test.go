package replicaslot

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

type fake struct {
	id     int
	failed atomic.Pointer[error]
	closed atomic.Bool
}

func (f *fake) Failed() error {
	if e := f.failed.Load(); e != nil {
		return *e
	}
	return nil
}

func (f *fake) Close() { f.closed.Store(true) }

func (f *fake) fail(err error) { f.failed.Store(&err) }

// opener opens fakes numbered 2, 3, ...; it fails while refuse is set.
type opener struct {
	mu     sync.Mutex
	n      int
	refuse error
	opened []*fake
}

func (o *opener) open() (*fake, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refuse != nil {
		return nil, o.refuse
	}
	o.n++
	f := &fake{id: o.n + 1}
	o.opened = append(o.opened, f)
	return f, nil
}

func newSlot(o *opener) *Slot[*fake] {
	s := &Slot[*fake]{Open: o.open, Log: hclog.NewNullLogger()}
	s.Set(&fake{id: 1}, false)
	return s
}

// TestRecover: a replica whose store failed is closed and reopened;
// while reopening fails the slot answers ErrRecovering and retries; a
// working store or a slot a reset owns is left alone.
func TestRecover(t *testing.T) {
	o := &opener{}
	s := newSlot(o)
	first := s.Get()
	s.Recover(nil) // working: nothing happens
	if s.Get() != first || first.closed.Load() {
		t.Fatal("a working store was reopened")
	}
	first.fail(errors.New("disk full"))
	o.refuse = errors.New("still full")
	s.Recover(errors.New("disk full"))
	if !first.closed.Load() || s.Get() != nil || !s.Recovering() {
		t.Fatalf("after a failed reopen: closed %v, current %v, recovering %v", first.closed.Load(), s.Get(), s.Recovering())
	}
	if _, err := s.With(func(*fake) (any, error) { return nil, nil }); !errors.Is(err, ErrRecovering) {
		t.Fatalf("while recovering: %v, want ErrRecovering", err)
	}
	o.refuse = nil
	var told *fake
	s.Opened = func(f *fake) { told = f }
	s.Recover(nil) // the retry
	if s.Get() == nil || s.Get().id != 2 || s.Recovering() || told != s.Get() {
		t.Fatalf("after the retry: current %v, recovering %v, told %v", s.Get(), s.Recovering(), told)
	}
	// An empty slot a reset owns is not the recovery's.
	s.Set(nil, false)
	s.Recover(nil)
	if s.Get() != nil {
		t.Fatal("the recovery filled a slot a reset owns")
	}
	if _, err := s.With(func(*fake) (any, error) { return nil, nil }); !errors.Is(err, ErrResetting) {
		t.Fatalf("while resetting: %v, want ErrResetting", err)
	}
}

// TestWatch: the watch notices a failed store on its next tick and
// reopens it.
func TestWatch(t *testing.T) {
	o := &opener{}
	s := newSlot(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Watch(ctx, 5*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	s.RLock()
	s.Get().fail(errors.New("disk full"))
	s.RUnlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := s.With(func(f *fake) (any, error) { return f.id, nil })
		if err == nil && v.(int) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not reopened within 10s: %v %v", v, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplace: a reset closes the replica and puts the new one in place;
// a failed open leaves the slot empty (ErrResetting).
func TestReplace(t *testing.T) {
	o := &opener{}
	s := newSlot(o)
	first := s.Get()
	if r, err := s.Replace(o.open); err != nil || r.id != 2 || !first.closed.Load() || s.Get() != r {
		t.Fatalf("replace: %v %v", r, err)
	}
	second := s.Get()
	if _, err := s.Replace(func() (*fake, error) { return nil, errors.New("no") }); err == nil || !second.closed.Load() || s.Get() != nil {
		t.Fatalf("a failed replace: %v, current %v", err, s.Get())
	}
	if _, err := s.Acquire(); !errors.Is(err, ErrResetting) {
		t.Fatalf("after a failed replace: %v", err)
	}
	var peeked bool
	s.Peek(func(*fake) { peeked = true })
	if peeked {
		t.Fatal("peeked an empty slot")
	}
	s.Close()
}
