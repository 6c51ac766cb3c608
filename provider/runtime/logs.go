package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ErrServiceNotFound is wrapped by Logs when the lease has no containers for
// the service asked for.
var ErrServiceNotFound = errors.New("no containers for service")

// Logs writes the stdout and stderr of the lease's containers to w, each
// line prefixed "[service-replica] ". service "" means every service; tail
// 0 means all lines, otherwise the last tail lines of each container.
//
// Without follow, containers are written one after another in service and
// replica order. With follow, lines are written as they come, interleaved
// whole, and Logs returns when every container has stopped (nil) or ctx
// ends (ctx.Err()).
func (r *Runtime) Logs(ctx context.Context, l LeaseRef, service string, follow bool, tail int, w io.Writer) error {
	containers, err := r.leaseContainers(ctx, l)
	if err != nil {
		return err
	}
	if len(containers) == 0 {
		return fmt.Errorf("%w %s", ErrLeaseNotFound, leaseName(l))
	}
	if service != "" {
		containers = filterService(containers, service)
		if len(containers) == 0 {
			return fmt.Errorf("%w %q in lease %s", ErrServiceNotFound, service, leaseName(l))
		}
	}
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Tail: "all"}
	if tail > 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	out := &lockedWriter{w: w}

	if !follow {
		for _, c := range containers {
			if err := r.copyLogs(ctx, c, opts, out); err != nil {
				return fmt.Errorf("lease %s: %w", leaseName(l), err)
			}
		}
		return nil
	}

	return r.followLogs(ctx, l, containers, opts, out)
}

// followLogs streams every container's logs concurrently until all have
// stopped. The first stream that fails (e.g. w refusing writes) ends the
// others.
func (r *Runtime) followLogs(parent context.Context, l LeaseRef, containers []container.Summary, opts container.LogsOptions, out io.Writer) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, c := range containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.copyLogs(ctx, c, opts, out); err != nil {
				mu.Lock()
				if firstErr == nil && ctx.Err() == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err
	}
	if firstErr != nil {
		return fmt.Errorf("lease %s: %w", leaseName(l), firstErr)
	}
	return nil
}

func filterService(containers []container.Summary, service string) []container.Summary {
	var out []container.Summary
	for _, c := range containers {
		if c.Labels[LabelService] == service {
			out = append(out, c)
		}
	}
	return out
}

// copyLogs demultiplexes one container's log stream into prefixed lines.
func (r *Runtime) copyLogs(ctx context.Context, c container.Summary, opts container.LogsOptions, out io.Writer) error {
	replica, _ := strconv.Atoi(c.Labels[LabelReplica])
	key := replicaKey(c.Labels[LabelService], replica)
	prefix := "[" + key + "] "
	rc, err := r.cli.ContainerLogs(ctx, c.ID, opts)
	if err != nil {
		return fmt.Errorf("logs of %s: %w", key, err)
	}
	defer rc.Close()
	stdout := &linePrefixer{out: out, prefix: prefix}
	stderr := &linePrefixer{out: out, prefix: prefix}
	_, copyErr := stdcopy.StdCopy(stdout, stderr, rc)
	flushErr := errors.Join(stdout.Flush(), stderr.Flush())
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err := errors.Join(copyErr, flushErr); err != nil {
		return fmt.Errorf("logs of %s: %w", key, err)
	}
	return nil
}

// lockedWriter lets several log streams share one writer, a write at a time.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (lw *lockedWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	return lw.w.Write(p)
}

// MaxLogLine is the longest line a log stream passes on whole: a workload
// that writes one endless line gets it cut into marked pieces, and the
// daemon's memory stays flat.
const MaxLogLine = 16 << 10

// cutMark ends a line that was cut at MaxLogLine.
const cutMark = " [gpunet: line cut]\n"

// linePrefixer writes each complete line of its input to out as one write,
// prefixed; a partial line waits for its end (or Flush), up to MaxLogLine.
type linePrefixer struct {
	out     io.Writer
	prefix  string
	partial []byte
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if room := MaxLogLine - len(p.partial); i < 0 || i > room {
			if i < 0 && len(b) <= room {
				p.partial = append(p.partial, b...)
				break
			}
			p.partial = append(p.partial, b[:room]...)
			b = b[room:]
			line := make([]byte, 0, len(p.prefix)+len(p.partial)+len(cutMark))
			line = append(append(append(line, p.prefix...), p.partial...), cutMark...)
			p.partial = p.partial[:0]
			if _, err := p.out.Write(line); err != nil {
				return 0, err
			}
			continue
		}
		line := make([]byte, 0, len(p.prefix)+len(p.partial)+i+1)
		line = append(line, p.prefix...)
		line = append(line, p.partial...)
		line = append(line, b[:i+1]...)
		p.partial = p.partial[:0]
		b = b[i+1:]
		if _, err := p.out.Write(line); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Flush writes a trailing partial line, ending it with a newline.
func (p *linePrefixer) Flush() error {
	if len(p.partial) == 0 {
		return nil
	}
	_, err := p.Write([]byte{'\n'})
	return err
}

// LockedWriter lets several log streams share w, a write at a time (for
// other runtimes' Logs).
func LockedWriter(w io.Writer) io.Writer { return &lockedWriter{w: w} }

// PrefixedWriter writes each line written to it to out prefixed, whole,
// cutting lines at MaxLogLine; Flush ends a last partial line.
func PrefixedWriter(out io.Writer, prefix string) interface {
	io.Writer
	Flush() error
} {
	return &linePrefixer{out: out, prefix: prefix}
}
