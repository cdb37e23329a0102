package secure

import "crypto/x509"

// ReadCertFile reads the first certificate of a PEM file (a node's
// NAME.crt or the CA's ca.crt).
func ReadCertFile(path string) (*x509.Certificate, error) {
	certs, err := readCerts(path)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// CertIdentity reads the replicad identity (cluster, node id binding,
// role) of a node certificate.
func CertIdentity(c *x509.Certificate) (Identity, error) { return identityOf(c) }
