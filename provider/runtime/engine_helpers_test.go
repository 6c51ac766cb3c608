package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/gpunet/gpunet/provider/runtime/imagebuild"
	"github.com/gpunet/gpunet/sdl"
	markettypes "github.com/gpunet/gpunet/x/market/types"
)

// The tests against the engine share one image of testdata/workload, built
// on first use under a tag unique to this test process and removed when the
// package's tests end.
var (
	workloadOnce sync.Once
	workloadTag  string
	workloadErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if workloadTag != "" && workloadErr == nil {
		if err := removeImage(workloadTag); err != nil {
			fmt.Fprintf(os.Stderr, "remove test image %s: %v\n", workloadTag, err)
			code = 1
		}
	}
	os.Exit(code)
}

func removeImage(tag string) error {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	_, err = cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true})
	return err
}

// workloadImage is the tag of the test workload image, building it once.
func workloadImage(t *testing.T) string {
	t.Helper()
	workloadOnce.Do(func() {
		workloadTag = "gpunet-runtime-test:" + randomHex(t, 6)
		cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if err != nil {
			workloadErr = err
			return
		}
		defer cli.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		workloadErr = imagebuild.BuildGoImage(ctx, cli, workloadTag, "testdata/workload")
	})
	if workloadErr != nil {
		t.Fatalf("build the test workload image: %v", workloadErr)
	}
	return workloadTag
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newTestRuntime connects to the engine as a provider address unique to the
// test, so parallel tests (and parallel test processes) never see each
// other's containers, and removes everything of that provider at the end.
// An unreachable engine fails the test: these tests are not optional.
func newTestRuntime(t *testing.T, opts Options) *Runtime {
	t.Helper()
	if opts.Provider == "" {
		opts.Provider = "gpunet1test" + randomHex(t, 8)
	}
	if opts.PublishHost == "" {
		opts.PublishHost = "127.0.0.1"
	}
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	r, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("%v\nThese tests need a running Docker engine: start dockerd (CI starts it).", err)
	}
	t.Cleanup(func() {
		removeAllOf(t, r)
		r.Close()
	})
	return r
}

// removeAllOf removes every lease the runtime's provider has on the engine
// and checks that nothing is left.
func removeAllOf(t *testing.T, r *Runtime) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leases, err := r.List(ctx)
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, h := range leases {
		if err := r.Remove(ctx, h.Ref); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if left, err := r.List(ctx); err != nil || len(left) > 0 {
		t.Errorf("cleanup left leases %v (err %v)", left, err)
	}
	// Each test runtime is a provider of its own: its shared network goes
	// with it, or the pool's /20s run out over many test runs.
	if err := r.cli.NetworkRemove(ctx, r.sharedNetwork()); err != nil && !cerrdefs.IsNotFound(err) {
		t.Errorf("cleanup: shared network: %v", err)
	}
}

// newLease is a lease of the runtime's provider with a fresh dseq.
func newLease(t *testing.T, r *Runtime) LeaseRef {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	dseq := uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
	return LeaseRef{Order: markettypes.OrderID{Owner: "gpunet1owner" + randomHex(t, 4), Dseq: dseq + 1, Gseq: 1, Oseq: 1}, Provider: r.opts.Provider}
}

// workloadService is a service running the test workload with args.
func workloadService(t *testing.T, name string, count uint32, restart string, args ...string) sdl.ManifestService {
	return sdl.ManifestService{
		Name: name, Image: workloadImage(t), Args: args, Count: count, Restart: restart,
		Resources: sdl.ManifestResource{CPUMillis: 100, MemoryBytes: 32 << 20},
	}
}

func deploy(t *testing.T, r *Runtime, l LeaseRef, services ...sdl.ManifestService) LeaseStatus {
	t.Helper()
	st, err := r.Deploy(context.Background(), Workload{Lease: l, Group: sdl.ManifestGroup{Name: "dc", Services: services}})
	if err != nil {
		t.Fatalf("Deploy %s: %v", leaseName(l), err)
	}
	return st
}

// logsOf returns the lease's logs without following.
func logsOf(t *testing.T, r *Runtime, l LeaseRef, service string, tail int) string {
	t.Helper()
	var buf bytes.Buffer
	if err := r.Logs(context.Background(), l, service, false, tail, &buf); err != nil {
		t.Fatalf("Logs %s %q: %v", leaseName(l), service, err)
	}
	return buf.String()
}

// waitForLogLines polls the lease's logs until they contain every line.
func waitForLogLines(t *testing.T, r *Runtime, l LeaseRef, service string, lines ...string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		logs := logsOf(t, r, l, service, 0)
		missing := ""
		for _, line := range lines {
			if !strings.Contains(logs, line+"\n") {
				missing = line
				break
			}
		}
		if missing == "" {
			return logs
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs of %s never showed %q; they are:\n%s", leaseName(l), missing, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitExited polls Status until every container of the lease has exited.
func waitExited(t *testing.T, r *Runtime, l LeaseRef) LeaseStatus {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := r.Status(context.Background(), l)
		if err != nil {
			t.Fatal(err)
		}
		if st.Exited() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease %s did not exit: %+v", leaseName(l), st.Services)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
