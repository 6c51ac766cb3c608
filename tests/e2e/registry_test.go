package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmos/gogoproto/proto"
	"golang.org/x/crypto/bcrypt"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/testutil/localnet"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// privateRegistry starts Debian's docker-registry on loopback with one
// htpasswd login (scripts/setup.sh installs it) and pushes the workload
// image to it as <addr>/team/private:1, then removes the pushed tag from
// the engine so that a provider has to pull it. It returns the address
// and the image reference.
func privateRegistry(t *testing.T, user, password string) (addr, ref string) {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry is not installed (scripts/setup.sh installs Debian's docker-registry): %v", err)
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr = fmt.Sprintf("127.0.0.1:%d", freeLocalPort(t))
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\nauth:\n  htpasswd:\n    realm: gpunet-test\n    path: %s\n",
		filepath.Join(dir, "data"), addr, filepath.Join(dir, "htpasswd"))
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); logf.Close() })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not listen on %s", addr)
		}
	}
	// The docker CLI's login lives in a config of the test's own.
	docker := func(args ...string) {
		t.Helper()
		c := exec.Command("docker", args...)
		c.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "docker"))
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("docker %s: %v\n%s", args[0], err, out)
		}
	}
	ref = addr + "/team/private:1"
	c := exec.Command("docker", "login", addr, "-u", user, "--password-stdin")
	c.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(dir, "docker"))
	c.Stdin = strings.NewReader(password)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("docker login: %v\n%s", err, out)
	}
	docker("tag", workloadImage, ref)
	docker("push", ref)
	docker("rmi", ref)
	t.Cleanup(func() { _ = exec.Command("docker", "rmi", "-f", ref).Run() })
	return addr, ref
}

// TestRegistryCredentialsPullPrivateImages: a service with credentials is
// pulled from a private registry with its login; a wrong password, or
// another tenant naming the same (now local) image without a login, is
// refused as image_unavailable; and the password appears in no log,
// status or file of the provider.
func TestRegistryCredentialsPullPrivateImages(t *testing.T) {
	ensureWorkloadImage(t)
	const user, password = "deployer", "s3cret-Pa55word-for-the-test"
	addr, ref := privateRegistry(t, user, password)
	nw := adversarialNetwork(t, "stranger")
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000",
		Edits: map[string]string{"pull_images: true": "pull_images: true"}}) // the harness turns pulling off
	owner := nw.Keys["tenant"]

	private := func(pass string) string {
		body := strings.Replace(workloadSDL("1Gi", "", svcDef{"app", `"-sleep", "1h"`, ""}), "image: "+workloadImage, "image: "+ref, 1)
		if pass != "" {
			creds := fmt.Sprintf("    credentials:\n      host: %s\n      username: %s\n      password: %q\n", addr, user, pass)
			body = strings.Replace(body, "    args: [\"-sleep\", \"1h\"]\n", "    args: [\"-sleep\", \"1h\"]\n"+creds, 1)
		}
		return body
	}
	// A wrong password: the registry refuses, the lease closes.
	if _, out, err := deploy(t, nw, writeSDL(t, private("not-the-password")), "--deposit", "5000000ugpn", "--wait", "30s"); err == nil {
		t.Fatalf("deploy with a wrong password ran:\n%s", out)
	}
	prov.waitLog(20*time.Second, "lease closed", "reason=image_unavailable")

	res, out, err := deploy(t, nw, writeSDL(t, private(password)), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy with the login: %v\n%s", err, out)
	}
	if c := serviceContainer(t, owner, res.DSeq, "app"); c.State.Status != "running" {
		t.Fatalf("private image container is %s", c.State.Status)
	}

	// The image is on the engine now; a stranger naming it without a
	// login is refused all the same.
	before := strings.Count(prov.log(), "reason=image_unavailable")
	if _, out, err := deploy(t, nw, writeSDL(t, private("")), "--from", "stranger", "--deposit", "5000000ugpn", "--wait", "30s"); err == nil {
		t.Fatalf("a stranger ran the private image without its login:\n%s", out)
	}
	for deadline := time.Now().Add(20 * time.Second); strings.Count(prov.log(), "reason=image_unavailable") <= before; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the stranger's lease did not close as image_unavailable:\n%s", prov.log())
		}
	}
	if !strings.Contains(prov.log(), "is a private image on this provider") {
		t.Fatal("the refusal does not say the image is private")
	}
	// The stranger, which the provider still serves (to read why its own
	// lease closed), cannot read the tenant's lease by naming it.
	strangerAddr := nw.Keys["stranger"]
	scl := api.NewClient(prov.apiURL, nw.Config.ChainID, prov.addr, providerCert(t, nw, prov.addr), strangerAddr, exportKey(t, nw, "stranger"))
	var se *api.StatusError
	if _, err := scl.Status(context.Background(), owner, res.DSeq, 1, 1); !errors.As(err, &se) || se.Code != http.StatusForbidden || !strings.Contains(se.Message, "belongs to "+owner) {
		t.Errorf("another account reading the tenant's lease: %v", err)
	}

	// The password is nowhere the provider writes or tells.
	status := leaseStatusText(t, nw, res.DSeq)
	if strings.Contains(prov.log(), password) || strings.Contains(status, password) {
		t.Fatal("the registry password shows in the provider's log or the lease status")
	}
	if err := filepath.Walk(prov.dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || info.Size() > 1<<20 {
			return err
		}
		raw, rerr := os.ReadFile(path)
		if rerr == nil && strings.Contains(string(raw), password) {
			return fmt.Errorf("%s holds the registry password", path)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// stallingRegistry is a registry on loopback that answers the API check
// and never sends an image: every other request hangs until its client
// goes. It returns an image reference on it and the number of requests
// hanging there now.
func stallingRegistry(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var inFlight atomic.Int32
	stall := make(chan struct{})
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		inFlight.Add(1)
		defer inFlight.Add(-1)
		select {
		case <-stall:
		case <-r.Context().Done():
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(func() { close(stall); reg.Close() })
	return strings.TrimPrefix(reg.URL, "http://") + "/tenant/stalled:1", &inFlight
}

// awaitInFlight waits until a request hangs at a stalling registry.
func awaitInFlight(t *testing.T, inFlight *atomic.Int32, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); inFlight.Load() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the provider never asked the stalled registry for the image")
		}
	}
}

// TestStalledRegistryDoesNotHoldUpOtherLeases: a tenant whose image comes
// from a registry that never answers (or trickles its bytes) cannot hold up
// the provider's other leases. With parallel_deploys 1, another lease is
// deployed and running while the stalled lease's pull still hangs at the
// registry: pulls do not take the provider's deploy slots. (Were the pull
// holding the one slot, the other lease would deploy only once the stalled
// pull had been cut near its start deadline.) start_timeout is 60 blocks
// here, so that the cut cannot come first on a slow machine.
func TestStalledRegistryDoesNotHoldUpOtherLeases(t *testing.T) {
	stalled, inFlight := stallingRegistry(t)
	nw := startNetworkEdited(t, localnet.Options{Validators: 1}, func(c *localnet.Config) {
		market := c.Genesis["app_state"].(map[string]any)["market"].(map[string]any)["params"].(map[string]any)
		market["start_timeout"] = "60"
	})
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000", Edits: map[string]string{
		"pull_images: true":    "pull_images: true", // the harness turns pulling off
		"parallel_deploys: 16": "parallel_deploys: 1",
	}})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _, _ = deploy(t, nw, writeSDL(t, jobSDL(stalled, `"-steps", "900", "-interval", "1s"`, "")), "--deposit", "5000000ugpn", "--wait", "15s")
	}()
	t.Cleanup(func() { <-done })
	awaitInFlight(t, inFlight, 60*time.Second)
	res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "900", "-interval", "1s"`, "")), "--deposit", "5000000ugpn", "--wait", "60s")
	if err != nil {
		t.Fatalf("a lease behind the stalled pull did not run: %v\n%s", err, out)
	}
	if cs := leaseContainers(t, nw.Keys["tenant"], res.DSeq); len(cs) != 1 || cs[0].State.Status != "running" {
		t.Fatalf("the other lease's containers: %+v", cs)
	}
	if inFlight.Load() == 0 || countLines(prov.log(), "lease closed") != 0 {
		t.Fatalf("the other lease ran only after the stalled pull ended; daemon log:\n%s", prov.log())
	}
}

// TestAdversarialTenantRegistryNeverSendsImage: a tenant's registry
// answers and never sends the image, the griefing that would get an honest
// provider slashed at the start deadline. The daemon cuts the pull
// pullMargin blocks before that deadline and closes the pending lease as
// image_unavailable: no slash, the provider's bond and balance intact, the
// tenant pays the reservation fee to the community pool and reads why in
// its lease's events.
func TestAdversarialTenantRegistryNeverSendsImage(t *testing.T) {
	stalled, inFlight := stallingRegistry(t)
	nw := adversarialNetwork(t)
	prov := startProviderWith(t, nw, providerOpts{Key: "provider", GPUPrice: "2000000000",
		Edits: map[string]string{"pull_images: true": "pull_images: true"}}) // the harness turns pulling off
	chain := newChainReader(t, nw.Nodes[0])
	tenantAddr := nw.Keys["tenant"]
	bond := bondOf(t, nw, prov.addr)
	h0 := chain.height()

	got := deployAsync(t, nw, writeSDL(t, jobSDL(stalled, `"-steps", "1"`, "")), "--deposit", "5000000ugpn", "--follow", "--wait", "60s")
	awaitInFlight(t, inFlight, 60*time.Second)
	prov.waitLog(60*time.Second, "lease closed", "reason=image_unavailable")
	r := <-got
	if r.err == nil {
		t.Fatalf("deploy of an image that never came succeeded:\n%s", r.out)
	}
	if !strings.Contains(r.out, "had not sent it by the time the lease's start deadline drew near") {
		t.Errorf("the tenant is not told why its lease closed:\n%s", r.out)
	}
	awaitDeploymentGone(t, nw, tenantAddr, r.res.DSeq, 20*time.Second)
	waitBlocks(t, nw, 1)
	lg := chain.ledger(h0, chain.height())
	_, created := leaseEventHeight(lg.blocks, func(m proto.Message) bool {
		e, ok := m.(*markettypes.EventLeaseCreated)
		return ok && e.Id.Order.Owner == tenantAddr && e.Id.Order.Dseq == r.res.DSeq
	})
	if created == nil {
		t.Fatal("no lease created for the deployment")
	}
	deadline := created.(*markettypes.EventLeaseCreated).StartDeadline
	if h := closedAs(t, lg, tenantAddr, r.res.DSeq, markettypes.CLOSE_REASON_IMAGE_UNAVAILABLE); h >= deadline {
		t.Errorf("closed at height %d, not before the start deadline %d", h, deadline)
	}
	expectTenantPaidTheFee(t, nw, lg, prov, bond)
}
