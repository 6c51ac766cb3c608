package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/docker/docker/api/types/container"
)

// JobResult is how a job lease ended.
type JobResult struct {
	// Succeeded is true when every container exited with code 0.
	Succeeded bool
	// ExitCodes maps container name to its exit code.
	ExitCodes map[string]int
}

// WaitJob blocks until every container of the lease has exited and reports
// their exit codes. Containers that exited before the call (for instance
// while the daemon was down) count at once. It is meant for jobs; for a
// service it returns at the first time each container is not running.
// A container that was created but never started is an error rather than a
// result: it did not run, so it neither succeeded nor failed.
func (r *Runtime) WaitJob(ctx context.Context, l LeaseRef) (JobResult, error) {
	containers, err := r.leaseContainers(ctx, l)
	if err != nil {
		return JobResult{}, err
	}
	if len(containers) == 0 {
		return JobResult{}, fmt.Errorf("%w %s", ErrLeaseNotFound, l)
	}

	res := JobResult{Succeeded: true, ExitCodes: map[string]int{}}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, c := range containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name, code, err := r.waitExit(ctx, c.ID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			res.ExitCodes[name] = code
			res.Succeeded = res.Succeeded && code == 0
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return JobResult{}, err
	}
	if err := errors.Join(errs...); err != nil {
		return JobResult{}, fmt.Errorf("lease %s: %w", l, err)
	}
	r.log.Info("job finished", "lease", l.String(), "succeeded", res.Succeeded, "exit_codes", res.ExitCodes)
	return res, nil
}

// waitExit waits until the container is not running and returns its name
// and exit code.
func (r *Runtime) waitExit(ctx context.Context, id string) (string, int, error) {
	waitCh, errCh := r.cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case resp := <-waitCh:
		if resp.Error != nil && resp.Error.Message != "" {
			return "", 0, fmt.Errorf("wait for container %s: %s", id, resp.Error.Message)
		}
	case err := <-errCh:
		return "", 0, fmt.Errorf("wait for container %s: %w", id, err)
	}
	// Inspect rather than trust the wait response: it also tells a
	// container that never started from one that exited 0.
	c, err := r.cli.ContainerInspect(ctx, id)
	if err != nil {
		return "", 0, fmt.Errorf("inspect container %s: %w", id, err)
	}
	name := trimSlash(c.Name)
	if c.State == nil || c.State.Status == container.StateCreated {
		return name, 0, fmt.Errorf("container %s was created but never started", name)
	}
	return name, c.State.ExitCode, nil
}
