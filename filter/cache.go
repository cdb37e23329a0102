package filter

import (
	"container/list"
	"sync"
)

// MaxCached bounds the expressions kept compiled, process-wide, and
// MaxCachedLen the length of one (a longer one is compiled at each use):
// at most 2 MiB of sources and their compiled forms.
const (
	MaxCached    = 512
	MaxCachedLen = 4096
)

// cache keeps the most recently used compiled expressions (an LRU of
// MaxCached), one for every user in the process: the scopes in force,
// those of the peers in session, the queries and views being answered.
var cache = newLRU(MaxCached)

// Cached returns src compiled, from the process-wide cache when it is
// there; a good expression is added to it. Validating an expression that
// must not leave anything behind (a refused handshake's) uses Compile.
func Cached(src string) (*Expr, error) {
	if x := cache.get(src); x != nil {
		return x, nil
	}
	x, err := Compile(src)
	if err != nil {
		return nil, err
	}
	if len(src) <= MaxCachedLen {
		cache.put(src, x)
	}
	return x, nil
}

// CachedCount returns how many compiled expressions the cache holds.
func CachedCount() int { return cache.len() }

type lru struct {
	mu    sync.Mutex
	max   int
	m     map[string]*list.Element // of *entry
	order *list.List               // most recent first
}

type entry struct {
	src string
	x   *Expr
}

func newLRU(max int) *lru {
	return &lru{max: max, m: map[string]*list.Element{}, order: list.New()}
}

func (c *lru) get(src string) *Expr {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[src]; ok {
		c.order.MoveToFront(e)
		return e.Value.(*entry).x
	}
	return nil
}

func (c *lru) put(src string, x *Expr) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[src]; ok {
		return
	}
	c.m[src] = c.order.PushFront(&entry{src: src, x: x})
	for c.order.Len() > c.max {
		e := c.order.Back()
		c.order.Remove(e)
		delete(c.m, e.Value.(*entry).src)
	}
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
