// Package e2e holds end-to-end tests of replicad: TestMain builds the real
// binary once, and each test runs agents (hubs and devices) as processes on
// loopback with free ports and temporary data directories, driving them
// through the CLI and the Go client.
package e2e
