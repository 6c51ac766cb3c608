// Package imagebuild turns a Go main package into a minimal container image
// (FROM scratch, the static binary as its entrypoint) through the Docker
// Engine API, with no registry involved. Tests and local demos use it to
// produce workload images on machines that cannot pull.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"

	"github.com/docker/docker/api/types/build"
)

// Builder is the part of the Docker client that BuildGoImage needs;
// *client.Client satisfies it.
type Builder interface {
	ImageBuild(ctx context.Context, buildContext io.Reader, options build.ImageBuildOptions) (build.ImageBuildResponse, error)
}

// dockerfile puts the binary at /app and runs it; the image has nothing else
// (no shell, no libc, no CA certificates).
const dockerfile = `FROM scratch
COPY app /app
ENTRYPOINT ["/app"]
`

// BuildGoImage compiles the Go main package in pkgDir as a static linux
// binary (CGO_ENABLED=0, -trimpath, for the architecture this process runs
// on) and builds the image tag from it: FROM scratch with the binary as
// /app and ENTRYPOINT ["/app"].
func BuildGoImage(ctx context.Context, cli Builder, tag, pkgDir string) error {
	tmp, err := os.MkdirTemp("", "gpunet-imagebuild-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }() // a temporary build directory

	bin := filepath.Join(tmp, "app")
	if err := compile(ctx, pkgDir, bin); err != nil {
		return err
	}
	buildContext, err := contextTar(bin)
	if err != nil {
		return fmt.Errorf("image %s: build context: %w", tag, err)
	}
	return buildImage(ctx, cli, tag, buildContext)
}

// compile runs go build in pkgDir and writes the binary to out.
func compile(ctx context.Context, pkgDir, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go build %s: the go tool is not on PATH: %w", pkgDir, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", out, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goruntime.GOARCH)
	if output, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkgDir, err, bytes.TrimSpace(output))
	}
	return nil
}

// contextTar is the in-memory build context: the Dockerfile and the binary.
func contextTar(bin string) (*bytes.Buffer, error) {
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name string
		mode int64
		body []byte
	}{
		{"Dockerfile", 0o644, []byte(dockerfile)},
		{"app", 0o755, binary},
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	return &buf, tw.Close()
}

// buildImage sends the context to the engine and reads the build's progress
// stream to the end: the engine reports a failed step inside the stream,
// not as an HTTP error.
func buildImage(ctx context.Context, cli Builder, tag string, buildContext io.Reader) error {
	resp, err := cli.ImageBuild(ctx, buildContext, build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		// The classic builder: BuildKit needs a session, and FROM scratch
		// needs nothing it offers.
		Version: build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("image %s: build: %w", tag, err)
	}
	defer resp.Body.Close()
	if err := readBuildStream(resp.Body); err != nil {
		return fmt.Errorf("image %s: build: %w", tag, err)
	}
	return nil
}

// buildMessage is one line of the engine's JSON progress stream.
type buildMessage struct {
	Stream      string `json:"stream"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readBuildStream drains the progress stream and returns the first error it
// reports, with the build's output so far for context.
func readBuildStream(r io.Reader) error {
	var output strings.Builder
	dec := json.NewDecoder(r)
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading build output: %w", err)
		}
		output.WriteString(m.Stream)
		if m.Error != "" || m.ErrorDetail != nil {
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			return fmt.Errorf("%s\n%s", msg, strings.TrimSpace(output.String()))
		}
	}
}

// WorkloadDir is the directory of the test workload program
// (provider/runtime/testdata/workload), found from this source file's
// location; it is meant for tests run from a source checkout.
func WorkloadDir() (string, error) {
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		return "", errors.New("workload dir: source location unknown")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "testdata", "workload")
	if _, err := os.Stat(filepath.Join(dir, "main.go")); err != nil {
		return "", fmt.Errorf("workload dir: %w (this binary was not built from a source checkout)", err)
	}
	return dir, nil
}

// BuildWorkload builds the test workload program (see WorkloadDir) as image
// tag. Its flags are documented in its source; tests in other packages use
// it to get a runnable image without a registry.
func BuildWorkload(ctx context.Context, cli Builder, tag string) error {
	dir, err := WorkloadDir()
	if err != nil {
		return err
	}
	return BuildGoImage(ctx, cli, tag, dir)
}
