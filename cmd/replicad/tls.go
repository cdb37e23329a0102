package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/replicad/replicad/client/cli"
	"github.com/replicad/replicad/secure"
	"github.com/spf13/pflag"
)

// `replicad tls ...`: the cluster's PKI and gossip keys, on the library
// calls of package secure. Its subcommands are a table like the client's:
// the help, usage errors and dispatch come from it.

// tlsCommand is one `replicad tls` subcommand.
type tlsCommand struct {
	words   string // "cert create"
	args    string // its arguments and flags as the usage shows them
	summary string // "" for none
	nargs   int    // positional arguments after the flags are parsed
	flags   func(fs *pflag.FlagSet, f *tlsFlags)
	run     func(f *tlsFlags, args []string, stdout io.Writer) error
}

type tlsFlags struct {
	dir                   string
	days                  int
	cluster, role, nodeID string
	hosts                 []string
}

var tlsCommands = []tlsCommand{
	{words: "ca create", args: "--dir DIR --cluster ID [--days N]", run: tlsCACreate,
		flags: func(fs *pflag.FlagSet, f *tlsFlags) {
			fs.StringVar(&f.cluster, "cluster", "", "the cluster `ID` (the agents' --cluster-id)")
		}},
	{words: "cert create", args: "NAME --dir DIR [--role hub|device] [--node-id HEX] [--days N] [--host H]...", nargs: 1, run: tlsCertCreate,
		flags: func(fs *pflag.FlagSet, f *tlsFlags) {
			fs.StringVar(&f.role, "role", "device", "hub or device: the role the node may claim")
			fs.StringVar(&f.nodeID, "node-id", "", "bind exactly this node `ID` (hex; an existing store's, from replicad status); default: a fresh random prefix")
			fs.StringArrayVar(&f.hosts, "host", nil, "DNS name or IP for the certificate's SANs (repeatable; for HTTPS clients that check host names)")
		}},
	{words: "cert show", args: "FILE", nargs: 1, run: tlsCertShow},
	{words: "gossip-key create", args: "FILE", nargs: 1, run: tlsGossipKeyCreate,
		summary: "a new gossip keyring file (one random key, mode 0600)"},
	{words: "gossip-key new", run: tlsGossipKeyNew,
		summary: "print a new random gossip key (base64)"},
}

const tlsGuide = `A secure cluster takes three commands: create the CA, create a certificate
per node, start each agent with --tls-ca DIR/ca.crt --tls-cert DIR/NAME.crt
--tls-key DIR/NAME.key (and --tls-revoked DIR/revoked.txt). Copy to each
node only ca.crt, its own NAME.crt and NAME.key; ca.key stays with the
operator. To revoke a certificate, append its serial to revoked.txt on
every node: it is re-read on the next handshake.
`

func (c *tlsCommand) synopsis() string { return strings.TrimSpace(c.words + " " + c.args) }

func tlsUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage:")
	for _, c := range tlsCommands {
		line := "  replicad tls " + c.synopsis()
		if c.summary != "" {
			line = fmt.Sprintf("%-41s %s", line, c.summary)
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprint(w, "\n"+tlsGuide)
}

type tlsUsageError struct{ msg string }

func (e tlsUsageError) Error() string { return e.msg }

// runTLS runs `replicad tls ARGS...` (args without "tls"): it returns the
// exit code (0, 1 on failure, 2 on bad usage).
func runTLS(args []string, stdout, stderr io.Writer) int {
	err := tlsMain(args, stdout, stderr)
	var ue tlsUsageError
	switch {
	case err == nil, errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "replicad tls: "+err.Error())
		return 2
	default:
		fmt.Fprintln(stderr, "replicad tls: "+err.Error())
		return 1
	}
}

func tlsMain(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		tlsUsage(stdout)
		if len(args) == 0 {
			return tlsUsageError{"no subcommand"}
		}
		return nil
	}
	var words []string
	for _, c := range tlsCommands {
		words = append(words, c.words)
	}
	if len(args) < 2 {
		return tlsUsageError{fmt.Sprintf("%q: want one of %s", args[0], quoteAll(words))}
	}
	what := args[0] + " " + args[1]
	var cmd *tlsCommand
	for i := range tlsCommands {
		if tlsCommands[i].words == what {
			cmd = &tlsCommands[i]
		}
	}
	if cmd == nil {
		if s := cli.Suggest(what, words); s != "" {
			return tlsUsageError{fmt.Sprintf("unknown subcommand %q: did you mean %s? (see replicad tls help)", what, s)}
		}
		return tlsUsageError{fmt.Sprintf("unknown subcommand %q (see replicad tls help)", what)}
	}
	f := &tlsFlags{}
	fs := pflag.NewFlagSet("replicad tls "+what, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		tlsUsage(stderr)
		fmt.Fprint(stderr, "\nFlags:\n", fs.FlagUsages())
	}
	fs.StringVar(&f.dir, "dir", "", "PKI `DIR` (ca.crt, ca.key, revoked.txt, NAME.crt, NAME.key)")
	fs.IntVar(&f.days, "days", 0, "validity in days (default: CA 3650, node 365)")
	if cmd.flags != nil {
		cmd.flags(fs, f)
	}
	if err := fs.Parse(args[2:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return tlsUsageError{err.Error()}
	}
	if f.days < 0 {
		return tlsUsageError{"--days must be positive"}
	}
	if fs.NArg() != cmd.nargs {
		return tlsUsageError{"usage: replicad tls " + cmd.synopsis()}
	}
	return cmd.run(f, fs.Args(), stdout)
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func (f *tlsFlags) validity() time.Duration { return time.Duration(f.days) * 24 * time.Hour }

func tlsCACreate(f *tlsFlags, _ []string, stdout io.Writer) error {
	if f.dir == "" || f.cluster == "" {
		return tlsUsageError{"usage: replicad tls ca create --dir DIR --cluster ID [--days N]"}
	}
	c, err := secure.CreateCA(secure.CAOptions{Dir: f.dir, Cluster: f.cluster, Validity: f.validity()})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "CA for cluster %q: %s/%s (key %s/%s, keep it offline), serial %s, valid until %s\n",
		f.cluster, f.dir, secure.CACertFile, f.dir, secure.CAKeyFile, secure.SerialString(c.SerialNumber), c.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func tlsCertCreate(f *tlsFlags, args []string, stdout io.Writer) error {
	if f.dir == "" {
		return tlsUsageError{"usage: replicad tls cert create NAME --dir DIR [--role hub|device] [--node-id HEX]"}
	}
	var id uint64
	if f.nodeID != "" {
		v, err := strconv.ParseUint(f.nodeID, 16, 64)
		if err != nil || v == 0 {
			return tlsUsageError{fmt.Sprintf("--node-id %q: want 1-16 hex digits, not 0", f.nodeID)}
		}
		id = v
	}
	_, ident, err := secure.CreateNodeCert(secure.CertOptions{Dir: f.dir, Name: args[0], Role: f.role, NodeID: id, Validity: f.validity(), Hosts: f.hosts})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: %s/%s.crt and %s/%s.key, role %s, node ids %016x/%d, serial %s, valid until %s\n",
		ident.Name, f.dir, ident.Name, f.dir, ident.Name, ident.Role, ident.ID, ident.Bits, secure.SerialString(ident.Serial), ident.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func tlsCertShow(_ *tlsFlags, args []string, stdout io.Writer) error {
	c, err := secure.ReadCertFile(args[0])
	if err != nil {
		return err
	}
	if c.IsCA {
		fmt.Fprintf(stdout, "CA %q, serial %s, valid %s to %s\n", c.Subject.CommonName, secure.SerialString(c.SerialNumber),
			c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
		return nil
	}
	id, err := secure.CertIdentity(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "node %q, cluster %q, role %s, node ids %016x/%d, serial %s, valid %s to %s\n",
		id.Name, id.Cluster, id.Role, id.ID, id.Bits, secure.SerialString(id.Serial),
		c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func tlsGossipKeyCreate(_ *tlsFlags, args []string, stdout io.Writer) error {
	path := args[0]
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists: refusing to overwrite a keyring", path)
	}
	key, err := secure.NewGossipKey()
	if err != nil {
		return err
	}
	k, _ := secure.ParseGossipKey(key)
	if err := secure.WriteKeyring(path, k, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gossip keyring %s: one key (fingerprint %s); copy it to every node (mode 0600) and start agents with --gossip-keyring %s\n", path, secure.KeyFingerprint(k), path)
	return nil
}

func tlsGossipKeyNew(_ *tlsFlags, _ []string, stdout io.Writer) error {
	key, err := secure.NewGossipKey()
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, key)
	return nil
}
