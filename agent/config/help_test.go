package config

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

// staleClaims are what the help and the example config once said of
// policies, before the arbiter applied them.
var staleClaims = []string{"not applied yet", "merges as lww", "lands later", "NOT applied"}

// TestHelpDescribesPolicies: `replicad agent --help` and
// examples/replicad.hcl say that policies are applied (published by the
// hubs, arbitrated), not that every table merges as lww.
func TestHelpDescribesPolicies(t *testing.T) {
	var out bytes.Buffer
	if _, err := ParseArgs([]string{"--help"}, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	ex, err := os.ReadFile("../../examples/replicad.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"agent --help": out.String(), "examples/replicad.hcl": string(ex)} {
		for _, c := range staleClaims {
			if strings.Contains(text, c) {
				t.Errorf("%s still says %q of policies", name, c)
			}
		}
		for _, want := range []string{"_replicad_policy", "arbitrat"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s does not mention %q", name, want)
			}
		}
	}
}
