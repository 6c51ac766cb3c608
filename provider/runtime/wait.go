package runtime

import (
	"context"
	"fmt"

	"github.com/docker/docker/api/types/container"
)

// JobResult is how a job lease ended.
type JobResult struct {
	// Succeeded is true when every container exited with code 0.
	Succeeded bool
	// ExitCodes maps container name to its exit code.
	ExitCodes map[string]int
}

// JobState reports whether every container of the lease has exited and,
// once they all have, their exit codes; containers that exited before the
// call (for instance while the daemon was down) count. It does not wait:
// the daemon asks again when the engine reports an exit (WatchEvents), so
// a running job costs no goroutine, connection or poll. It is meant for
// jobs; for a service it reports whether no container is running. A
// container that was created but never started is an error rather than a
// result: it did not run, so it neither succeeded nor failed.
func (r *Runtime) JobState(ctx context.Context, l LeaseRef) (JobResult, bool, error) {
	containers, err := r.leaseContainers(ctx, l)
	if err != nil {
		return JobResult{}, false, err
	}
	if len(containers) == 0 {
		return JobResult{}, false, fmt.Errorf("%w %s", ErrLeaseNotFound, leaseName(l))
	}
	for _, c := range containers {
		switch c.State {
		case container.StateRunning, container.StateRestarting, container.StatePaused:
			return JobResult{}, false, nil
		}
	}
	res := JobResult{Succeeded: true, ExitCodes: map[string]int{}}
	for _, c := range containers {
		rep, err := r.replicaStatus(ctx, c.ID)
		if err != nil {
			return JobResult{}, false, fmt.Errorf("lease %s: %w", leaseName(l), err)
		}
		if rep.State == string(container.StateCreated) {
			return JobResult{}, false, fmt.Errorf("lease %s: container %s was created but never started", leaseName(l), rep.ContainerName)
		}
		if !rep.Exited() {
			return JobResult{}, false, nil // restarted since the listing
		}
		res.ExitCodes[rep.ContainerName] = rep.ExitCode
		res.Succeeded = res.Succeeded && rep.ExitCode == 0
	}
	r.log.Info("job finished", "lease", leaseName(l), "succeeded", res.Succeeded, "exit_codes", res.ExitCodes)
	return res, true, nil
}
