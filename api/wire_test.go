package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/wire.golden from the types")

// wireTypes is every type of the package, by name.
var wireTypes = []any{
	Error{}, Candidate{}, Record{}, PutRequest{}, Page{}, Conflict{}, ConflictList{}, ResolveRequest{},
	Change{}, Changes{}, SyncError{}, SyncErrorList{}, Stats{}, Summary{}, Decisions{}, Undecided{},
	ConnectivityRequest{}, Partner{}, Peer{}, PeerList{}, Status{}, TableStatus{}, SyncState{},
	DiskUsage{}, CompactResult{}, ResetRequest{}, ResetResult{}, Draft{}, DraftedRecord{}, DraftPage{},
	DiscardedDraft{}, OnlineRecord{}, OnlinePage{}, Duplicate{}, DuplicateList{}, DuplicateRequest{},
	DuplicateResolution{}, Workflow{}, WorkflowList{}, WorkflowDetail{}, Delivery{}, DeliveryPage{},
	TableCount{}, Preview{}, ProfilesReloaded{}, SecurityStatus{}, TLSStatus{}, GossipStatus{},
	GossipKeyRequest{}, GrantStatus{}, ParkedWrite{}, ParkedPage{}, ParkedRelease{},
	Plan{}, Count{}, View{}, ViewList{}, WatchEvent{}, WatchPage{}, IndexStatus{},
}

// fill sets every field of v (recursively) to a value that is not its
// zero: strings to their field's name, numbers to 1, slices and maps to
// one element, raw JSON to 1, times to 2026-12-07T08:00:00Z.
func fill(v reflect.Value, name string) {
	switch v.Type() {
	case reflect.TypeOf(json.RawMessage(nil)):
		v.SetBytes([]byte("1"))
		return
	case reflect.TypeOf(time.Time{}):
		v.Set(reflect.ValueOf(time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i), v.Type().Field(i).Name)
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), name)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), name)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, name)
		m.SetMapIndex(reflect.ValueOf("k"), e)
		v.Set(m)
	case reflect.String:
		v.SetString(strings.ToLower(name))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint64:
		v.SetUint(1)
	default:
		panic("fill: add kind " + v.Kind().String())
	}
}

// TestWireGolden pins the JSON form of every type: its encoding filled
// and empty (which fields are left out when empty) is the golden one
// (testdata/wire.golden), and the golden filled form decodes into the
// type with no field unknown and encodes back to the same bytes. A
// renamed, retyped, added or removed field fails it; change the golden
// (go test ./api -update) only with the agent and every client.
func TestWireGolden(t *testing.T) {
	var got bytes.Buffer
	for _, x := range wireTypes {
		typ := reflect.TypeOf(x)
		full := reflect.New(typ)
		fill(full.Elem(), typ.Name())
		fb, err := json.Marshal(full.Interface())
		if err != nil {
			t.Fatal(err)
		}
		zb, err := json.Marshal(reflect.New(typ).Interface())
		if err != nil {
			t.Fatal(err)
		}
		got.WriteString(typ.Name() + "\n" + string(fb) + "\n" + string(zb) + "\n\n")
	}
	path := filepath.Join("testdata", "wire.golden")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wantBy := map[string][]string{}
	for _, block := range strings.Split(strings.TrimSpace(string(want)), "\n\n") {
		lines := strings.Split(block, "\n")
		if len(lines) != 3 {
			t.Fatalf("golden block %q: want NAME, filled JSON, empty JSON", block)
		}
		wantBy[lines[0]] = lines[1:]
	}
	gotBy := map[string][]string{}
	for _, block := range strings.Split(strings.TrimSpace(got.String()), "\n\n") {
		lines := strings.Split(block, "\n")
		gotBy[lines[0]] = lines[1:]
	}
	for _, x := range wireTypes {
		typ := reflect.TypeOf(x)
		name := typ.Name()
		w, ok := wantBy[name]
		if !ok {
			t.Errorf("%s has no golden form", name)
			continue
		}
		delete(wantBy, name)
		if g := gotBy[name]; g[0] != w[0] || g[1] != w[1] {
			t.Errorf("%s's wire form changed:\n got %s\n     %s\nwant %s\n     %s", name, g[0], g[1], w[0], w[1])
		}
		// The golden form decodes strictly and encodes back unchanged.
		v := reflect.New(typ)
		dec := json.NewDecoder(strings.NewReader(w[0]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v.Interface()); err != nil {
			t.Errorf("%s: golden form does not decode strictly: %v", name, err)
			continue
		}
		if b, _ := json.Marshal(v.Interface()); string(b) != w[0] {
			t.Errorf("%s: golden form does not round-trip:\n got %s\nwant %s", name, b, w[0])
		}
	}
	for name := range wantBy {
		t.Errorf("golden form of %s, which the package no longer declares", name)
	}
}

// TestWireTypesListed: every type the package declares is in wireTypes,
// so that each one has a golden form.
func TestWireTypesListed(t *testing.T) {
	listed := map[string]bool{}
	for _, x := range wireTypes {
		listed[reflect.TypeOf(x).Name()] = true
	}
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, s := range g.Specs {
				if name := s.(*ast.TypeSpec).Name.Name; ast.IsExported(name) && !listed[name] {
					t.Errorf("type %s is not in wireTypes: its wire form is not pinned", name)
				}
			}
		}
	}
}
