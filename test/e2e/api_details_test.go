package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replicad/replicad/client"
)

// apiCall sends one request to n's API and returns the status, the
// response's headers and its body.
func apiCall(t *testing.T, n *node, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.api+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// goTypeWords are pieces of Go's own decoder messages: type names and
// the package prefix, which mean nothing to a user of the API.
var goTypeWords = regexp.MustCompile(`Go (struct|value)|json\.|json:|map\[|RawMessage|\bagent\.|[a-z]+Body\b`)

// Every route that takes a JSON body answers a body of the wrong shape
// with a 400 in the user's words (the field, what it takes, the offset),
// and stores nothing.
func TestBodyErrorsNameFieldsNotGoTypes(t *testing.T) {
	d := startNode(t, "device")
	cases := []struct {
		method, path, body string
		want               string // a piece of the message
	}{
		{"PUT", "/v1/tables/jobs/records/j1", `{"fields":[1,2]}`, `field "fields" of the body: want an object, got an array (at offset 10)`},
		{"PUT", "/v1/tables/jobs/records/j1", `[{"fields":{}}]`, `the body must be a JSON object, got an array`},
		{"PUT", "/v1/tables/jobs/records/j1", `{"fields":{"a":1},"feilds":{}}`, `unknown field "feilds" in the body at offset 18; this request takes "fields"`},
		{"PUT", "/v1/tables/jobs/records/j1", `{"fields":{"a":[1,}}`, `malformed JSON body at offset 18 (line 1, column 19): invalid character '}'`},
		{"PUT", "/v1/tables/jobs/records/j1?draft=true", `{"fields":"a=1"}`, `field "fields" of the body: want an object, got a string`},
		{"POST", "/v1/conflicts/jobs/j1/title", `{"pick":"0"}`, `field "pick" of the body: want an integer, got a string`},
		{"POST", "/v1/conflicts/jobs/j1/title", `{"pick":0.5}`, `field "pick" of the body: want an integer, got 0.5`},
		{"POST", "/v1/duplicates/jobs/j1", `{"action":["keep"]}`, `field "action" of the body: want a string, got an array`},
		{"POST", "/v1/connectivity", `{"online":"no"}`, `field "online" of the body: want true or false, got a string`},
		{"POST", "/v1/connectivity", `{"online":false,"why":1}`, `unknown field "why" in the body at offset 16; this request takes "online"`},
		{"POST", "/v1/reset", `{"confirm":"yes"}`, `field "confirm" of the body: want true or false, got a string`},
		{"POST", "/v1/gossip/keys", `{"op":1}`, `field "op" of the body: want a string, got a number`},
		{"POST", "/v1/gossip/keys", `{"op":"use",`, `malformed JSON body: it ends at offset 12 before the JSON is complete`},
	}
	for _, c := range cases {
		code, _, b := apiCall(t, d, c.method, c.path, c.body)
		var e struct {
			Error string `json:"error"`
		}
		if code != http.StatusBadRequest || json.Unmarshal(b, &e) != nil {
			t.Errorf("%s %s %s: got %d %s, want 400 {\"error\":...}", c.method, c.path, c.body, code, b)
			continue
		}
		if !strings.Contains(e.Error, c.want) {
			t.Errorf("%s %s %s:\n got %q\nwant it to contain %q", c.method, c.path, c.body, e.Error, c.want)
		}
		if goTypeWords.MatchString(e.Error) {
			t.Errorf("%s %s %s: %q names Go types", c.method, c.path, c.body, e.Error)
		}
	}
	ctx := context.Background()
	if ch, err := d.client().Changes(ctx, "0", 0); err != nil || len(ch.Changes) != 0 {
		t.Errorf("after rejected requests the feed holds %+v (%v); want nothing", ch, err)
	}
	if st, err := d.client().Status(ctx); err != nil || !st.Online {
		t.Errorf("after rejected requests: status %+v (%v); want still online", st, err)
	}
}

// routePattern finds the route patterns the agent registers
// (mux.HandleFunc("GET /v1/...", ...) and mux.Handle(...)).
var routePattern = regexp.MustCompile(`(?:mux|rt)\.Handle(?:Func|HTTP)?\("([A-Z]+) (/[^"]*)"`)

// samplePath fills a pattern's wildcards with sample values.
func samplePath(p string) string {
	p = strings.ReplaceAll(p, "{$}", "")
	return regexp.MustCompile(`\{[a-z]+\}`).ReplaceAllStringFunc(p, func(w string) string {
		switch w {
		case "{eid}", "{seq}", "{origin}":
			return "1"
		}
		return "x" + strings.Trim(w, "{}")
	})
}

// Every route the agent registers answers a method it does not take with
// 405, an Allow header naming the methods it takes and a JSON error; an
// unknown path stays a 404. The routes are read from the agent's source
// (the assembly, its HTTP API and its extensions), so a route added later
// is covered too.
func TestWrongMethodIs405WithAllow(t *testing.T) {
	var files []string
	for _, glob := range []string{"../../agent/*.go", "../../internal/httpapi/*.go", "../../internal/ext/*/*.go"} {
		fs, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, fs...)
	}
	if len(files) == 0 {
		t.Fatalf("agent sources: none found")
	}
	methods := map[string]map[string]bool{} // sample path -> methods
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range routePattern.FindAllStringSubmatch(string(src), -1) {
			p := samplePath(m[2])
			if methods[p] == nil {
				methods[p] = map[string]bool{}
			}
			methods[p][m[1]] = true
			if m[1] == "GET" {
				methods[p]["HEAD"] = true
			}
		}
	}
	if len(methods) < 30 {
		t.Fatalf("found %d routes in the agent's source; the pattern no longer matches how routes are registered", len(methods))
	}
	t.Setenv("REPLICAD_TESTING_DEBUG_API", "1") // the debug and profiling routes too
	t.Setenv("REPLICAD_PPROF", "1")
	d := startNode(t, "device")
	for path, ms := range methods {
		var allow []string
		for m := range ms {
			allow = append(allow, m)
		}
		sort.Strings(allow)
		want := strings.Join(allow, ", ")
		for _, m := range []string{"GET", "PUT", "POST", "DELETE", "PATCH"} {
			if ms[m] {
				continue
			}
			code, h, b := apiCall(t, d, m, path, "")
			var e struct {
				Error string `json:"error"`
			}
			if code != http.StatusMethodNotAllowed || h.Get("Allow") != want || json.Unmarshal(b, &e) != nil || e.Error == "" {
				t.Errorf("%s %s: got %d Allow %q %s; want 405 Allow %q with {\"error\":...}", m, path, code, h.Get("Allow"), b, want)
			}
		}
	}
	for _, m := range []string{"GET", "POST"} {
		if code, h, _ := apiCall(t, d, m, "/v1/nothing/here", ""); code != http.StatusNotFound || h.Get("Allow") != "" {
			t.Errorf("%s of an unknown path: got %d Allow %q; want 404", m, code, h.Get("Allow"))
		}
	}
}

// PUT {"fields":{}} creates an absent (or deleted) record empty, like
// touching a file, and on a record that exists writes nothing: no change
// in the feed, nothing to sync, the fields as they were.
func TestPutNoFieldsTouches(t *testing.T) {
	d := startNode(t, "device")
	ctx := context.Background()
	feedLen := func() int {
		t.Helper()
		ch, err := d.client().Changes(ctx, "0", 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(ch.Changes)
	}
	put := func(body string, wantFields string) {
		t.Helper()
		code, _, b := apiCall(t, d, "PUT", "/v1/tables/jobs/records/j1", body)
		var r struct {
			Fields json.RawMessage `json:"fields"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &r) != nil || string(r.Fields) != wantFields {
			t.Fatalf("PUT %s: got %d %s; want 200 with fields %s", body, code, b, wantFields)
		}
	}
	put(`{"fields":{}}`, `{}`) // absent: created empty
	if r, err := d.client().Get(ctx, "jobs", "j1"); err != nil || len(r.Fields) != 0 {
		t.Fatalf("after PUT {} on an absent record: %+v, %v; want it to exist, empty", r, err)
	}
	if n := feedLen(); n != 1 {
		t.Fatalf("creating an empty record: %d changes in the feed, want 1", n)
	}
	put(`{"fields":{}}`, `{}`) // exists: nothing written
	put(`{"fields":{"a":1}}`, `{"a":1}`)
	put(`{"fields":{}}`, `{"a":1}`)
	if n := feedLen(); n != 2 {
		t.Errorf("PUT {} on an existing record wrote: %d changes in the feed, want 2 (the creation and a=1)", n)
	}
	if st, err := d.client().Status(ctx); err != nil || st.PendingOutbound != 2 {
		t.Errorf("status %+v (%v): want 2 pending writes", st, err)
	}
	if _, err := d.client().Delete(ctx, "jobs", "j1"); err != nil {
		t.Fatal(err)
	}
	put(`{"fields":{}}`, `{}`) // deleted: created again, empty
	if n := feedLen(); n != 4 {
		t.Errorf("PUT {} on a deleted record: %d changes in the feed, want 4", n)
	}
}

// put takes FIELD=TEXT (a string, always) and FIELD:=JSON (any JSON
// value, which must parse: broken JSON is a usage error and nothing is
// stored). --guess keeps the old reading of FIELD=VALUE (JSON where it
// parses) and warns when a value looks like JSON but does not parse.
func TestPutFieldSyntax(t *testing.T) {
	d := startNode(t, "device")
	ctx := context.Background()

	_, errOut, code := d.cli("put", "jobs", "j1", "title=pump", "tags:=[1,2")
	if code != 2 || !strings.Contains(errOut, "tags:=[1,2: not JSON") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("put tags:=[1,2: exit %d, stderr %q; want 2 and one line naming the broken field", code, errOut)
	}
	for _, bad := range []string{"n:=", "n:=1 2", "n:={\"a\":}", "n:=tru", ":=1", "=1", "noequals"} {
		if _, errOut, code := d.cli("put", "jobs", "j1", bad); code != 2 || errOut == "" {
			t.Errorf("put %s: exit %d, stderr %q; want exit 2 with an error", bad, code, errOut)
		}
	}
	if _, err := d.client().Get(ctx, "jobs", "j1"); err == nil {
		t.Fatal("a put with a broken field stored the record")
	}

	_, errOut, code = d.cli("put", "jobs", "j1", "prio=3", "zip=01234", "tags:=[1,2]", "ok:=true", `quoted:="a b"`, "empty=", "eq=a=b", "time=12:00")
	if code != 0 {
		t.Fatalf("put: exit %d: %s", code, errOut)
	}
	if !strings.Contains(errOut, `note: prio=3 stores the text "3"; prio:=3 would store it as JSON`) || strings.Contains(errOut, "zip") {
		t.Errorf("put prio=3 zip=01234: stderr %q; want a note on prio (valid JSON given as text) and none on zip", errOut)
	}
	r, err := d.client().Get(ctx, "jobs", "j1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fieldsOf(t, r), `{"empty":"","eq":"a=b","ok":true,"prio":"3","quoted":"a b","tags":[1,2],"time":"12:00","zip":"01234"}`; got != want {
		t.Errorf("fields: got %s, want %s", got, want)
	}

	_, errOut, code = d.cli("put", "--guess", "jobs", "j2", "tags=[1,2", "n=5", "s=plain", "t=True")
	if code != 0 {
		t.Fatalf("put --guess: exit %d: %s", code, errOut)
	}
	for _, w := range []string{"warning: tags=[1,2 is not valid JSON", "warning: t=True is not valid JSON"} {
		if !strings.Contains(errOut, w) {
			t.Errorf("put --guess: stderr %q; want %q", errOut, w)
		}
	}
	if strings.Contains(errOut, "s=plain") || strings.Contains(errOut, "n=5") {
		t.Errorf("put --guess: stderr %q warns about a value that is fine", errOut)
	}
	r, err = d.client().Get(ctx, "jobs", "j2")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fieldsOf(t, r), `{"n":5,"s":"plain","t":"True","tags":"[1,2"}`; got != want {
		t.Errorf("put --guess fields: got %s, want %s", got, want)
	}

	// resolve: --value is JSON (broken JSON refused), --text a string.
	if _, errOut, code := d.cli("resolve", "jobs", "j1", "prio", "--value", "[1"); code != 2 || !strings.Contains(errOut, "not JSON") {
		t.Errorf("resolve --value [1: exit %d, stderr %q; want 2", code, errOut)
	}
	if _, errOut, code := d.cli("resolve", "jobs", "j1", "prio", "--value", "1", "--text", "x"); code != 2 || !strings.Contains(errOut, "exactly one") {
		t.Errorf("resolve --value and --text: exit %d, stderr %q; want 2", code, errOut)
	}
}

// cliOnTerminal runs a client subcommand against n with its stdout on a
// pseudo-terminal (script(1)), in time zone tz, and returns what it
// printed.
func cliOnTerminal(t *testing.T, n *node, tz string, args ...string) string {
	t.Helper()
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("script(1) (util-linux) is not installed: no pseudo-terminal to test terminal output with")
	}
	line := binary
	for _, a := range args {
		line += " '" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	cmd := exec.Command(scriptBin, "-qec", line, "/dev/null")
	cmd.Env = append(os.Environ(), "REPLICAD_ADDR="+n.api, "TZ="+tz)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("replicad %s on a terminal: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.ReplaceAll(string(out), "\r\n", "\n")
}

// On a terminal, replicad conflicts shows when each candidate was
// written (its HLC's wall clock) as local time, not the raw HLC; JSON
// output keeps the HLC and adds the time in UTC.
func TestConflictTimesNotRawHLCs(t *testing.T) {
	hub := startNode(t, "hub", "--role", "hub", "--gossip-addr", "off", "--policy", "jobs=manual")
	d := startNode(t, "device", "--hub", hub.sync)
	ctx := context.Background()
	d.mustCLI("put", "jobs", "j1", "title=base")
	d.mustCLI("sync")
	d.mustCLI("offline")
	d.mustCLI("put", "jobs", "j1", "title=from-device")
	hub.mustCLI("put", "jobs", "j1", "title=from-hub")
	d.mustCLI("online")
	d.mustCLI("sync")
	var cs []client.Conflict
	eventually(t, "the hub shows the conflict", func() error {
		var err error
		if cs, err = hub.client().Conflicts(ctx); err == nil && (len(cs) != 1 || len(cs[0].Candidates) != 2) {
			err = fmt.Errorf("conflicts %+v", cs)
		}
		return err
	})

	var out struct {
		Conflicts []client.Conflict `json:"conflicts"`
	}
	if err := json.Unmarshal([]byte(hub.mustCLI("conflicts")), &out); err != nil || len(out.Conflicts) != 1 {
		t.Fatalf("conflicts --json: %+v %v", out, err)
	}
	zone, err := time.LoadLocation("Asia/Kolkata")
	if err != nil {
		t.Skipf("no time zone database to test local times with: %v", err)
	}
	term := cliOnTerminal(t, hub, "Asia/Kolkata", "conflicts")
	for _, c := range out.Conflicts[0].Candidates {
		wall, _, _ := strings.Cut(c.HLC, ".")
		ms, err := strconv.ParseInt(wall, 10, 64)
		if err != nil {
			t.Fatalf("candidate HLC %q: %v", c.HLC, err)
		}
		at := time.UnixMilli(ms)
		if c.Time != at.UTC().Format(time.RFC3339Nano) {
			t.Errorf("JSON candidate %+v: time %q, want %q (its HLC's wall clock in UTC)", c, c.Time, at.UTC().Format(time.RFC3339Nano))
		}
		if local := at.In(zone).Format("2006-01-02T15:04:05.000Z07:00"); !strings.Contains(term, local) {
			t.Errorf("terminal output lacks %s (HLC %s in local time):\n%s", local, c.HLC, term)
		}
		if strings.Contains(term, c.HLC) {
			t.Errorf("terminal output shows the raw HLC %s:\n%s", c.HLC, term)
		}
	}
	if !strings.Contains(term, "WRITTEN") {
		t.Errorf("terminal output has no WRITTEN column:\n%s", term)
	}
}
