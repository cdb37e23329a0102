package replication

import "sync/atomic"

// DefaultMaxHelloBytes bounds the first message of an incoming session
// (the peer's Hello): one frame, no fragments, until the handshake is
// accepted, so that a stranger cannot make a listener buffer more.
const DefaultMaxHelloBytes = 64 << 10

// DefaultMaxBufferedBytes bounds the bytes of messages being reassembled
// from fragments, across every incoming session of an engine.
const DefaultMaxBufferedBytes = 256 << 20

// readLimits bound one ReadMsg.
type readLimits struct {
	frame       int         // largest frame (0: MaxFrameBytes)
	noFragments bool        // a fragment frame is an error
	budget      *byteBudget // shared reassembly budget (nil: none)
	why         string      // appended to the errors, e.g. " before the handshake"
}

// byteBudget is a budget of bytes shared by concurrent readers.
type byteBudget struct {
	max  int64
	used atomic.Int64
}

func newByteBudget(max int64) *byteBudget { return &byteBudget{max: max} }

// take reserves n bytes, or reports false if they would exceed the budget.
func (b *byteBudget) take(n int) bool {
	if b == nil {
		return true
	}
	if b.used.Add(int64(n)) > b.max {
		b.used.Add(-int64(n))
		return false
	}
	return true
}

func (b *byteBudget) release(n int) {
	if b != nil && n > 0 {
		b.used.Add(-int64(n))
	}
}

// Buffered returns the bytes reserved now (tests, metrics).
func (b *byteBudget) Buffered() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// helloLimits bound a message read before the handshake is accepted.
func helloLimits(max int) readLimits {
	return readLimits{frame: max, noFragments: true, why: " before the handshake"}
}
