package httpapi

import (
	"fmt"
	"testing"
)

// TestHeldSetsBounds: a token keeps its last heldPerToken sets; a set is
// found only for its key and id; past the bounds the least recently
// used tokens go.
func TestHeldSetsBounds(t *testing.T) {
	var h heldSets
	set := func(n int) map[string]bool {
		m := map[string]bool{}
		for i := range n {
			m[fmt.Sprint("r", i)] = true
		}
		return m
	}
	for i := range heldPerToken + 2 {
		h.put("tok", "key", fmt.Sprint("id", i), set(i+1))
	}
	for i := range heldPerToken + 2 {
		held, ok := h.get("tok", "key", fmt.Sprint("id", i))
		if want := i >= 2; ok != want || ok && len(held) != i+1 {
			t.Errorf("id%d: %d records, found %v, want found %v", i, len(held), ok, want)
		}
	}
	if _, ok := h.get("tok", "other key", "id5"); ok {
		t.Error("found for another key")
	}
	if _, ok := h.get("", "key", "id5"); ok {
		t.Error("found without a token")
	}
	// Another key under the token replaces its sets.
	h.put("tok", "key2", "id9", set(1))
	if _, ok := h.get("tok", "key", "id5"); ok {
		t.Error("a set of the token's former key kept")
	}
	// The entry bound: the least recently used go first.
	for i := range heldMaxEntries {
		h.put(fmt.Sprint("t", i), "key", "id", set(1))
		if i == 0 {
			h.get("tok", "key2", "id9") // used: kept longer than t0
		}
	}
	if _, ok := h.get("t0", "key", "id"); ok || len(h.m) != heldMaxEntries {
		t.Errorf("%d entries kept (bound %d), t0 (the least recently used) too: %v", len(h.m), heldMaxEntries, ok)
	}
	if _, ok := h.get("tok", "key2", "id9"); !ok {
		t.Error("an entry used since t0 went before it")
	}
	if _, ok := h.get(fmt.Sprint("t", heldMaxEntries-1), "key", "id"); !ok {
		t.Error("the newest entry went")
	}
	// The record-id bound.
	h.put("big", "key", "id", set(heldMaxIDs/2+1))
	h.put("big2", "key", "id", set(heldMaxIDs/2+1))
	if _, ok := h.get("big", "key", "id"); ok {
		t.Error("more record ids kept than the bound")
	}
	if _, ok := h.get("big2", "key", "id"); !ok || h.ids > heldMaxIDs {
		t.Errorf("the newest set went (%d ids kept)", h.ids)
	}
	h.put("huge", "key", "id", set(heldMaxIDs+1))
	if _, ok := h.get("huge", "key", "id"); ok {
		t.Error("a set beyond the bound kept")
	}
}
