package chain

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/gpunet/gpunet/provider/leaseauth"
)

// TestGRPCOverTLS: with grpc_tls the daemon reaches a node's gRPC only
// when its certificate checks out against the configured CA (a
// self-signed node is refused with the system's roots, and a plain-text
// client gets nothing from a TLS endpoint).
func TestGRPCOverTLS(t *testing.T) {
	certPEM, keyPEM, err := leaseauth.GenerateCert([]string{"127.0.0.1", "node.example"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewServerTLSFromCert(&cert)))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	check := func(opts Options) error {
		opts.GRPC = ln.Addr().String()
		creds, err := transportCredentials(opts)
		if err != nil {
			return err
		}
		conn, err := grpc.NewClient(opts.GRPC, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}
	if err := check(Options{GRPCTLS: true, GRPCCAFile: ca}); err != nil {
		t.Fatalf("TLS with the node's CA: %v", err)
	}
	if err := check(Options{GRPCTLS: true, GRPCCAFile: ca, GRPCServerName: "node.example"}); err != nil {
		t.Fatalf("TLS with a server name in the certificate: %v", err)
	}
	if err := check(Options{GRPCTLS: true, GRPCCAFile: ca, GRPCServerName: "other.example"}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("TLS for a name the certificate lacks: %v", err)
	}
	if err := check(Options{GRPCTLS: true}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("a self-signed node against the system roots: %v", err)
	}
	if err := check(Options{}); err == nil {
		t.Fatal("a plain-text client got an answer from a TLS endpoint")
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("not pem"), 0o600)
	if _, err := transportCredentials(Options{GRPCTLS: true, GRPCCAFile: bad}); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a CA file without certificates: %v", err)
	}
}
