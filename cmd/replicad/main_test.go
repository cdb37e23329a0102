package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/replicad/replicad/client/cli"
)

func runOut(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return o.String(), e.String(), code
}

// TestHelpListsEveryCommand: replicad --help (and help, -h) lists every
// subcommand of the daemon's table and of the client's, with its
// synopsis and summary; replicad alone prints it too and exits 2.
func TestHelpListsEveryCommand(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "help"}, {}} {
		_, out, code := runOut(args...)
		want := 0
		if len(args) == 0 {
			want = 2
		}
		if code != want {
			t.Errorf("replicad %v: exit %d, want %d", args, code, want)
		}
		for _, s := range subcommands {
			if !strings.Contains(out, "  "+s.synopsis+" ") || !strings.Contains(out, s.summary) {
				t.Errorf("replicad %v does not list %q:\n%s", args, s.synopsis, out)
			}
		}
		for _, c := range cli.Commands {
			if !strings.Contains(out, "  "+c.Synopsis()) || !strings.Contains(out, c.Summary) {
				t.Errorf("replicad %v does not list %q:\n%s", args, c.Synopsis(), out)
			}
		}
	}
}

// TestHelpCommand: replicad help NAME works for every command of both
// tables: a client command's usage line, summary and flags (as NAME
// --help prints them); a daemon subcommand's own help.
func TestHelpCommand(t *testing.T) {
	for _, c := range cli.Commands {
		_, out, code := runOut("help", c.Name)
		if code != 0 || !strings.HasPrefix(out, "Usage: replicad "+c.Synopsis()) || !strings.Contains(out, "--addr") {
			t.Errorf("replicad help %s: exit %d:\n%s", c.Name, code, out)
		}
		_, same, code := runOut(c.Name, "--help")
		if code != 0 || same != out {
			t.Errorf("replicad %s --help (exit %d) differs from replicad help %s:\n%s", c.Name, code, c.Name, same)
		}
	}
	for _, s := range subcommands {
		o, e, code := runOut("help", s.name)
		if code != 0 || !strings.Contains(o+e, "replicad "+s.name) {
			t.Errorf("replicad help %s: exit %d:\n%s%s", s.name, code, o, e)
		}
	}
}

// TestUnknownCommand: a word that is no command is a usage error (exit
// 2, one line) naming the nearest command when one is near, in dispatch
// and in help alike.
func TestUnknownCommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"stauts"}, `unknown command "stauts": did you mean status?`},
		{[]string{"--addr", "127.0.0.1:1", "conflict"}, `did you mean conflicts?`},
		{[]string{"agnet"}, `did you mean agent?`},
		{[]string{"help", "duplicate"}, `did you mean duplicates?`},
		{[]string{"help", "tl"}, `did you mean tls?`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" (see replicad help)`},
	} {
		_, out, code := runOut(c.args...)
		if code != 2 || !strings.Contains(out, c.want) || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("replicad %v: exit %d, stderr %q; want 2 and %q", c.args, code, out, c.want)
		}
	}
	if _, out, _ := runOut("frobnicate"); strings.Contains(out, "did you mean") {
		t.Errorf("a suggestion for a word near no command: %q", out)
	}
}

// TestUsageFromTable: a wrong number of arguments is a usage error
// showing the command's usage line from the table.
func TestUsageFromTable(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "jobs"}, "usage: replicad get TABLE ID (replicad help get)"},
		{[]string{"status", "extra"}, "usage: replicad status (replicad help status)"},
		{[]string{"put", "jobs", "j1"}, "usage: replicad put TABLE ID FIELD=TEXT|FIELD:=JSON..."},
		{[]string{"profile"}, "usage: replicad profile preview DEVICE [PROFILE] | show | reload"},
		{[]string{"profile", "nope"}, "usage: replicad profile preview DEVICE [PROFILE] | show | reload"},
	} {
		_, out, code := runOut(c.args...)
		if code != 2 || !strings.Contains(out, c.want) {
			t.Errorf("replicad %v: exit %d, stderr %q; want 2 and %q", c.args, code, out, c.want)
		}
	}
}

// TestREADMEListsEveryCommand: the README's table of client commands
// ("### The client") names every command of the table, and no command
// the table lacks.
func TestREADMEListsEveryCommand(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(b), "\n### The client\n")
	if !ok {
		t.Fatal("README has no section ### The client")
	}
	sec, _, _ = strings.Cut(sec, "\n### ")
	named := map[string]bool{}
	for _, line := range strings.Split(sec, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell, _, _ := strings.Cut(line[2:], " |")
		for _, part := range strings.Split(cell, "`, `") {
			name, _, _ := strings.Cut(strings.Trim(part, "`"), " ")
			named[name] = true
		}
	}
	for _, c := range cli.Commands {
		if !named[c.Name] {
			t.Errorf("README's client table lacks %s", c.Name)
		}
		delete(named, c.Name)
	}
	for n := range named {
		t.Errorf("README's client table names %q, which is no command", n)
	}
}
