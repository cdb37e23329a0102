package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/replicad/replicad/store"
)

// Configuration of the work that only runs online (issue 9): key fields
// for duplicate detection (`table "NAME" { keys = [...] }`, or --keys
// TABLE=FIELD,FIELD) and workflows (`workflow "NAME" { ... }`). Both run
// on the arbitrating hub only.

// TableConfig is what a `table` block declares about one table.
type TableConfig struct {
	// Keys are the fields whose values, all together, identify a record:
	// a new record whose key values equal a live record's is flagged as
	// a suspected duplicate.
	Keys []string
}

// Workflow defaults.
const (
	DefaultWorkflowTimeout    = 10 * time.Second
	DefaultWorkflowMaxBackoff = time.Minute
)

// WorkflowConfig is one `workflow` block: a hook run on the changes the
// hub accepts, in order, at least once.
type WorkflowConfig struct {
	Name string
	// Table limits the workflow to one table ("" or "*": every table but
	// the system tables _replicad_*).
	Table string
	// Webhook is an http(s) URL the change is POSTed to (JSON); a 2xx
	// answer confirms it.
	Webhook string
	// Command is a program and its arguments, run with the change as
	// JSON on stdin; exit status 0 confirms it.
	Command []string
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// MaxBackoff caps the delay between attempts, which doubles from
	// 250ms (default 1m).
	MaxBackoff time.Duration
	// MaxAttempts > 0 gives up on a change after that many attempts
	// (recorded as failed) and goes on; 0 (default) retries until it is
	// confirmed, holding back the changes after it.
	MaxAttempts int
}

type tableBlock struct {
	Name    string       `hcl:"name,label"`
	Keys    *[]string    `hcl:"keys,optional"`
	Indexes []indexBlock `hcl:"index,block"` // decls.go
}

type workflowBlock struct {
	Name        string    `hcl:"name,label"`
	Table       *string   `hcl:"table,optional"`
	Webhook     *string   `hcl:"webhook,optional"`
	Command     *[]string `hcl:"command,optional"`
	Timeout     *string   `hcl:"timeout,optional"`
	MaxBackoff  *string   `hcl:"max_backoff,optional"`
	MaxAttempts *int      `hcl:"max_attempts,optional"`
}

// applyOnlineFile copies the table and workflow blocks of a config file
// over c.
func applyOnlineFile(tables []tableBlock, flows []workflowBlock, c *Config) error {
	for _, t := range tables {
		if c.Tables == nil {
			c.Tables = map[string]TableConfig{}
		}
		tc := c.Tables[t.Name]
		if t.Keys != nil {
			tc.Keys = *t.Keys
		}
		c.Tables[t.Name] = tc
	}
	if len(flows) > 0 {
		c.Workflows = nil
	}
	for _, f := range flows {
		w := WorkflowConfig{Name: f.Name, Timeout: DefaultWorkflowTimeout, MaxBackoff: DefaultWorkflowMaxBackoff}
		if f.Table != nil {
			w.Table = *f.Table
		}
		if f.Webhook != nil {
			w.Webhook = *f.Webhook
		}
		if f.Command != nil {
			w.Command = *f.Command
		}
		if f.MaxAttempts != nil {
			w.MaxAttempts = *f.MaxAttempts
		}
		for _, d := range []struct {
			key string
			s   *string
			dst *time.Duration
		}{{"timeout", f.Timeout, &w.Timeout}, {"max_backoff", f.MaxBackoff, &w.MaxBackoff}} {
			if d.s == nil {
				continue
			}
			v, err := time.ParseDuration(*d.s)
			if err != nil {
				return fmt.Errorf("workflow %q: %s: %q is not a duration (e.g. \"10s\")", f.Name, d.key, *d.s)
			}
			*d.dst = v
		}
		c.Workflows = append(c.Workflows, w)
	}
	return nil
}

// parseKeysFlag parses --keys values: TABLE=FIELD[,FIELD...] each.
func parseKeysFlag(vals []string) (map[string]TableConfig, error) {
	out := map[string]TableConfig{}
	for _, v := range vals {
		t, fs, ok := strings.Cut(v, "=")
		if !ok || fs == "" {
			return nil, fmt.Errorf("--keys %q: want TABLE=FIELD[,FIELD...]", v)
		}
		tc := out[t]
		tc.Keys = append(tc.Keys, strings.Split(fs, ",")...)
		out[t] = tc
	}
	return out, nil
}

// validateOnline checks the table and workflow configuration.
func (c *Config) validateOnline() error {
	for t, tc := range c.Tables {
		if !store.ValidTable(t) || strings.HasPrefix(t, "_replicad_") {
			return keyErr("table", "%q: 1-64 characters from [A-Za-z0-9_.-], not a system table", t)
		}
		seen := map[string]bool{}
		for _, k := range tc.Keys {
			if k == "" {
				return keyErr("table", "table %s: an empty key field name", t)
			}
			if seen[k] {
				return keyErr("table", "table %s: key field %q given twice", t, k)
			}
			seen[k] = true
		}
	}
	names := map[string]bool{}
	for _, w := range c.Workflows {
		if !store.ValidTable(w.Name) {
			return keyErr("workflow", "name %q: 1-64 characters from [A-Za-z0-9_.-]", w.Name)
		}
		if names[w.Name] {
			return keyErr("workflow", "%s: defined twice", w.Name)
		}
		names[w.Name] = true
		if w.Table != "" && w.Table != "*" && !store.ValidTable(w.Table) {
			return keyErr("workflow", "%s: table %q: 1-64 characters from [A-Za-z0-9_.-]", w.Name, w.Table)
		}
		if (w.Webhook == "") == (len(w.Command) == 0) {
			return keyErr("workflow", "%s: give exactly one of webhook (a URL) or command (a list: program and arguments)", w.Name)
		}
		if w.Webhook != "" {
			u, err := url.Parse(w.Webhook)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return keyErr("workflow", "%s: webhook %q: want an http:// or https:// URL", w.Name, w.Webhook)
			}
		}
		if len(w.Command) > 0 && w.Command[0] == "" {
			return keyErr("workflow", "%s: command: the program is empty", w.Name)
		}
		if w.Timeout <= 0 || w.MaxBackoff <= 0 || w.MaxAttempts < 0 {
			return keyErr("workflow", "%s: timeout and max_backoff must be positive, max_attempts at least 0", w.Name)
		}
	}
	return nil
}

// checkHubAPI validates Config.HubAPI: empty, HOST:PORT, or an http(s)
// URL with a host.
func checkHubAPI(v string) error {
	if v == "" {
		return nil
	}
	if !strings.Contains(v, "://") {
		return checkHostPort("hub_api", v, false)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return keyErr("hub_api", "%q: want HOST:PORT or an http(s)://HOST:PORT URL", v)
	}
	return nil
}
