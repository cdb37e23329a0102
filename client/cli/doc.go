// Package cli is the replicad command line client: the subcommands put,
// get, delete, list, conflicts, resolve, errors, retry, sync, offline,
// online, status, peers, changes and reset, each one call of the agent's
// HTTP API through package client.
//
// Output is JSON when stdout is not a terminal or with --json, an aligned
// table on a terminal. Any error is one line on stderr and a non-zero exit
// status (1 for an error, 2 for bad usage).
package cli
