package archtest

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/replicad/replicad"

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	Deps       []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, module), "/") }

// TestLayering checks the dependency rules: crdt and policy are pure (the
// standard library, hlc and the value codec only; no I/O packages); store
// and gossip know nothing of merge rules (gossip does not import crdt or
// policy; store does not import policy); only cmd/replicad wires the
// packages together; the lab (a deterministic simulation) uses no real
// network, daemon or client, reads no wall clock, and only cmd/replicad
// imports it; api (the HTTP wire types) imports the standard library
// only, and no networking.
func TestLayering(t *testing.T) {
	pure := map[string]bool{"crdt": true, "policy": true}
	allowedPure := map[string]bool{
		module + "/hlc":                     true,
		module + "/crdt":                    true,
		module + "/internal/msgp":           true,
		"github.com/ugorji/go/codec":        true,
		"github.com/cockroachdb/datadriven": true, // tests only
	}
	forbiddenStd := []string{"os", "net", "net/http", "io/ioutil", "os/exec", "syscall", "log"}
	for _, p := range listPackages(t) {
		name := rel(p.ImportPath)
		if pure[name] {
			for _, imp := range p.Imports {
				if strings.Contains(imp, ".") && !allowedPure[imp] {
					t.Errorf("%s imports %s: pure packages may import only the standard library, hlc, crdt and the value codec", name, imp)
				}
				for _, f := range forbiddenStd {
					if imp == f {
						t.Errorf("%s imports %s: pure packages do no I/O", name, imp)
					}
				}
			}
		}
		if name == "api" {
			// The wire types: the standard library only, no HTTP code.
			for _, imp := range p.Imports {
				if strings.Contains(imp, ".") || strings.HasPrefix(imp, "net") {
					t.Errorf("api imports %s: the wire types depend on the standard library's encoding only", imp)
				}
			}
		}
		if name == "lab" {
			// The lab is a deterministic simulation: no real network,
			// no processes, no wall clock (checked in its sources).
			for _, imp := range p.Imports {
				if imp == "net" || imp == "net/http" || imp == "os/exec" || imp == "syscall" {
					t.Errorf("lab imports %s: the lab simulates its network and does no I/O beyond writing its results", imp)
				}
			}
			checkNoWallClock(t, p.Dir)
		}
		for _, imp := range p.Imports {
			r := rel(imp)
			if !strings.HasPrefix(imp, module) {
				continue
			}
			switch {
			case strings.HasPrefix(r, "cmd/"):
				t.Errorf("%s imports %s: nothing imports a command", name, r)
			case name == "gossip" && (r == "crdt" || r == "policy" || r == "store"):
				t.Errorf("gossip imports %s: gossip carries opaque bytes and knows nothing of records or merge rules", r)
			case name == "store" && r == "policy":
				t.Errorf("store imports policy: the store knows nothing of merge rules")
			case name == "lab" && (r == "agent" || r == "gossip" || r == "client" || strings.HasPrefix(r, "client/") || r == "loadgen"):
				t.Errorf("lab imports %s: the lab simulates nodes from crdt, policy and replication; it runs no daemon, gossip or client", r)
			case r == "lab" && !strings.HasPrefix(name, "cmd/") && !strings.HasPrefix(name, "lab"):
				t.Errorf("%s imports lab: only cmd/replicad wires the lab", name)
			case r == "hlc" || r == "crdt" || r == "internal/archtest":
			}
			checkAgentLayers(t, name, r)
		}
		if name == "replica" {
			// The embedding package is one replica without a daemon: it
			// serves no HTTP, and nothing of the agent's assembly, HTTP
			// API or extensions reaches it. (net/http still arrives
			// indirectly through libraries: memberlist's metrics, Pebble's
			// error reporting.)
			for _, imp := range p.Imports {
				if imp == "net/http" || strings.HasPrefix(imp, "net/http/") {
					t.Errorf("replica imports %s: the embedding package serves no HTTP", imp)
				}
			}
			for _, d := range p.Deps {
				r := rel(d)
				if strings.HasPrefix(d, module) && (r == "agent" || strings.HasPrefix(r, "agent/") || r == "internal/httpapi" || strings.HasPrefix(r, "internal/ext/") || r == "client" || strings.HasPrefix(r, "client/")) {
					t.Errorf("replica depends on %s: the embedding package is below the agent, its HTTP API and its extensions", r)
				}
			}
		}
		if name == "internal/node" {
			// The node is a replica's engine whatever embeds it: no HTTP,
			// no flags or config files.
			for _, imp := range p.Imports {
				if imp == "net/http" || imp == "github.com/spf13/pflag" || strings.HasPrefix(imp, "github.com/hashicorp/hcl") {
					t.Errorf("internal/node imports %s: the node has no HTTP and reads no flags or files of configuration", imp)
				}
			}
		}
	}
}

// checkAgentLayers checks the daemon's layers (ARCHITECTURE.md, "The
// agent's layers"): extensions (internal/ext/*) never import each other
// (but every one, the agent and internal/httpapi may import
// internal/ext/extapi, which imports none of them);
// only agent imports internal/httpapi and the extensions; only
// cmd/replicad imports agent; internal/node imports none of them; only
// replica imports internal/replicacore (the agent is built on replica,
// through the seam internal/replicaopt, which only they import).
func checkAgentLayers(t *testing.T, name, imp string) {
	t.Helper()
	ext := func(p string) string {
		if rest, ok := strings.CutPrefix(p, "internal/ext/"); ok {
			return strings.SplitN(rest, "/", 2)[0]
		}
		return ""
	}
	switch {
	case ext(imp) == "extapi" && (ext(name) != "" || name == "agent" || name == "internal/httpapi"):
		// What the extensions share of the assembly, declared once (the
		// API's machinery serves it).
	case ext(name) == "extapi" && (ext(imp) != "" || imp == "agent" || imp == "internal/httpapi"):
		t.Errorf("internal/ext/extapi imports %s: the extensions' shared declarations import no extension, agent or HTTP machinery", imp)
	case ext(imp) != "" && ext(name) != "" && ext(imp) != ext(name):
		t.Errorf("%s imports %s: extensions never import each other (the assembly wires what one needs of another through an interface)", name, imp)
	case ext(imp) != "" && ext(name) == "" && name != "agent":
		t.Errorf("%s imports %s: only agent (the assembly) imports the extensions", name, imp)
	case imp == "internal/httpapi" && name != "agent":
		t.Errorf("%s imports internal/httpapi: only agent (the assembly) does", name)
	case imp == "agent" && name != "cmd/replicad":
		t.Errorf("%s imports agent: only cmd/replicad does", name)
	case imp == "internal/replicacore" && name != "replica":
		t.Errorf("%s imports internal/replicacore: only replica builds on the core; the agent goes through replica and the seam (internal/replicaopt)", name)
	case imp == "internal/replicaopt" && name != "replica" && name != "agent":
		t.Errorf("%s imports internal/replicaopt: the seam is between replica and the agent only", name)
	case name == "internal/node" && (imp == "agent" || strings.HasPrefix(imp, "agent/") || ext(imp) != "" || imp == "internal/httpapi"):
		t.Errorf("internal/node imports %s: the node is below the agent, its extensions and its HTTP API", imp)
	}
}

// TestPackageDocs checks that every package has a doc comment that starts
// "Package name".
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		fset := token.NewFileSet()
		files, err := filepath.Glob(filepath.Join(p.Dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(fset, f, nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil {
				text := af.Doc.Text()
				want := "Package " + af.Name.Name + " "
				if af.Name.Name == "main" {
					want = "Command "
				}
				if !strings.HasPrefix(text, want) {
					t.Errorf("%s: package doc starts %q, want %q", f, firstLine(text), want)
				}
				found = true
			}
		}
		if !found {
			t.Errorf("package %s has no doc comment (add a doc.go)", rel(p.ImportPath))
		}
	}
}

// checkNoWallClock fails on a non-test source file of dir that reads the
// wall clock or sleeps: simulated time only.
func checkNoWallClock(t *testing.T, dir string) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"time.Now(", "time.Since(", "time.Sleep(", "time.After(", "time.NewTimer(", "time.Tick("} {
			if strings.Contains(string(src), bad) {
				t.Errorf("%s calls %s: the lab reads no wall clock (simulated time only)", f, strings.TrimSuffix(bad, "("))
			}
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
