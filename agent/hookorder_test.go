package agent

import (
	"reflect"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// TestHookOrder: the hooks the agent's extensions register run in the
// order ARCHITECTURE.md ("The hook order") states, per hook kind, on an
// arbitrating hub with TLS and permissions, a hub that does not
// arbitrate, and a device: the ordered extension list
// (extensions.go) decides it.
func TestHookOrder(t *testing.T) {
	pki := grantsPKI(t)
	type order struct{ local, apply, written, remote, assigned []string }
	for _, tc := range []struct {
		name string
		cfg  func() Config
		want order
	}{
		{"arbitrating hub", func() Config {
			cfg := withTLS(testConfig(t, "hub"), pki, "hub")
			cfg.Security.Permissions = techRules
			return cfg
		}, order{
			local:   []string{"bases", "dedupe"},
			apply:   []string{"bases", "dedupe", "permissions", "arbiter"},
			written: []string{"outbound", "metrics", "feed", "live", "engine"},
			remote:  []string{"grants", "permissions", "replica", "live"},
		}},
		{"hub without arbiter", func() Config {
			cfg := testConfig(t, "hub")
			cfg.NoArbiter = true
			return cfg
		}, order{
			local:   []string{"bases", "dedupe"},
			apply:   []string{"bases", "dedupe", "permissions", "syncerrors"},
			written: []string{"outbound", "metrics", "feed", "live", "engine"},
			remote:  []string{"permissions", "replica", "live"},
		}},
		{"device", func() Config { return testConfig(t, "device") }, order{
			local:    []string{"bases", "dedupe"},
			apply:    []string{"bases", "dedupe", "syncerrors"},
			written:  []string{"outbound", "metrics", "feed", "live", "engine"},
			remote:   []string{"replica", "live"},
			assigned: []string{"stripped", "profile"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(tc.cfg(), hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer a.closeAll()
			n := a.cur.Get().n
			var got order
			got.local, got.apply, got.written, got.remote = n.Hooks()
			got.assigned = n.AssignedHooks()
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("hooks\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
