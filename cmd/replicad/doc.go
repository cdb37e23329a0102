// Command replicad is the replicad daemon and its command line client.
//
//	replicad agent [flags]       run the daemon (package agent)
//	replicad bench, lab, tls     load scenarios, the research lab, the cluster's PKI
//	replicad COMMAND [args]      talk to a running agent (package client/cli)
//	replicad help [COMMAND]      list the commands, or show one's help
//
// It only wires: a table of the daemon's subcommands beside the client's
// table, a signal context, and calls into agent, loadgen, lab, secure
// (tls.go: `replicad tls`) or client/cli, which hold everything else.
package main
