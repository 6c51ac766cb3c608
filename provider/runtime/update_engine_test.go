package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gpunet/gpunet/sdl"
)

// TestUpdateReplacesReplicasInPlace: an update runs the new version on the
// same lease and network and removes the old containers; a new version
// that cannot run leaves the old one running, saying why; updating to
// what already runs changes nothing.
func TestUpdateReplacesReplicasInPlace(t *testing.T) {
	t.Parallel()
	r := newTestRuntime(t, Options{})
	ctx := context.Background()
	lease := newLease(t, r)
	v1 := workloadService(t, "web", 2, "always", "-print", "v1", "-sleep", "1h")
	before := deploy(t, r, lease, v1)
	waitForLogLines(t, r, lease, "web", "[web-0] v1", "[web-1] v1")

	v2 := workloadService(t, "web", 2, "always", "-print", "v2", "-sleep", "1h")
	g2 := sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{v2}}
	st, err := r.Update(ctx, Workload{Lease: lease, Group: g2})
	if err != nil {
		t.Fatal(err)
	}
	reps := st.Services["web"]
	if len(reps) != 2 {
		t.Fatalf("%d replicas after the update, want 2: %+v", len(reps), reps)
	}
	for i, rep := range reps {
		if rep.Manifest != g2.Hash() || rep.State != "running" || rep.ContainerName == before.Services["web"][i].ContainerName {
			t.Errorf("replica %d after the update: %+v", i, rep)
		}
	}
	if st.Network != before.Network {
		t.Errorf("network %s, was %s", st.Network, before.Network)
	}
	logs := waitForLogLines(t, r, lease, "web", "[web-0] v2", "[web-1] v2")
	if strings.Contains(logs, "v1") {
		t.Errorf("old replicas still log:\n%s", logs)
	}

	// The same version again: nothing changes.
	again, err := r.Update(ctx, Workload{Lease: lease, Group: g2})
	if err != nil || again.Services["web"][0].ContainerID != reps[0].ContainerID {
		t.Fatalf("updating to the running version replaced it: %v", err)
	}

	// A version that exits: v2 keeps running, and the error says why.
	broken := workloadService(t, "web", 2, "always", "-print", "v3 is broken", "-exit", "3")
	_, err = r.Update(ctx, Workload{Lease: lease, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{broken}}})
	if !errors.Is(err, ErrUpdateFailed) || !strings.Contains(err.Error(), "exited with code 3") && !strings.Contains(err.Error(), "was restarted") || !strings.Contains(err.Error(), "v3 is broken") {
		t.Fatalf("broken update: %v", err)
	}
	st, err = r.Status(ctx, lease)
	if err != nil {
		t.Fatal(err)
	}
	if reps := st.Services["web"]; len(reps) != 2 || reps[0].ContainerID != again.Services["web"][0].ContainerID || reps[0].State != "running" {
		t.Fatalf("after the broken update: %+v", reps)
	}

	// An image that does not exist: refused before anything changes.
	missing := v2
	missing.Image = "gpunet-runtime-test:does-not-exist"
	if _, err := r.Update(ctx, Workload{Lease: lease, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{missing}}}); !errors.Is(err, ErrImageUnavailable) {
		t.Fatalf("missing image: %v", err)
	}
	if st, _ := r.Status(ctx, lease); len(st.Services["web"]) != 2 || st.Services["web"][1].State != "running" {
		t.Fatalf("after the missing image: %+v", st.Services["web"])
	}
}
