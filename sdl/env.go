package sdl

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
)

// CheckEnvName refuses environment variables a tenant must not set: the
// NVIDIA container toolkit reads NVIDIA_* (NVIDIA_VISIBLE_DEVICES=all would
// widen a container's GPUs to every device of the host, the driver
// capabilities and requirements steer what its hooks mount), and the
// dynamic loader's LD_* variables (LD_PRELOAD, LD_AUDIT, LD_LIBRARY_PATH)
// load code into whatever runs in the container, the runtime's hooks
// included. The provider sets NVIDIA_VISIBLE_DEVICES itself.
func CheckEnvName(name string) error {
	upper := strings.ToUpper(name)
	switch {
	case strings.HasPrefix(upper, "NVIDIA_"):
		return fmt.Errorf("%s is set by the provider (GPUs are given by the lease, not by the environment)", name)
	case strings.HasPrefix(upper, "LD_"):
		return fmt.Errorf("%s steers the dynamic loader; it is not allowed (bake library paths into the image instead)", name)
	}
	return nil
}

// CheckEnv checks a service's KEY=value entries.
func CheckEnv(env []string) error {
	for i, e := range env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return fmt.Errorf("env[%d] %q must be KEY=value", i, e)
		}
		if err := CheckEnvName(k); err != nil {
			return fmt.Errorf("env[%d]: %w", i, err)
		}
	}
	return nil
}

// NormalizeEnv writes an entry without "=" as Akash reads it, a variable
// set to the empty string ("DEBUG" becomes "DEBUG="); other entries are
// kept as they are.
func NormalizeEnv(env []string) []string {
	if env == nil {
		return nil
	}
	out := make([]string, len(env))
	for i, e := range env {
		if !strings.Contains(e, "=") {
			e += "="
		}
		out[i] = e
	}
	return out
}

// ImageRegistry is the registry an image reference is pulled from, as
// Docker reads it ("docker.io" when the reference names none).
func ImageRegistry(ref string) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image %q is not a valid reference: %v", ref, err)
	}
	return reference.Domain(named), nil
}

// CheckLogin refuses a registry login for a host other than the image's
// registry, the only one Docker sends it to. The host may carry a scheme
// and a trailing slash; Docker Hub's names are one.
func CheckLogin(ref, host string) error {
	reg, err := ImageRegistry(ref)
	if err != nil {
		return err
	}
	h := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://"), "/")
	hub := func(x string) bool {
		return x == "docker.io" || x == "index.docker.io" || x == "registry-1.docker.io" || strings.HasPrefix(x, "index.docker.io/v1")
	}
	if strings.EqualFold(reg, h) || hub(reg) && hub(h) {
		return nil
	}
	return fmt.Errorf("the login is for %s but image %s comes from %s", host, ref, reg)
}
