package runtime

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"

	"github.com/gpunet/gpunet/sdl"
)

// Persistent volumes: each replica's volume of a storage class is an ext4
// filesystem in an image file of the volume's size under the class's
// directory, loop-mounted by the daemon and bind-mounted into the
// container. Its size is the filesystem's: a write past it fails inside
// the container with "no space left on device". The volume outlives the
// container (restarts, a redeploy, the daemon) and is removed with the
// lease.

// volumeOverhead is added to a volume's image for the filesystem's own
// metadata, so that the tenant gets the size it asked for.
func volumeOverhead(size uint64) uint64 { return size/20 + 16<<20 }

// leaseVolumeDir is a lease's directory under a class path.
func leaseVolumeDir(classPath string, l LeaseRef) string {
	sum := sha256.Sum256([]byte(leaseName(l)))
	return filepath.Join(classPath, "lease-"+hex.EncodeToString(sum[:8]))
}

// volumePaths are a replica's volume image and its mount point.
func volumePaths(classPath string, l LeaseRef, service string, replica int, volume string) (img, mnt string) {
	base := filepath.Join(leaseVolumeDir(classPath, l), fmt.Sprintf("%s-%d-%s", sanitizeName(service), replica, sanitizeName(volume)))
	return base + ".img", base + ".mnt"
}

// persistentMounts makes (or finds) the replica's persistent volumes and
// returns their bind mounts.
func (r *Runtime) persistentMounts(ctx context.Context, l LeaseRef, svc sdl.ManifestService, replica int) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, m := range svc.Mounts {
		if !m.Persistent {
			continue
		}
		classPath, ok := r.opts.StorageClasses[m.Class]
		if !ok {
			return nil, fmt.Errorf("%w: service %q: storage class %s is not offered here", ErrWorkloadInvalid, svc.Name, m.Class)
		}
		img, mnt := volumePaths(classPath, l, svc.Name, replica, m.Volume)
		if err := ensureVolume(ctx, img, mnt, m.SizeBytes); err != nil {
			return nil, fmt.Errorf("lease %s service %q volume %s: %w", leaseName(l), svc.Name, m.Volume, err)
		}
		out = append(out, mount.Mount{Type: mount.TypeBind, Source: mnt, Target: m.Path, ReadOnly: m.ReadOnly})
	}
	return out, nil
}

// ensureVolume creates the image (sparse) and its filesystem when missing,
// and mounts it when it is not mounted.
func ensureVolume(ctx context.Context, img, mnt string, size uint64) error {
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(img); errors.Is(err, os.ErrNotExist) {
		f, err := os.OpenFile(img, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if err := f.Truncate(int64(size + volumeOverhead(size))); err != nil {
			_ = f.Close() // the truncate's error is the one to report
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		if err := run(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-E", "root_owner=0:0", img); err != nil {
			_ = os.Remove(img) // a half-made image would be mounted next time
			return err
		}
	} else if err != nil {
		return err
	}
	mounted, err := isMounted(mnt)
	if err != nil || mounted {
		return err
	}
	// The bare mount point is made immutable: a container the engine starts
	// before the volume is mounted (after a reboot) cannot write into the
	// host's own disk there. Best effort: filesystems without the flag
	// leave the daemon's restart of such containers as the guard.
	_ = run(ctx, "chattr", "+i", mnt)
	if err := run(ctx, "mount", "-o", "loop,nodev,nosuid", img, mnt); err != nil {
		return fmt.Errorf("%w (persistent volumes need the daemon to run as root)", err)
	}
	// The tenant's processes may run as any user: the volume's root is
	// theirs to write.
	return os.Chmod(mnt, 0o1777)
}

// removeLeaseVolumes unmounts and deletes every volume of a lease, in
// every class.
func (r *Runtime) removeLeaseVolumes(ctx context.Context, l LeaseRef) error {
	var errs []error
	for _, classPath := range r.opts.StorageClasses {
		dir := leaseVolumeDir(classPath, l)
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".mnt") {
				continue
			}
			mnt := filepath.Join(dir, e.Name())
			if mounted, err := isMounted(mnt); err == nil && mounted {
				if err := run(ctx, "umount", mnt); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			_ = run(ctx, "chattr", "-i", mnt) // the bare mount point, made immutable by ensureVolume
		}
		if len(errs) == 0 {
			if err := os.RemoveAll(dir); err != nil {
				errs = append(errs, err)
			} else {
				r.log.Info("persistent volumes removed", "lease", leaseName(l), "dir", dir)
			}
		}
	}
	return errors.Join(errs...)
}

// isMounted reports whether path is a mount point (from /proc/self/mountinfo).
func isMounted(path string) (bool, error) {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 4 && unescapeMountPath(f[4]) == path {
			return true, nil
		}
	}
	return false, sc.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	return nil
}

// RemountVolumes mounts every persistent volume image found under the
// storage classes that is not mounted (after a host reboot), then restarts
// the running containers that bind those volumes: the engine may have
// started them before, and their bind mounts show the bare mount points,
// not the data. It returns how many volumes it mounted.
func (r *Runtime) RemountVolumes(ctx context.Context) (int, error) {
	remounted := map[string]bool{}
	var errs []error
	classes := make([]string, 0, len(r.opts.StorageClasses))
	for c := range r.opts.StorageClasses {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	for _, class := range classes {
		classPath := r.opts.StorageClasses[class]
		imgs, err := filepath.Glob(filepath.Join(classPath, "lease-*", "*.img"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, img := range imgs {
			mnt := strings.TrimSuffix(img, ".img") + ".mnt"
			mounted, err := isMounted(mnt)
			if err != nil || mounted {
				continue
			}
			if err := ensureVolume(ctx, img, mnt, 0); err != nil {
				errs = append(errs, fmt.Errorf("class %s: %s: %w", class, img, err))
				continue
			}
			remounted[mnt] = true
		}
	}
	if len(remounted) > 0 {
		errs = append(errs, r.restartBinding(ctx, remounted))
	}
	return len(remounted), errors.Join(errs...)
}

// restartBinding restarts this provider's running containers that bind
// any of dirs, so they see what is mounted there now.
func (r *Runtime) restartBinding(ctx context.Context, dirs map[string]bool) error {
	mine := filters.NewArgs(filters.Arg("label", LabelProvider+"="+r.opts.Provider))
	list, err := r.cli.ContainerList(ctx, container.ListOptions{Filters: mine})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs []error
	for _, c := range list {
		if !slices.ContainsFunc(c.Mounts, func(m container.MountPoint) bool { return m.Type == mount.TypeBind && dirs[m.Source] }) {
			continue
		}
		timeout := 10
		if err := r.cli.ContainerRestart(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
			errs = append(errs, fmt.Errorf("restart %s: %w", c.Names, err))
			continue
		}
		r.log.Info("container restarted onto its re-mounted volume", "container", strings.TrimPrefix(strings.Join(c.Names, ","), "/"))
	}
	return errors.Join(errs...)
}
