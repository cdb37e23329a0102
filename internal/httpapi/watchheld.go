package httpapi

import (
	"container/list"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"

	"github.com/replicad/replicad/replica"
)

// A restricted reader's watch resumes incrementally when the node knows
// which records the client holds at the event id it resumes from: the
// events a resumption replays (each record touched since the id, as a
// change if in the result now, else a remove) are narrowed as the live
// ones are (liveWriter.events), which needs that set (a record it may no
// longer read is a remove only if the client holds it; one it never
// held is nothing, not even a remove naming it). The ids a restricted
// reader is given are the live engine's id, "~" and a token naming the
// set the client holds at that id, kept here (in memory, bounded: a
// token not found, after a restart say, resumes with a reset, as does
// an id for another reader, read limit or query).
//
// An event stream writes a round whole, and its token names the sets
// as of the last few ids it wrote; a long poll's answer gets a token of
// its own, naming the set the client holds once it applied the answer.

// Bounds of the held sets kept.
const (
	heldMaxEntries = 4096
	heldMaxIDs     = 1 << 18 // record ids, over every set kept
	// heldPerToken: an event stream's last sets (a client resumes from
	// the last id it received, which the stream may have written a few
	// rounds before it noticed the client gone).
	heldPerToken = 4
)

// heldSets keeps the held sets by token, least recently used first out.
// The zero value is ready. Sets are never modified once kept.
type heldSets struct {
	mu  sync.Mutex
	m   map[string]*list.Element // token -> *heldEntry
	lru list.List                // front: most recently used
	ids int
}

type heldEntry struct {
	token string
	key   string   // reader, read limit and query (heldKey)
	sets  []heldAt // oldest first
}

// heldAt is the set a client holds as of the live engine's id.
type heldAt struct {
	id   string
	held map[string]bool
}

func (e *heldEntry) size() (n int) {
	for _, s := range e.sets {
		n += len(s.held)
	}
	return n
}

// get returns the set token names, if it was kept for key as of the
// engine's id.
func (h *heldSets) get(token, key, id string) (map[string]bool, bool) {
	if token == "" || key == "" {
		return nil, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	el, ok := h.m[token]
	if !ok {
		return nil, false
	}
	e := el.Value.(*heldEntry)
	if e.key != key {
		return nil, false
	}
	for _, s := range e.sets {
		if s.id == id {
			h.lru.MoveToFront(el)
			return s.held, true
		}
	}
	return nil, false
}

// put keeps held (which the caller no longer modifies) under token, for
// key as of the engine's id, with the last sets token named.
func (h *heldSets) put(token, key, id string, held map[string]bool) {
	if token == "" || key == "" || id == "" || len(held) > heldMaxIDs {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]*list.Element{}
	}
	el, ok := h.m[token]
	if !ok || el.Value.(*heldEntry).key != key {
		h.dropLocked(token)
		el = h.lru.PushFront(&heldEntry{token: token, key: key})
		h.m[token] = el
	}
	e := el.Value.(*heldEntry)
	h.ids -= e.size()
	e.sets = append(e.sets, heldAt{id: id, held: held})
	if len(e.sets) > heldPerToken {
		e.sets = append(e.sets[:0:0], e.sets[len(e.sets)-heldPerToken:]...)
	}
	h.ids += e.size()
	h.lru.MoveToFront(el)
	for len(h.m) > heldMaxEntries || h.ids > heldMaxIDs {
		h.dropLocked(h.lru.Back().Value.(*heldEntry).token)
	}
}

func (h *heldSets) dropLocked(token string) {
	if el, ok := h.m[token]; ok {
		h.ids -= el.Value.(*heldEntry).size()
		h.lru.Remove(el)
		delete(h.m, token)
	}
}

// heldKey names what decides a restricted reader's events besides the
// engine's: the reader, its read limit and the query ("" when the
// reader cannot be told apart: its watches are not resumed).
func heldKey(rd Reader, q replica.Query) string {
	r, err := json.Marshal(rd)
	if err != nil {
		return ""
	}
	b, err := json.Marshal(q)
	if err != nil {
		return ""
	}
	return rd.String() + "\x00" + string(r) + "\x00" + string(b)
}

// newHeldToken returns a fresh token.
func newHeldToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// splitHeldID splits an id a restricted reader was given into the
// engine's id and the token.
func splitHeldID(id string) (engine, token string) {
	engine, token, _ = strings.Cut(id, "~")
	return engine, token
}
