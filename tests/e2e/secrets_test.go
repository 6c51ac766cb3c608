package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// twoGroupSDL is a deployment of two groups: a CPU job any provider here
// runs, and a worker with a secret in its env that wants a b200 GPU,
// which no provider here has (so only the first group is leased).
func twoGroupSDL(image, secret string) string {
	return fmt.Sprintf(`version: "2.0"
services:
  job:
    image: %s
    args: ["-steps", "900", "-interval", "1s"]
    restart: never
  worker:
    image: registry.example/team/b200-worker:1
    env: ["TOKEN=%s"]
    restart: never
profiles:
  compute:
    small: {resources: {cpu: {units: 0.5}, memory: {size: 256Mi}, storage: {size: 1Gi}}}
    b200: {resources: {cpu: {units: 0.5}, memory: {size: 256Mi}, storage: {size: 1Gi}, gpu: {units: 1, attributes: {vendor: {nvidia: [{model: b200}]}}}}}
  placement:
    local: {pricing: {small: {denom: ugpn, amount: 5000000000}}}
    big: {pricing: {b200: {denom: ugpn, amount: 5000000000}}}
deployment:
  job: {local: {profile: small, count: 1}}
  worker: {big: {profile: b200, count: 1}}
`, image, secret)
}

// TestProviderReadsOnlyItsGroups: a provider that wins one group of a
// deployment is sent that group whole and only the digest of the other:
// the other group's image and env (its secrets) reach none of its files
// or logs, yet it checks the manifest against the chain's hash, runs its
// group, and the tenant's `lease manifest` finds the manifest it holds
// matching the chain.
func TestProviderReadsOnlyItsGroups(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	owner := nw.Keys["tenant"]
	const secret = "s3cret-token-of-the-b200-group"
	res, out, err := deploy(t, nw, writeSDL(t, twoGroupSDL(jobImage, secret)), "--deposit", "5000000ugpn", "--wait", "10s")
	if err == nil {
		t.Fatalf("the deployment's b200 group was leased:\n%s", out)
	}
	if res.DSeq == 0 {
		t.Fatalf("no deployment made:\n%s", out)
	}
	awaitLease(t, nw, owner, res.DSeq, prov.addr, 30*time.Second)
	dseq := strconv.FormatUint(res.DSeq, 10)
	if out, err := tenantCLI(t, nw, "lease", "send-manifest", dseq); err != nil || !strings.Contains(out, "accepted by") {
		t.Fatalf("send-manifest: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(time.Second) {
		if cs := leaseContainers(t, owner, res.DSeq); len(cs) == 1 && cs[0].State.Status == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leased group is not running; daemon log:\n%s", prov.log())
		}
	}
	held, err := tenantCLI(t, nw, "lease", "manifest", dseq)
	if err != nil || !strings.Contains(held, "matches the chain") || !strings.Contains(held, "withheld") {
		t.Errorf("lease manifest: %v\n%s", err, held)
	}
	for _, leak := range []string{secret, "b200-worker"} {
		if strings.Contains(held, leak) {
			t.Errorf("%q shows in the manifest the provider holds", leak)
		}
	}
	expectNotHeld(t, prov, secret, "b200-worker")
}

// expectNotHeld fails the test if any of leaks shows in the provider's log
// or in a file under its directory.
func expectNotHeld(t *testing.T, prov *providerProc, leaks ...string) {
	t.Helper()
	for _, leak := range leaks {
		if strings.Contains(prov.log(), leak) {
			t.Errorf("%q shows in the provider's log", leak)
		}
		if err := filepath.Walk(prov.dir, func(path string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() || info.Size() > 1<<20 {
				return err
			}
			if raw, rerr := os.ReadFile(path); rerr == nil && strings.Contains(string(raw), leak) {
				return fmt.Errorf("%s holds %q", path, leak)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
}
