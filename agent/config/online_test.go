package config

import (
	"strings"
	"testing"
)

func TestHubAPIConfig(t *testing.T) {
	for _, ok := range []string{"", "127.0.0.1:7500", "hub.example:443", "http://10.0.0.1:7500", "https://hub.example/", "https://hub.example:8443"} {
		if err := checkHubAPI(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"hub", "ftp://hub:1", "http://", "http://hub:1/?x=1", "127.0.0.1:99999"} {
		if err := checkHubAPI(bad); err == nil || !strings.Contains(err.Error(), "hub_api") {
			t.Errorf("%q: %v, want an error naming hub_api", bad, err)
		}
	}
}
