package leaseauth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// GenerateCert makes the provider API's self-signed certificate (ECDSA
// P-256, ten years) for hosts (names or IPs) and returns PEM cert and key.
func GenerateCert(hosts []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "gpunet-provider", Organization: []string{"gpunet provider"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// CertFingerprint is the lowercase hex SHA-256 of a PEM certificate's DER,
// the value registered on chain as tls_cert_sha256.
func CertFingerprint(certPEM []byte) (string, error) {
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", errors.New("not a PEM certificate")
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:]), nil
}

// CertFileFingerprint reads a PEM certificate file and fingerprints it.
func CertFileFingerprint(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return CertFingerprint(raw)
}

// ErrCertMismatch means the provider presented a certificate other than the one on chain.
var ErrCertMismatch = errors.New("provider certificate does not match the fingerprint registered on chain")

// PinnedClient is an HTTPS client that trusts exactly the certificate
// whose SHA-256 is fingerprint (from the provider's on-chain record) and
// nothing else: no CA, no hostname check, since the pin is stronger.
func PinnedClient(fingerprint string, timeout time.Duration) *http.Client {
	want := strings.ToLower(fingerprint)
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: true, // replaced by the pin below
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return ErrCertMismatch
				}
				sum := sha256.Sum256(raw[0])
				if hex.EncodeToString(sum[:]) != want {
					return fmt.Errorf("%w (got %x)", ErrCertMismatch, sum[:8])
				}
				return nil
			},
		},
		Proxy:             nil,
		ForceAttemptHTTP2: true,
		// A provider that accepts the connection and then hangs must not
		// hold a tenant's command forever; a streaming body (followed
		// logs) may still run as long as the caller's context allows.
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
	// The pin is for this host: a redirect (elsewhere, or to plain http)
	// is never followed; the caller sees the 3xx.
	noRedirects := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: noRedirects}
}
