package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// UpdateSettle is how long an update's new replicas must keep running
// before the old ones are removed.
var UpdateSettle = 5 * time.Second

// ErrUpdateFailed wraps why an update's new replicas did not take over;
// the old ones run on.
var ErrUpdateFailed = errors.New("update failed; the previous version keeps running")

// Update moves a running lease to the workload's group in place: same
// lease, network, GPUs and persistent volumes. The new images are on the
// engine before anything changes. A lease without GPUs or persistent
// volumes gets its new replicas next to the old ones, which go once the
// new have run for UpdateSettle (no gap). With GPUs or persistent volumes
// the old replicas stop first (a GPU or a database directory has one user
// at a time), and start again if the new ones fail. Either way a failed
// update leaves the previous version running and says why.
//
// Update is idempotent: containers already running the group are kept,
// and leftovers of an interrupted update to it are replaced.
func (r *Runtime) Update(ctx context.Context, w Workload) (LeaseStatus, error) {
	if err := r.checkLease(w.Lease); err != nil {
		return LeaseStatus{}, err
	}
	unlock := r.lockLease(w.Lease)
	defer unlock()
	log := r.log.With("lease", leaseName(w.Lease))
	target := w.Group.Hash()

	existing, err := r.leaseContainers(ctx, w.Lease)
	if err != nil {
		return LeaseStatus{}, err
	}
	var old, stale []container.Summary
	for _, c := range existing {
		if c.Labels[LabelManifest] == target {
			stale = append(stale, c)
		} else {
			old = append(old, c)
		}
	}
	if len(old) == 0 && len(stale) > 0 {
		return r.Status(ctx, w.Lease) // already there
	}
	if len(old) == 0 {
		return LeaseStatus{}, fmt.Errorf("lease %s has no containers to update", leaseName(w.Lease))
	}

	set := r.settingsFor(w.Lease, w.Group)
	set.NameSuffix = "-" + target[:8]
	specs, err := planReplicas(w, set)
	if err != nil {
		return LeaseStatus{}, fmt.Errorf("%w: %v", ErrWorkloadInvalid, err)
	}
	if err := r.removeContainers(ctx, w.Lease, stale); err != nil {
		return LeaseStatus{}, err
	}
	if err := r.ensureImages(ctx, w); err != nil {
		return LeaseStatus{}, err
	}
	exclusive := slices.ContainsFunc(specs, func(s replicaSpec) bool { return len(s.GPUs) > 0 || len(s.Persistent) > 0 })
	if exclusive {
		if err := r.stopContainers(ctx, old); err != nil {
			r.startContainers(ctx, old)
			return LeaseStatus{}, fmt.Errorf("stop the previous version: %w", err)
		}
	}
	log.Info("update: starting the new version", "containers", len(specs), "manifest", target[:12], "in_place", exclusive)
	_, err = r.createAndStart(ctx, w.Lease, set, specs)
	if err == nil {
		err = r.settle(ctx, specs)
	}
	if err != nil {
		log.Warn("update failed; back to the previous version", "err", err)
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if created, lerr := r.leaseContainers(cctx, w.Lease); lerr == nil {
			var fresh []container.Summary
			for _, c := range created {
				if c.Labels[LabelManifest] == target {
					fresh = append(fresh, c)
				}
			}
			if rerr := r.removeContainers(cctx, w.Lease, fresh); rerr != nil {
				log.Error("update: removing the new version", "err", rerr)
			}
		}
		if exclusive {
			r.startContainers(cctx, old)
		}
		return LeaseStatus{}, fmt.Errorf("%w: %w", ErrUpdateFailed, err)
	}
	if err := r.removeContainers(ctx, w.Lease, old); err != nil {
		return LeaseStatus{}, err
	}
	var images []string
	for _, c := range old {
		if !slices.Contains(images, c.Image) {
			images = append(images, c.Image)
		}
	}
	r.removeUnusedImages(ctx, images)
	log.Info("lease updated", "manifest", target[:12])
	return r.Status(ctx, w.Lease)
}

// settle waits UpdateSettle and fails when a new replica stopped or
// restarted meanwhile, with its exit code and last log lines. A job's
// replica that exited with 0 has done its work and is fine.
func (r *Runtime) settle(ctx context.Context, specs []replicaSpec) error {
	deadline := time.Now().Add(UpdateSettle)
	for {
		for _, s := range specs {
			c, err := r.cli.ContainerInspect(ctx, s.Name)
			if err != nil {
				return fmt.Errorf("service %q replica %d: %w", s.Service, s.Replica, err)
			}
			st := c.State
			if st == nil {
				continue
			}
			ok := st.Running && !st.Restarting && c.RestartCount == 0
			if s.Host.RestartPolicy.Name == container.RestartPolicyDisabled && st.Status == container.StateExited && st.ExitCode == 0 {
				ok = true
			}
			if !ok {
				why := fmt.Sprintf("exited with code %d", st.ExitCode)
				if st.Running && c.RestartCount > 0 {
					why = fmt.Sprintf("crashed and was restarted %d times", c.RestartCount) // the engine resets the exit code on restart
				}
				if st.OOMKilled {
					why += " (out of memory)"
				}
				if st.Error != "" {
					why += ": " + st.Error
				}
				if tail := r.logTail(ctx, c.ID, 5); tail != "" {
					why += "; last output: " + tail
				}
				return fmt.Errorf("service %q replica %d %s", s.Service, s.Replica, why)
			}
		}
		if time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// logTail is a container's last n log lines joined with " | ", at most
// 512 bytes.
func (r *Runtime) logTail(ctx context.Context, id string, n int) string {
	rc, err := r.cli.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, io.LimitReader(rc, 64<<10)); err != nil && buf.Len() == 0 {
		return ""
	}
	var lines []string
	for _, l := range strings.Split(buf.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	out := strings.Join(lines, " | ")
	if len(out) > 512 {
		out = out[len(out)-512:]
	}
	return out
}

// stopContainers stops running containers, within 10 s each.
func (r *Runtime) stopContainers(ctx context.Context, cs []container.Summary) error {
	timeout := 10
	var errs []error
	for _, c := range cs {
		if err := r.cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("stop %s: %w", trimSlash(firstName(c.Names)), err))
		}
	}
	return errors.Join(errs...)
}

// startContainers starts containers again after a failed update, logging
// what does not start.
func (r *Runtime) startContainers(ctx context.Context, cs []container.Summary) {
	for _, c := range cs {
		if err := r.cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			r.log.Error("update: starting the previous version again", "container", trimSlash(firstName(c.Names)), "err", err)
		}
	}
}

// removeContainers force-removes some of a lease's containers.
func (r *Runtime) removeContainers(ctx context.Context, l LeaseRef, cs []container.Summary) error {
	var errs []error
	for _, c := range cs {
		err := r.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("lease %s: remove container %s: %w", leaseName(l), c.ID, err))
			continue
		}
		r.evicted.forget(c.ID)
		r.log.Info("container removed", "lease", leaseName(l), "service", c.Labels[LabelService],
			"replica", c.Labels[LabelReplica], "container", trimSlash(firstName(c.Names)))
	}
	return errors.Join(errs...)
}
