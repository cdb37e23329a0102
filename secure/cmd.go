package secure

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

const tlsUsage = `Usage:
  replicad tls ca create --dir DIR --cluster ID [--days N]
  replicad tls cert create NAME --dir DIR [--role hub|device] [--node-id HEX] [--days N] [--host H]...
  replicad tls cert show FILE
  replicad tls gossip-key create FILE     a new gossip keyring file (one random key, mode 0600)
  replicad tls gossip-key new             print a new random gossip key (base64)

A secure cluster takes three commands: create the CA, create a certificate
per node, start each agent with --tls-ca DIR/ca.crt --tls-cert DIR/NAME.crt
--tls-key DIR/NAME.key (and --tls-revoked DIR/revoked.txt). Copy to each
node only ca.crt, its own NAME.crt and NAME.key; ca.key stays with the
operator. To revoke a certificate, append its serial to revoked.txt on
every node: it is re-read on the next handshake.
`

// RunTLSCommand runs `replicad tls ARGS...` (args without "tls"): it
// returns the exit code (0, 1 on failure, 2 on bad usage).
func RunTLSCommand(args []string, stdout, stderr io.Writer) int {
	err := runTLS(args, stdout, stderr)
	var ue usageErr
	switch {
	case err == nil:
		return 0
	case errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "replicad tls: "+err.Error())
		return 2
	default:
		fmt.Fprintln(stderr, "replicad tls: "+err.Error())
		return 1
	}
}

type usageErr struct{ msg string }

func (e usageErr) Error() string { return e.msg }

func runTLS(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, tlsUsage)
		if len(args) == 0 {
			return usageErr{"no subcommand"}
		}
		return nil
	}
	if len(args) < 2 {
		return usageErr{fmt.Sprintf("%q: want \"ca create\", \"cert create NAME\" or \"cert show FILE\"", strings.Join(args, " "))}
	}
	what := args[0] + " " + args[1]
	fs := pflag.NewFlagSet("replicad tls "+what, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tlsUsage, "\nFlags:\n", fs.FlagUsages()) }
	dir := fs.String("dir", "", "PKI `DIR` (ca.crt, ca.key, revoked.txt, NAME.crt, NAME.key)")
	days := fs.Int("days", 0, "validity in days (default: CA 3650, node 365)")
	var cluster, role, nodeID string
	var hosts []string
	switch what {
	case "ca create":
		fs.StringVar(&cluster, "cluster", "", "the cluster `ID` (the agents' --cluster-id)")
	case "cert create":
		fs.StringVar(&role, "role", "device", "hub or device: the role the node may claim")
		fs.StringVar(&nodeID, "node-id", "", "bind exactly this node `ID` (hex; an existing store's, from replicad status); default: a fresh random prefix")
		fs.StringArrayVar(&hosts, "host", nil, "DNS name or IP for the certificate's SANs (repeatable; for HTTPS clients that check host names)")
	case "cert show", "gossip-key create":
	case "gossip-key new":
		key, err := NewGossipKey()
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, key)
		return nil
	default:
		return usageErr{fmt.Sprintf("unknown subcommand %q (see replicad tls help)", what)}
	}
	if err := fs.Parse(args[2:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return err
		}
		return usageErr{err.Error()}
	}
	validity := time.Duration(*days) * 24 * time.Hour
	if *days < 0 {
		return usageErr{"--days must be positive"}
	}
	rest := fs.Args()
	switch what {
	case "ca create":
		if *dir == "" || cluster == "" || len(rest) > 0 {
			return usageErr{"usage: replicad tls ca create --dir DIR --cluster ID [--days N]"}
		}
		c, err := CreateCA(CAOptions{Dir: *dir, Cluster: cluster, Validity: validity})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "CA for cluster %q: %s/%s (key %s/%s, keep it offline), serial %s, valid until %s\n",
			cluster, *dir, CACertFile, *dir, CAKeyFile, SerialString(c.SerialNumber), c.NotAfter.UTC().Format(time.RFC3339))
	case "cert create":
		if *dir == "" || len(rest) != 1 {
			return usageErr{"usage: replicad tls cert create NAME --dir DIR [--role hub|device] [--node-id HEX]"}
		}
		var id uint64
		if nodeID != "" {
			v, err := strconv.ParseUint(nodeID, 16, 64)
			if err != nil || v == 0 {
				return usageErr{fmt.Sprintf("--node-id %q: want 1-16 hex digits, not 0", nodeID)}
			}
			id = v
		}
		_, ident, err := CreateNodeCert(CertOptions{Dir: *dir, Name: rest[0], Role: role, NodeID: id, Validity: validity, Hosts: hosts})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: %s/%s.crt and %s/%s.key, role %s, node ids %016x/%d, serial %s, valid until %s\n",
			ident.Name, *dir, ident.Name, *dir, ident.Name, ident.Role, ident.ID, ident.Bits, SerialString(ident.Serial), ident.NotAfter.UTC().Format(time.RFC3339))
	case "gossip-key create":
		if len(rest) != 1 {
			return usageErr{"usage: replicad tls gossip-key create FILE"}
		}
		if _, err := os.Stat(rest[0]); err == nil {
			return fmt.Errorf("%s exists: refusing to overwrite a keyring", rest[0])
		}
		key, err := NewGossipKey()
		if err != nil {
			return err
		}
		k, _ := ParseGossipKey(key)
		if err := WriteKeyring(rest[0], k, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "gossip keyring %s: one key (fingerprint %s); copy it to every node (mode 0600) and start agents with --gossip-keyring %s\n", rest[0], KeyFingerprint(k), rest[0])
	case "cert show":
		if len(rest) != 1 {
			return usageErr{"usage: replicad tls cert show FILE"}
		}
		certs, err := readCerts(rest[0])
		if err != nil {
			return err
		}
		c := certs[0]
		if c.IsCA {
			fmt.Fprintf(stdout, "CA %q, serial %s, valid %s to %s\n", c.Subject.CommonName, SerialString(c.SerialNumber),
				c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
			return nil
		}
		id, err := identityOf(c)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "node %q, cluster %q, role %s, node ids %016x/%d, serial %s, valid %s to %s\n",
			id.Name, id.Cluster, id.Role, id.ID, id.Bits, SerialString(id.Serial),
			c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}
