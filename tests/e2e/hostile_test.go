package e2e

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/tenant"
)

// TestHostileGPUEnvironment: a tenant may not widen a container's GPUs (or
// load code into the GPU runtime's hooks) through the environment. The SDL
// refuses NVIDIA_* and LD_* variables by name and line; a manifest sent by
// hand past the SDL parser, committed on chain, is refused by the provider
// (422, naming the variable); and a container without GPUs runs with
// NVIDIA_VISIBLE_DEVICES=void under the plain runc runtime, whatever its
// image says.
func TestHostileGPUEnvironment(t *testing.T) {
	nw := startNetwork(t, 1)
	prov := startProvider(t, nw, "2000000000")
	owner := nw.Keys["tenant"]

	hostileSDL := strings.Replace(jobSDL(jobImage, `"-steps", "1"`, ""), "    restart: never", "    env: [NVIDIA_VISIBLE_DEVICES=all]\n    restart: never", 1)
	check, err := exec.Command(gpunetd, "sdl", "check", writeSDL(t, hostileSDL)).CombinedOutput()
	if err == nil || !strings.Contains(string(check), "NVIDIA_VISIBLE_DEVICES is set by the provider") || !strings.Contains(string(check), "line ") {
		t.Fatalf("sdl check of a GPU-widening env: %v\n%s", err, check)
	}

	// A running service without GPUs sees none.
	res, out, err := deploy(t, nw, writeSDL(t, jobSDL(jobImage, `"-steps", "600", "-interval", "1s"`, "")), "--deposit", "5000000ugpn")
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	cs := leaseContainers(t, owner, res.DSeq)
	if len(cs) != 1 || cs[0].HostConfig.Runtime != "runc" || !slices.Contains(cs[0].Config.Env, "NVIDIA_VISIBLE_DEVICES=void") {
		t.Fatalf("container runtime %q env %v, want runc and NVIDIA_VISIBLE_DEVICES=void", cs[0].HostConfig.Runtime, cs[0].Config.Env)
	}

	// The tenant commits on chain to a manifest that asks for every GPU
	// and sends it by hand.
	saved, err := tenant.NewStore(nw.KeyringHome()).Load(owner, res.DSeq)
	if err != nil {
		t.Fatal(err)
	}
	man := saved.Manifest
	man.Groups[0].Services[0].Env = append(man.Groups[0].Services[0].Env, "NVIDIA_VISIBLE_DEVICES=all")
	hash, err := man.Hash()
	if err != nil {
		t.Fatal(err)
	}
	txAs(t, nw, "tenant", "tx", "market", "update-deployment", "--dseq", fmt.Sprint(res.DSeq), "--manifest-hash", hex.EncodeToString(hash))
	raw, err := man.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	cl := api.NewClient(prov.apiURL, nw.Config.ChainID, prov.addr, providerCert(t, nw, prov.addr), owner, exportKey(t, nw, "tenant"))
	_, err = cl.SendManifest(context.Background(), owner, res.DSeq, raw)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 422 || !strings.Contains(se.Message, "NVIDIA_VISIBLE_DEVICES is set by the provider") {
		t.Fatalf("hostile manifest: %v, want 422 naming NVIDIA_VISIBLE_DEVICES", err)
	}
	// The running container is untouched.
	if cs := leaseContainers(t, owner, res.DSeq); len(cs) != 1 || cs[0].State.Status != "running" {
		t.Fatalf("containers after the refusal: %+v", cs)
	}
}
