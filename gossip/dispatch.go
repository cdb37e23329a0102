package gossip

import "sync"

// dispatcher runs fn on values pushed from any goroutine (including under
// memberlist's locks: push never blocks), one at a time, in order, on its own
// goroutine. It holds at most max pending values; newer ones are dropped
// beyond that and counted.
type dispatcher[T any] struct {
	fn      func(T)
	max     int
	signal  chan struct{}
	mu      sync.Mutex
	q       []T
	dropped uint64
}

func newDispatcher[T any](max int, fn func(T)) *dispatcher[T] {
	return &dispatcher[T]{fn: fn, max: max, signal: make(chan struct{}, 1)}
}

// push queues v; it reports false if v was dropped.
func (d *dispatcher[T]) push(v T) bool {
	d.mu.Lock()
	if len(d.q) >= d.max {
		d.dropped++
		d.mu.Unlock()
		return false
	}
	d.q = append(d.q, v)
	d.mu.Unlock()
	select {
	case d.signal <- struct{}{}:
	default:
	}
	return true
}

func (d *dispatcher[T]) droppedCount() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dropped
}

// run calls fn until stop is closed; values still queued then are dropped.
func (d *dispatcher[T]) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-d.signal:
		}
		for {
			d.mu.Lock()
			batch := d.q
			d.q = nil
			d.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, v := range batch {
				select {
				case <-stop:
					return
				default:
				}
				d.fn(v)
			}
		}
	}
}
