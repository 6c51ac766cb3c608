package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// ErrNotRunning: the replica a shell asks for has no running container.
var ErrNotRunning = errors.New("no running container")

// ExecRequest is a command to run in one replica of a lease.
type ExecRequest struct {
	Service    string
	Replica    int
	Cmd        []string
	TTY, Stdin bool
	Rows, Cols uint16
}

// Shell is a command running in a replica, on whichever runtime: Stdin
// feeds it (when asked for) and CloseStdin ends that input, Resize sizes
// its terminal, Output copies what it prints until it ends, ExitCode says
// how it ended, and Close cuts it off.
type Shell interface {
	Stdin() io.Writer
	CloseStdin() error
	Resize(ctx context.Context, rows, cols uint16) error
	Output(stdout, stderr io.Writer) error
	ExitCode(ctx context.Context) (int, error)
	Close() error
}

// ExecSession is a Shell in a Docker container.
type ExecSession struct {
	r          *Runtime
	id         string
	tty        bool
	conn       io.ReadWriteCloser
	out        io.Reader
	closeStdin func() error
}

// CloseStdin tells the command its input ended.
func (s *ExecSession) CloseStdin() error {
	if s.closeStdin == nil {
		return nil
	}
	return s.closeStdin()
}

// Stdin is the command's standard input.
func (s *ExecSession) Stdin() io.Writer { return s.conn }

// Resize sizes the command's terminal.
func (s *ExecSession) Resize(ctx context.Context, rows, cols uint16) error {
	if !s.tty {
		return nil
	}
	return s.r.cli.ContainerExecResize(ctx, s.id, container.ResizeOptions{Height: uint(rows), Width: uint(cols)})
}

// Output copies the command's output until it ends: with a TTY, one
// stream to stdout; otherwise stdout and stderr apart.
func (s *ExecSession) Output(stdout, stderr io.Writer) error {
	var err error
	if s.tty {
		_, err = io.Copy(stdout, s.out)
	} else {
		_, err = stdcopy.StdCopy(stdout, stderr, s.out)
	}
	return err
}

// ExitCode waits (briefly) for the command's end and returns its code.
func (s *ExecSession) ExitCode(ctx context.Context) (int, error) {
	for i := 0; ; i++ {
		ins, err := s.r.cli.ContainerExecInspect(ctx, s.id)
		if err != nil {
			return 0, err
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		if i >= 50 {
			return 0, errors.New("the command's output ended but it still runs")
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Close ends the session's connection (the command gets EOF and SIGHUP
// with a TTY).
func (s *ExecSession) Close() error { return s.conn.Close() }

// Exec starts a command in a running replica of the lease, confined as the
// container is (its user, capabilities and limits).
func (r *Runtime) Exec(ctx context.Context, l LeaseRef, req ExecRequest) (Shell, error) {
	if err := r.checkLease(l); err != nil {
		return nil, err
	}
	if len(req.Cmd) == 0 {
		return nil, errors.New("no command given")
	}
	cs, err := r.leaseContainers(ctx, l)
	if err != nil {
		return nil, err
	}
	id := ""
	services := map[string]bool{}
	for _, c := range cs {
		services[c.Labels[LabelService]] = true
		if c.Labels[LabelService] == req.Service && c.Labels[LabelReplica] == strconv.Itoa(req.Replica) && c.State == container.StateRunning {
			id = c.ID
		}
	}
	if id == "" {
		if !services[req.Service] {
			return nil, fmt.Errorf("%w: lease %s has no service %q", ErrServiceNotFound, leaseName(l), req.Service)
		}
		return nil, fmt.Errorf("%w for replica %d of service %q", ErrNotRunning, req.Replica, req.Service)
	}
	opts := container.ExecOptions{Cmd: req.Cmd, Tty: req.TTY, AttachStdin: req.Stdin, AttachStdout: true, AttachStderr: true}
	if req.TTY && req.Rows > 0 && req.Cols > 0 {
		opts.ConsoleSize = &[2]uint{uint(req.Rows), uint(req.Cols)}
	}
	created, err := r.cli.ContainerExecCreate(ctx, id, opts)
	if err != nil {
		return nil, fmt.Errorf("exec in %s-%d: %w", req.Service, req.Replica, err)
	}
	hj, err := r.cli.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{Tty: req.TTY})
	if err != nil {
		return nil, fmt.Errorf("exec in %s-%d: %w", req.Service, req.Replica, err)
	}
	sess := &ExecSession{r: r, id: created.ID, tty: req.TTY, conn: hj.Conn, out: hj.Reader, closeStdin: hj.CloseWrite}
	if req.TTY && req.Rows > 0 && req.Cols > 0 {
		// Engines before API 1.42 ignore ConsoleSize: size it once started.
		_ = sess.Resize(ctx, req.Rows, req.Cols) // a refused size leaves the engine's default
	}
	r.log.Info("shell started", "lease", leaseName(l), "service", req.Service, "replica", req.Replica, "tty", req.TTY, "argv0", req.Cmd[0])
	return sess, nil
}
