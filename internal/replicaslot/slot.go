// Package replicaslot holds the replica a daemon serves now: request
// handlers use it shared, a reset replaces it exclusively, and when its
// store fails after an I/O error (a full disk, say: store.ErrFailed) the
// slot closes it and opens it again every interval until it opens, while
// the users are told ErrRecovering. What was acknowledged is in the
// store's WAL and comes back with it.
package replicaslot

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Errors of a slot with no replica for a moment (the API's 503).
var (
	ErrResetting  = errors.New("the replica is being reset; retry shortly")
	ErrRecovering = errors.New("the store failed after an I/O error (a full disk?) and is being reopened; retry shortly")
)

// Replica is what the slot needs of a replica.
type Replica interface {
	// Failed returns the store's failure (nil while it works).
	Failed() error
	// Close stops the replica and closes its store.
	Close()
}

// Slot holds the current replica R, or none (a nil R) while it is reset
// or recovered.
type Slot[R Replica] struct {
	mu  sync.RWMutex
	rep R
	// recovering: rep is nil because the store failed and is being
	// reopened (Recover), not because a reset owns the slot.
	recovering bool

	// Open opens and starts a replica (a store recovery's); Opened (nil:
	// none) is told of each one it puts in place; Log is told of failures.
	Open   func() (R, error)
	Opened func(R)
	Log    hclog.Logger
	every  time.Duration
}

func (s *Slot[R]) none() bool { var zero R; return any(s.rep) == any(zero) }

// RLock, RUnlock, Lock and Unlock hold the slot as Acquire and Reset do;
// Get and Set read and put its replica under them (Set: recovering says
// an empty slot is being recovered).
func (s *Slot[R]) RLock()   { s.mu.RLock() }
func (s *Slot[R]) RUnlock() { s.mu.RUnlock() }
func (s *Slot[R]) Lock()    { s.mu.Lock() }
func (s *Slot[R]) Unlock()  { s.mu.Unlock() }
func (s *Slot[R]) Get() R   { return s.rep }

// Recovering reports whether the empty slot is being recovered.
func (s *Slot[R]) Recovering() bool { return s.recovering }

func (s *Slot[R]) Set(r R, recovering bool) { s.rep, s.recovering = r, recovering }

// Acquire returns the replica with the slot held shared (call RUnlock
// when done), or ErrRecovering or ErrResetting while there is none.
func (s *Slot[R]) Acquire() (R, error) {
	s.mu.RLock()
	if s.none() {
		recovering := s.recovering
		s.mu.RUnlock()
		var zero R
		if recovering {
			return zero, ErrRecovering
		}
		return zero, ErrResetting
	}
	return s.rep, nil
}

// With runs fn on the replica, held shared.
func (s *Slot[R]) With(fn func(R) (any, error)) (any, error) {
	r, err := s.Acquire()
	if err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	return fn(r)
}

// Peek runs fn on the replica, held shared; not while there is none.
func (s *Slot[R]) Peek(fn func(R)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.none() {
		fn(s.rep)
	}
}

// Replace closes the replica and puts the one open returns in its place,
// holding the slot exclusively meanwhile (a reset; the slot stays empty
// if open fails).
func (s *Slot[R]) Replace(open func() (R, error)) (R, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var zero R
	if !s.none() {
		s.rep.Close()
		s.rep = zero
	}
	r, err := open()
	if err != nil {
		return zero, err
	}
	s.rep = r
	return r, nil
}

// Close closes the replica and empties the slot.
func (s *Slot[R]) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.none() {
		s.rep.Close()
		var zero R
		s.rep = zero
	}
}

// Watch checks the store every interval until ctx is done, and recovers
// it when it failed (or retries opening one that could not be reopened).
func (s *Slot[R]) Watch(ctx context.Context, every time.Duration) {
	s.mu.Lock()
	s.every = every
	s.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.RLock()
		none, recovering := s.none(), s.recovering
		var failed error
		if !none {
			failed = s.rep.Failed()
		}
		s.mu.RUnlock()
		if none && recovering || failed != nil {
			s.Recover(failed)
		}
	}
}

// Recover reopens the replica of a failed store (or retries opening one
// that could not be reopened); an empty slot a reset owns is left alone.
func (s *Slot[R]) Recover(cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.none() {
		if s.rep.Failed() == nil {
			return
		}
		s.Log.Error("the store failed; reopening it", "error", cause)
		s.rep.Close()
		var zero R
		s.rep, s.recovering = zero, true
	}
	if !s.recovering {
		return // a reset owns the empty slot
	}
	r, err := s.Open()
	if err != nil {
		s.Log.Warn("reopening the store failed; retrying", "error", err, "every", s.every)
		return
	}
	s.rep, s.recovering = r, false
	if s.Opened != nil {
		s.Opened(r)
	}
}
