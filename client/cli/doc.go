// Package cli is the replicad command line client: a table of
// subcommands (Commands: put, get, delete, list, drafts, commit, discard,
// conflicts, resolve, duplicates, dedupe, workflows, deliveries, profile,
// errors, retry, sync, offline, online, status, peers, changes, reset,
// compact), each one or a few calls of the agent's HTTP API through
// package client. Each entry declares its arguments, summary, help,
// flags and run function; the help, the usage errors and the dispatch
// are derived from the table.
//
// Output is JSON when stdout is not a terminal or with --json, an aligned
// table on a terminal. Any error is one line on stderr and a non-zero exit
// status (1 for an error, 2 for bad usage).
package cli
