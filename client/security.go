package client

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Environment variables for an agent whose API needs credentials (an API
// not on loopback: see the README's Security section).
const (
	// EnvToken holds the API's bearer token.
	EnvToken = "REPLICAD_TOKEN"
	// EnvTokenFile names a file holding it (e.g. the agent's
	// <data-dir>/api-token).
	EnvTokenFile = "REPLICAD_TOKEN_FILE"
	// EnvCACert names the cluster CA certificate, to verify an https://
	// agent address.
	EnvCACert = "REPLICAD_CACERT"
	// EnvCert and EnvKey name a client certificate and key from the
	// cluster's CA, for an agent whose API requires one (mutual TLS).
	EnvCert = "REPLICAD_CERT"
	EnvKey  = "REPLICAD_KEY"
)

// newHTTPClient returns the HTTP client New uses: it adds the bearer
// token from the environment to every request and, for https, trusts the
// cluster CA and presents the client certificate named there. A
// misconfiguration is reported on the first request.
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var cfgErr error
	if ca := os.Getenv(EnvCACert); ca != "" {
		pem, err := os.ReadFile(ca)
		pool := x509.NewCertPool()
		if err != nil {
			cfgErr = fmt.Errorf("$%s: %w", EnvCACert, err)
		} else if !pool.AppendCertsFromPEM(pem) {
			cfgErr = fmt.Errorf("$%s: %s holds no PEM certificate", EnvCACert, ca)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		// The agent's certificate binds a node id, not a host name: check
		// the chain only (cluster CA), as replicad's peers do.
		tr.TLSClientConfig.InsecureSkipVerify = true
		tr.TLSClientConfig.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return fmt.Errorf("agent presented no certificate")
			}
			leaf, err := x509.ParseCertificate(raw[0])
			if err != nil {
				return err
			}
			inter := x509.NewCertPool()
			for _, r := range raw[1:] {
				if c, err := x509.ParseCertificate(r); err == nil {
					inter.AddCert(c)
				}
			}
			_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			return err
		}
	}
	if cert, key := os.Getenv(EnvCert), os.Getenv(EnvKey); cert != "" || key != "" {
		c, err := tls.LoadX509KeyPair(cert, key)
		if err != nil && cfgErr == nil {
			cfgErr = fmt.Errorf("$%s/$%s: %w", EnvCert, EnvKey, err)
		}
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		tr.TLSClientConfig.Certificates = []tls.Certificate{c}
	}
	token := os.Getenv(EnvToken)
	if f := os.Getenv(EnvTokenFile); token == "" && f != "" {
		b, err := os.ReadFile(f)
		if err != nil && cfgErr == nil {
			cfgErr = fmt.Errorf("$%s: %w", EnvTokenFile, err)
		}
		token = strings.TrimSpace(string(b))
	}
	return &http.Client{Transport: &authTransport{base: tr, token: token, err: cfgErr}}
}

type authTransport struct {
	base  http.RoundTripper
	token string
	err   error
}

func (t *authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.err != nil {
		return nil, t.err
	}
	if t.token != "" && r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	return t.base.RoundTrip(r)
}
