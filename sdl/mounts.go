package sdl

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// CheckMountPath refuses mount paths a volume must not cover: the root,
// the kernel's and the engine's filesystems (/proc, /sys, /dev, except a
// ram volume at /dev/shm), and paths not written in their clean form.
func CheckMountPath(p string, ram bool) error {
	switch {
	case !strings.HasPrefix(p, "/") || path.Clean(p) != p:
		return fmt.Errorf("mount %q must be a clean absolute path (no .., no trailing /)", p)
	case p == "/":
		return errors.New(`mount "/" would replace the container's whole filesystem; mount a directory such as /data`)
	case p == "/dev/shm" && ram:
		return nil
	}
	for _, sys := range []string{"/proc", "/sys", "/dev"} {
		if p == sys || strings.HasPrefix(p, sys+"/") {
			return fmt.Errorf("mount %q is under %s, which the container runtime provides; mount a directory such as /data (a ram volume may go at /dev/shm)", p, sys)
		}
	}
	return nil
}
