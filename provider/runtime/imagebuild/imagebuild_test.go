package imagebuild

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// dockerClient connects to the engine or fails the test: these tests need
// a running dockerd and must not silently pass without one.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		t.Fatalf("Docker engine unreachable at %s (%v): start dockerd (CI starts it) or set DOCKER_HOST", cli.DaemonHost(), err)
	}
	return cli
}

func uniqueTag(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "gpunet-imagebuild-test:" + hex.EncodeToString(b)
}

func TestBuildWorkloadImage(t *testing.T) {
	cli := dockerClient(t)
	ctx := context.Background()
	tag := uniqueTag(t)
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("remove image %s: %v", tag, err)
		}
	})

	if err := BuildWorkload(ctx, cli, tag); err != nil {
		t.Fatalf("BuildWorkload: %v", err)
	}
	img, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatalf("inspect %s: %v", tag, err)
	}
	if got, want := []string(img.Config.Entrypoint), []string{"/app"}; !reflect.DeepEqual(got, want) {
		t.Errorf("entrypoint = %q, want %q", got, want)
	}
	if img.Os != "linux" {
		t.Errorf("os = %q, want linux", img.Os)
	}
	// FROM scratch: one layer, the binary.
	if n := len(img.RootFS.Layers); n != 1 {
		t.Errorf("image has %d layers, want 1 (scratch + the binary)", n)
	}
}

func TestBuildGoImageCompileError(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module broken\n\ngo 1.22\n",
		"main.go": "package main\n\nfunc main() { undefined() }\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The compile fails before the engine is contacted, so no client is needed.
	err := BuildGoImage(context.Background(), nil, "never-built:x", dir)
	if err == nil {
		t.Fatal("BuildGoImage of a package that does not compile succeeded")
	}
	if !strings.Contains(err.Error(), "undefined") || !strings.Contains(err.Error(), dir) {
		t.Errorf("error should carry the compiler's message and the package dir: %v", err)
	}
}

func TestReadBuildStreamReportsStepFailure(t *testing.T) {
	stream := `{"stream":"Step 1/3 : FROM scratch\n"}
{"stream":"Step 2/3 : COPY app /app\n"}
{"errorDetail":{"message":"COPY failed: file not found"},"error":"COPY failed: file not found"}
`
	err := readBuildStream(strings.NewReader(stream))
	if err == nil || !strings.Contains(err.Error(), "COPY failed") || !strings.Contains(err.Error(), "Step 2/3") {
		t.Fatalf("readBuildStream = %v, want the step failure with the output before it", err)
	}
	if err := readBuildStream(strings.NewReader(`{"stream":"Successfully built abc\n"}`)); err != nil {
		t.Fatalf("readBuildStream of a successful build = %v", err)
	}
}
