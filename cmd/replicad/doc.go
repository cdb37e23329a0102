// Command replicad is the replicad daemon and its command line client.
//
//	replicad agent [flags]       run the daemon (package agent)
//	replicad COMMAND [args]      talk to a running agent (package client/cli)
//	replicad help                list the commands
//
// It only wires: it picks the subcommand, sets up a signal context and
// calls into agent or client/cli, which hold everything else.
package main
