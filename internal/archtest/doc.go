// Package archtest holds no code of its own: its tests check the
// architecture invariants of ARCHITECTURE.md on the whole module, so that a
// change that breaks the layering fails `make test`.
package archtest
