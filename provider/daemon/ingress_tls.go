package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// The HTTPS side of the ingress. Certificates are the operator's: one for
// the default names (a wildcard for *.<ingress domain>, tls_cert/tls_key)
// and one per accepted hostname in certs_dir as <host>.crt and <host>.key
// (for example written by certbot's deploy hook). Files are read again
// when they change, so renewals need no restart.

// certRecheck is how long a loaded certificate is used before its files'
// modification times are looked at again.
const certRecheck = 10 * time.Second

// hostnameRe is a DNS name as a TLS client may send it: only names of this
// shape are looked up in certs_dir, so a ServerName cannot name a path.
var hostnameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)

type loadedCert struct {
	cert    *tls.Certificate
	mod     [2]time.Time
	checked time.Time
}

// ingressCerts picks the certificate for a TLS handshake's server name.
type ingressCerts struct {
	certFile, keyFile, dir string
	table                  *ingressTable
	now                    func() time.Time

	mu    sync.Mutex
	files map[string]loadedCert // cert path → what was read from it
}

func newIngressCerts(certFile, keyFile, dir string, table *ingressTable) *ingressCerts {
	return &ingressCerts{certFile: certFile, keyFile: keyFile, dir: dir, table: table, now: time.Now, files: map[string]loadedCert{}}
}

// load reads a key pair, or returns the one read before when neither file
// changed since.
func (c *ingressCerts) load(certPath, keyPath string) (*tls.Certificate, error) {
	now := c.now()
	c.mu.Lock()
	prev, ok := c.files[certPath]
	c.mu.Unlock()
	if ok && now.Sub(prev.checked) < certRecheck {
		return prev.cert, nil
	}
	var mod [2]time.Time
	for i, p := range []string{certPath, keyPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		mod[i] = fi.ModTime()
	}
	if !ok || mod != prev.mod {
		pair, err := tls.LoadX509KeyPair(certPath, keyPath)
		if err != nil {
			return nil, err
		}
		if pair.Leaf == nil {
			if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
				return nil, err
			}
		}
		prev.cert = &pair
	}
	prev.mod, prev.checked = mod, now
	c.mu.Lock()
	if len(c.files) >= 4096 { // hostnames come and go with leases
		clear(c.files)
	}
	c.files[certPath] = prev
	c.mu.Unlock()
	return prev.cert, nil
}

// forHost is the certificate served for host: its own from certs_dir when
// a lease routes it and the file is there, else the default one when that
// covers it.
func (c *ingressCerts) forHost(host string) (*tls.Certificate, error) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if !hostnameRe.MatchString(host) {
		return nil, fmt.Errorf("server name %q is not a hostname", host)
	}
	if _, routed := c.table.route(host); routed && c.dir != "" {
		base := filepath.Join(c.dir, host)
		if cert, err := c.load(base+".crt", base+".key"); err == nil && cert.Leaf.VerifyHostname(host) == nil {
			return cert, nil
		}
	}
	if c.certFile != "" {
		cert, err := c.load(c.certFile, c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("ingress.tls_cert: %w", err)
		}
		if cert.Leaf.VerifyHostname(host) == nil {
			return cert, nil
		}
	}
	return nil, fmt.Errorf("no certificate for %s on this provider", host)
}

func (c *ingressCerts) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		return nil, errors.New("the client sent no server name (SNI)")
	}
	return c.forHost(hello.ServerName)
}

// check is what the daemon verifies at start: the default certificate
// loads and covers the lease names under the domain.
func (c *ingressCerts) check(domain string) error {
	if c.certFile == "" || c.keyFile == "" {
		return errors.New("ingress.tls_cert and ingress.tls_key are required with ingress.tls_listen: a certificate for *." + domain)
	}
	cert, err := c.load(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("ingress.tls_cert/tls_key: %w", err)
	}
	probe := "0123456789ab." + domain
	if err := cert.Leaf.VerifyHostname(probe); err != nil {
		return fmt.Errorf("ingress.tls_cert does not cover lease names such as %s (it needs *.%s): %w", probe, domain, err)
	}
	if time.Now().After(cert.Leaf.NotAfter) {
		return fmt.Errorf("ingress.tls_cert expired on %s", cert.Leaf.NotAfter.Format(time.RFC3339))
	}
	if c.dir != "" {
		if fi, err := os.Stat(c.dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("ingress.certs_dir %s is not a directory", c.dir)
		}
	}
	return nil
}
