//go:build race

package cmem

// raceEnabled: under the race detector Pebble may allocate its manual
// memory from the Go heap (its manual package picks at random).
const raceEnabled = true
