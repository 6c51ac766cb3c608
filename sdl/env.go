package sdl

import (
	"fmt"
	"strings"
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

// imageRegistry is the registry host of an image reference, as Docker
// reads it: the first path element when it has a dot or a colon or is
// localhost, else Docker Hub.
func imageRegistry(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	if found && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// sameRegistry compares a credentials host with an image's registry:
// scheme and trailing slash ignored, Docker Hub's aliases equal.
func sameRegistry(image, host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://"), "/")
	hub := func(h string) bool {
		return h == "docker.io" || h == "index.docker.io" || h == "registry-1.docker.io" || strings.HasPrefix(h, "index.docker.io/v1")
	}
	if hub(image) && hub(host) {
		return true
	}
	return strings.EqualFold(image, host)
}

// ImageRegistry is imageRegistry for the provider.
func ImageRegistry(ref string) string { return imageRegistry(ref) }

// SameRegistry is sameRegistry for the provider.
func SameRegistry(image, host string) bool { return sameRegistry(image, host) }
