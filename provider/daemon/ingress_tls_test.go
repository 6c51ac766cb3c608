package daemon

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpunet/gpunet/internal/testpki"
	"github.com/gpunet/gpunet/provider/runtime"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

func writePair(t *testing.T, ca *testpki.CA, certPath, keyPath string, names ...string) {
	t.Helper()
	c, k, err := ca.Issue(names...)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, c, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, k, 0o600); err != nil {
		t.Fatal(err)
	}
}

// The HTTPS ingress serves a routed name its own certificate from
// certs_dir, default names the wildcard, reads renewed files without a
// restart, and never treats a client's server name as a path.
func TestIngressCertificatesByName(t *testing.T) {
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir, certs := t.TempDir(), t.TempDir()
	wildCert, wildKey := filepath.Join(dir, "wild.crt"), filepath.Join(dir, "wild.key")
	writePair(t, ca, wildCert, wildKey, "*.ingress.test")
	writePair(t, ca, filepath.Join(certs, "shop.example.com.crt"), filepath.Join(certs, "shop.example.com.key"), "shop.example.com")
	writePair(t, ca, filepath.Join(certs, "idle.example.com.crt"), filepath.Join(certs, "idle.example.com.key"), "idle.example.com")
	writePair(t, ca, filepath.Join(certs, "wrong.example.com.crt"), filepath.Join(certs, "wrong.example.com.key"), "other.example.com")

	tab := newIngressTable("ingress.test")
	ref := runtime.LeaseRef{Order: markettypes.OrderID{Owner: "a", Dseq: 1, Gseq: 1, Oseq: 1}}
	if err := tab.set("a", ref, ingressGroup("web", "shop.example.com", "wrong.example.com", "nocert.example.com")); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	c := newIngressCerts(wildCert, wildKey, certs, tab)
	c.now = func() time.Time { return now }
	if err := c.check("ingress.test"); err != nil {
		t.Fatal(err)
	}
	name := func(host string) string {
		t.Helper()
		cert, err := c.getCertificate(&tls.ClientHelloInfo{ServerName: host})
		if err != nil {
			return "error: " + err.Error()
		}
		return cert.Leaf.DNSNames[0]
	}
	def := tab.defaultHost("a", "web")
	for host, want := range map[string]string{
		"shop.example.com":   "shop.example.com",
		"SHOP.example.com.":  "shop.example.com",
		def:                  "*.ingress.test",
		"nocert.example.com": "error: no certificate for nocert.example.com",
		"wrong.example.com":  "error: no certificate for wrong.example.com", // the file's certificate names another host
		"idle.example.com":   "error: no certificate for idle.example.com",  // no lease routes it
		"../../etc/passwd":   `error: server name "../../etc/passwd" is not a hostname`,
		"shop.example.com/x": `error: server name "shop.example.com/x" is not a hostname`,
		"":                   "error: the client sent no server name (SNI)",
	} {
		if got := name(host); !strings.HasPrefix(got, want) {
			t.Errorf("%q: got %q, want %q", host, got, want)
		}
	}

	// A renewed certificate is served once its files change, without a restart.
	before, _ := c.forHost("shop.example.com")
	writePair(t, ca, filepath.Join(certs, "shop.example.com.crt"), filepath.Join(certs, "shop.example.com.key"), "shop.example.com", "www.shop.example.com")
	later := time.Now().Add(time.Minute)
	os.Chtimes(filepath.Join(certs, "shop.example.com.crt"), later, later)
	if got, _ := c.forHost("shop.example.com"); got != before {
		t.Error("re-read before certRecheck passed")
	}
	now = now.Add(certRecheck + time.Second)
	if got, _ := c.forHost("shop.example.com"); got == before || len(got.Leaf.DNSNames) != 2 {
		t.Errorf("renewed certificate not served: %v", got.Leaf.DNSNames)
	}
}

// The daemon refuses to start the HTTPS ingress with a certificate that
// does not cover the lease names, or without one.
func TestIngressCertificateCheckedAtStart(t *testing.T) {
	ca, err := testpki.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key")
	writePair(t, ca, cert, key, "ingress.test")
	tab := newIngressTable("ingress.test")
	if err := newIngressCerts(cert, key, "", tab).check("ingress.test"); err == nil || !strings.Contains(err.Error(), "needs *.ingress.test") {
		t.Errorf("bare-domain certificate: %v", err)
	}
	if err := newIngressCerts("", "", "", tab).check("ingress.test"); err == nil || !strings.Contains(err.Error(), "tls_cert and ingress.tls_key are required") {
		t.Errorf("no certificate: %v", err)
	}
	if err := newIngressCerts(filepath.Join(dir, "none.crt"), key, "", tab).check("ingress.test"); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
	writePair(t, ca, cert, key, "*.ingress.test")
	if err := newIngressCerts(cert, key, filepath.Join(dir, "missing"), tab).check("ingress.test"); err == nil || !strings.Contains(err.Error(), "certs_dir") {
		t.Errorf("missing certs_dir: %v", err)
	}
}
