package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	cryptotypes "github.com/cosmos/cosmos-sdk/crypto/types"

	"github.com/gpunet/gpunet/provider/leaseauth"
)

// A provider that accepts a tenant's request and never answers must not
// hang `gpunetd deploy` or `lease status`: the request fails with an error
// naming the provider once the client's timeout passes.
func TestClientGivesUpOnAHungProvider(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	c, url := pinnedTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	c.Timeout = 300 * time.Millisecond

	began := time.Now()
	_, err := c.Status(context.Background(), "gpunet1tenant", 1, 1, 1)
	if err == nil || !strings.Contains(err.Error(), "provider "+url+" did not answer within 300ms") {
		t.Fatalf("Status = %v, want an error saying the provider did not answer", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Fatalf("Status took %s with a 300ms timeout", took)
	}
	if _, err := c.SendManifest(context.Background(), "gpunet1tenant", 1, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("SendManifest = %v, want a timeout", err)
	}
}

// A followed log stream lasts as long as the workload: the request timeout
// never cuts it.
func TestFollowedLogsOutliveTheTimeout(t *testing.T) {
	c, _ := pinnedTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "line %d\n", i)
			w.(http.Flusher).Flush()
			time.Sleep(150 * time.Millisecond)
		}
	})
	c.Timeout = 100 * time.Millisecond
	var out strings.Builder
	if err := c.Logs(context.Background(), "gpunet1tenant", 1, 1, 1, "", true, 0, &out); err != nil {
		t.Fatalf("a followed log stream was cut: %v", err)
	}
	if out.String() != "line 0\nline 1\nline 2\n" {
		t.Errorf("logs %q", out.String())
	}
}

// pinnedTestClient serves h over TLS and returns a tenant's client pinned
// to the server's certificate, and the server's URL.
func pinnedTestClient(t *testing.T, h http.HandlerFunc) (*Client, string) {
	t.Helper()
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	sum := sha256.Sum256(srv.Certificate().Raw)
	key := secp256k1.GenPrivKey()
	sign := func(msg []byte) ([]byte, cryptotypes.PubKey, error) {
		sig, err := key.Sign(msg)
		return sig, key.PubKey(), err
	}
	return NewClient(srv.URL, "gpunet-test-1", "gpunet1provider", hex.EncodeToString(sum[:]), "gpunet1tenant", sign), srv.URL
}

// The pin is for the provider's host: a redirect is never followed (a
// hostile or compromised provider cannot bounce a signed request, or the
// tenant, elsewhere).
func TestClientFollowsNoRedirect(t *testing.T) {
	followed := false
	c, _ := pinnedTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed = true
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	})
	_, err := c.Status(context.Background(), "gpunet1tenant", 1, 1, 1)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTemporaryRedirect || followed {
		t.Fatalf("Status = %v (followed %v), want the 307 itself", err, followed)
	}
}

// TestClientWaitsOutTheRateLimit: a request the provider's rate limit
// refuses (429 with Retry-After) is sent again after the wait, signed anew
// (a fresh nonce each time), and succeeds; one refused for good reports the
// refusal.
func TestClientWaitsOutTheRateLimit(t *testing.T) {
	var nonces []string
	refuse := 2
	c, _ := pinnedTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		nonces = append(nonces, r.Header.Get(leaseauth.HeaderNonce))
		if len(nonces) <= refuse {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":"too many requests from this address; slow down"}`))
			return
		}
		_, _ = w.Write([]byte(`{"lease":"gpunet1owner/7/1/1"}`))
	})
	t0 := time.Now()
	if _, err := c.Status(context.Background(), "gpunet1owner", 7, 1, 1); err != nil {
		t.Fatalf("status after two 429s: %v", err)
	}
	if len(nonces) != 3 || nonces[0] == nonces[1] || nonces[1] == nonces[2] {
		t.Errorf("nonces %q: want three requests, each signed anew", nonces)
	}
	if waited := time.Since(t0); waited < 2*time.Second {
		t.Errorf("retried after %s, before the two 1 s waits asked for", waited)
	}
	nonces, refuse = nil, 100
	_, err := c.Status(context.Background(), "gpunet1owner", 7, 1, 1)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != http.StatusTooManyRequests || len(nonces) != maxRateLimitRetries+1 {
		t.Errorf("a provider that keeps refusing: %v after %d requests", err, len(nonces))
	}
}
