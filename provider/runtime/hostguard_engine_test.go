package runtime

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/gpunet/gpunet/sdl"
)

// TestPulledImagesGoWhenNoLeaseUsesThem: an image the runtime pulled is
// removed with the last lease using it; one the operator put on the engine
// is never touched. (Pulling needs a registry, so the "pulled" image is a
// local tag recorded as pulled in the runtime's file, as ensureImage does.)
func TestPulledImagesGoWhenNoLeaseUsesThem(t *testing.T) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()
	pulledTag := "gpunet-runtime-pulled:" + randomHex(t, 6)
	if err := cli.ImageTag(ctx, workloadImage(t), pulledTag); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = cli.ImageRemove(ctx, pulledTag, image.RemoveOptions{Force: true}) })
	record := filepath.Join(t.TempDir(), "pulled-images.json")
	if err := os.WriteFile(record, []byte(`{"pulled":["`+pulledTag+`"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newTestRuntime(t, Options{PulledImagesFile: record})

	svc := workloadService(t, "app", 1, "always", "-sleep", "1h")
	svc.Image = pulledTag
	a, b := newLease(t, r), newLease(t, r)
	deploy(t, r, a, svc)
	deploy(t, r, b, svc)
	own := workloadService(t, "own", 1, "always", "-sleep", "1h")
	c := newLease(t, r)
	deploy(t, r, c, own)

	if err := r.Remove(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ImageInspect(ctx, pulledTag); err != nil {
		t.Fatalf("the image went while lease b still uses it: %v", err)
	}
	if err := r.Remove(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ImageInspect(ctx, pulledTag); err == nil {
		t.Fatal("a pulled image no lease uses is still on the engine")
	}
	if raw, _ := os.ReadFile(record); strings.Contains(string(raw), pulledTag) {
		t.Errorf("the record still lists the removed image: %s", raw)
	}
	if err := r.Remove(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.ImageInspect(ctx, workloadImage(t)); err != nil {
		t.Fatalf("an image the runtime did not pull was removed: %v", err)
	}
}

// TestContainerUserAndRegistryPolicy: container_user runs the replica as
// that user (and the runtime no longer reports leases as host root), and
// an image from a refused registry is a workload fault before anything is
// created.
func TestContainerUserAndRegistryPolicy(t *testing.T) {
	r := newTestRuntime(t, Options{ContainerUser: "65534:65534", Registries: RegistryPolicy{Allow: []string{"ghcr.io"}}})
	if iso := r.Isolation(); iso.LeasesRunAsHostRoot || iso.ContainerUser != "65534:65534" || iso.StorageLimit == "" {
		t.Fatalf("isolation %+v", iso)
	}
	l := newLease(t, r)
	_, err := r.Deploy(context.Background(), Workload{Lease: l, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{workloadService(t, "app", 1, "always", "-sleep", "1h")}}})
	if !errors.Is(err, ErrWorkloadInvalid) || !strings.Contains(err.Error(), "this provider takes images only from ghcr.io") {
		t.Fatalf("deploy from a refused registry: %v", err)
	}
	if left, _ := r.List(context.Background()); len(left) != 0 {
		t.Fatalf("a refused deploy left %v", left)
	}

	r = newTestRuntime(t, Options{ContainerUser: "65534:65534"})
	l = newLease(t, r)
	deploy(t, r, l, workloadService(t, "app", 1, "always", "-sleep", "1h"))
	summaries, err := r.leaseContainers(context.Background(), l)
	if err != nil || len(summaries) != 1 {
		t.Fatalf("containers %v %v", summaries, err)
	}
	ins, err := r.cli.ContainerInspect(context.Background(), summaries[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Config.User != "65534:65534" {
		t.Fatalf("container user %q", ins.Config.User)
	}
	if ins.Config.Labels[LabelStorage] != "0" || ins.Config.Labels[LabelGPUs] != "" {
		t.Errorf("labels %v", ins.Config.Labels)
	}
}

// TestImagesDueCutsAStalledPull: a pull from a registry that never sends
// the image ends when the workload's images become due, as
// ErrImageUnavailable saying so; an image already on the engine is not
// affected by being due.
func TestImagesDueCutsAStalledPull(t *testing.T) {
	stall := make(chan struct{})
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		select {
		case <-stall:
		case <-r.Context().Done():
		}
		http.NotFound(w, r)
	}))
	defer reg.Close()
	defer close(stall)
	r := newTestRuntime(t, Options{Pull: true})
	l := newLease(t, r)
	svc := workloadService(t, "app", 1, "always", "-sleep", "1h")
	svc.Image = strings.TrimPrefix(reg.URL, "http://") + "/tenant/stalled:1"
	due := make(chan struct{})
	time.AfterFunc(time.Second, func() { close(due) })
	began := time.Now()
	err := r.PullImages(context.Background(), Workload{Lease: l, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{svc}}, ImagesDue: due})
	if !errors.Is(err, ErrImageUnavailable) || !strings.Contains(err.Error(), "had not sent it by the time the lease's start deadline drew near") {
		t.Fatalf("stalled pull: %v", err)
	}
	if took := time.Since(began); took > 30*time.Second {
		t.Fatalf("the cut took %s", took)
	}
	local := workloadService(t, "app", 1, "always", "-sleep", "1h")
	if err := r.PullImages(context.Background(), Workload{Lease: l, Group: sdl.ManifestGroup{Name: "dc", Services: []sdl.ManifestService{local}}, ImagesDue: due}); err != nil {
		t.Fatalf("an image on the engine, due already: %v", err)
	}
}
