package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/gpunet/gpunet/provider/runtime"
)

// nodeSummary reads a node's kubelet stats summary: usage by
// "namespace/pod".
func (r *Runtime) nodeSummary(ctx context.Context, node string) (map[string]runtime.ContainerUsage, error) {
	raw, err := r.api.core().Get().Resource("nodes").Name(node).SubResource("proxy", "stats", "summary").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s stats: %w", node, err)
	}
	var sum struct {
		Pods []struct {
			PodRef struct{ Name, Namespace string } `json:"podRef"`
			CPU    *struct {
				UsageNanoCores *uint64 `json:"usageNanoCores"`
			} `json:"cpu"`
			Memory *struct {
				WorkingSetBytes *uint64 `json:"workingSetBytes"`
			} `json:"memory"`
		} `json:"pods"`
	}
	if err := json.Unmarshal(raw, &sum); err != nil {
		return nil, fmt.Errorf("node %s stats: %w", node, err)
	}
	out := map[string]runtime.ContainerUsage{}
	for _, p := range sum.Pods {
		var u runtime.ContainerUsage
		if p.CPU != nil && p.CPU.UsageNanoCores != nil {
			u.CPUPercent = float64(*p.CPU.UsageNanoCores) / 1e7 // of one core
		}
		if p.Memory != nil && p.Memory.WorkingSetBytes != nil {
			u.MemoryBytes = *p.Memory.WorkingSetBytes
		}
		out[p.PodRef.Namespace+"/"+p.PodRef.Name] = u
	}
	return out, nil
}

// Logs writes the lease's pods' output to w, each line prefixed
// "[service-replica] ": service "" means every service, tail 0 every
// line. Without follow, pods are written one after another in service and
// replica order; with follow, lines come as they are written until every
// pod's stream ends or ctx does.
func (r *Runtime) Logs(ctx context.Context, l runtime.LeaseRef, service string, follow bool, tail int, w io.Writer) error {
	pods, err := r.leasePods(ctx, l)
	if err != nil {
		return err
	}
	if len(pods) == 0 {
		return fmt.Errorf("%w %s", runtime.ErrLeaseNotFound, l.Order.Name())
	}
	if service != "" {
		var mine []*corev1.Pod
		for _, p := range pods {
			if p.Annotations[AnnotationService] == service {
				mine = append(mine, p)
			}
		}
		if len(mine) == 0 {
			return fmt.Errorf("%w %q in lease %s", runtime.ErrServiceNotFound, service, l.Order.Name())
		}
		pods = mine
	}
	opts := &corev1.PodLogOptions{Follow: follow}
	if tail > 0 {
		t := int64(tail)
		opts.TailLines = &t
	}
	out := runtime.LockedWriter(w)
	copyPod := func(ctx context.Context, p *corev1.Pod) error {
		s, err := r.api.pods(p.Namespace).GetLogs(p.Name, opts).Stream(ctx)
		if err != nil {
			if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting != nil && p.Status.ContainerStatuses[0].RestartCount == 0 {
				return nil // not started yet: nothing to read
			}
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		defer func() { _ = s.Close() }()
		pw := runtime.PrefixedWriter(out, "["+p.Annotations[AnnotationService]+"-"+p.Annotations[replicaAnnotation]+"] ")
		_, err = io.Copy(pw, s)
		if ferr := pw.Flush(); err == nil {
			err = ferr
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if !follow {
		for _, p := range pods {
			if err := copyPod(ctx, p); err != nil {
				return fmt.Errorf("lease %s: %w", l.Order.Name(), err)
			}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(pods))
	for _, p := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := copyPod(ctx, p); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// Exec starts a command in a running replica of the lease, through the
// API server, confined as the pod is.
func (r *Runtime) Exec(ctx context.Context, l runtime.LeaseRef, req runtime.ExecRequest) (runtime.Shell, error) {
	if len(req.Cmd) == 0 {
		return nil, errors.New("no command given")
	}
	pods, err := r.leasePods(ctx, l)
	if err != nil {
		return nil, err
	}
	var pod *corev1.Pod
	found := false
	for _, p := range pods {
		if p.Annotations[AnnotationService] != req.Service {
			continue
		}
		found = true
		if p.Annotations[replicaAnnotation] == strconv.Itoa(req.Replica) && p.Status.Phase == corev1.PodRunning {
			pod = p
		}
	}
	if pod == nil {
		if !found {
			return nil, fmt.Errorf("%w: lease %s has no service %q", runtime.ErrServiceNotFound, l.Order.Name(), req.Service)
		}
		return nil, fmt.Errorf("%w for replica %d of service %q", runtime.ErrNotRunning, req.Replica, req.Service)
	}
	u := r.execURL(pod, req)
	ws, err := remotecommand.NewWebSocketExecutor(r.cfg, "GET", u.String())
	if err != nil {
		return nil, err
	}
	spdy, err := remotecommand.NewSPDYExecutor(r.cfg, "POST", u)
	if err != nil {
		return nil, err
	}
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, httpstream.IsUpgradeFailure)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &shell{exec: exec, ctx: sctx, cancel: cancel, tty: req.TTY, sizes: make(chan remotecommand.TerminalSize, 4), done: make(chan struct{})}
	if req.Stdin {
		s.stdinR, s.stdinW = io.Pipe()
	}
	if req.TTY && req.Rows > 0 && req.Cols > 0 {
		s.sizes <- remotecommand.TerminalSize{Width: req.Cols, Height: req.Rows}
	}
	r.log.Info("shell started", "lease", l.Order.Name(), "service", req.Service, "replica", req.Replica, "tty", req.TTY, "argv0", req.Cmd[0])
	return s, nil
}

// execURL is the API server's exec endpoint for req in pod's container.
func (r *Runtime) execURL(pod *corev1.Pod, req runtime.ExecRequest) *url.URL {
	return r.api.core().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: pod.Spec.Containers[0].Name, Command: req.Cmd,
			Stdin: req.Stdin, Stdout: true, Stderr: !req.TTY, TTY: req.TTY,
		}, apiParameters).URL()
}

// shell is a command in a pod: the stream runs while Output copies it.
type shell struct {
	exec           remotecommand.Executor
	ctx            context.Context
	cancel         context.CancelFunc
	tty            bool
	stdinR         *io.PipeReader
	stdinW         *io.PipeWriter
	sizes          chan remotecommand.TerminalSize
	done           chan struct{}
	err            error
	closeStdinOnce sync.Once
}

func (s *shell) Stdin() io.Writer {
	if s.stdinW == nil {
		return io.Discard
	}
	return s.stdinW
}

func (s *shell) CloseStdin() error {
	if s.stdinW != nil {
		s.closeStdinOnce.Do(func() { _ = s.stdinW.Close() })
	}
	return nil
}

func (s *shell) Resize(ctx context.Context, rows, cols uint16) error {
	if !s.tty {
		return nil
	}
	select {
	case s.sizes <- remotecommand.TerminalSize{Width: cols, Height: rows}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return nil
	}
}

// Next is remotecommand.TerminalSizeQueue's: the sizes Resize queued.
func (s *shell) Next() *remotecommand.TerminalSize {
	select {
	case sz := <-s.sizes:
		return &sz
	case <-s.done:
		return nil
	}
}

func (s *shell) Output(stdout, stderr io.Writer) error {
	defer close(s.done)
	opts := remotecommand.StreamOptions{Stdout: stdout, Tty: s.tty}
	if !s.tty {
		opts.Stderr = stderr
	} else {
		opts.TerminalSizeQueue = s
	}
	if s.stdinR != nil {
		opts.Stdin = s.stdinR
	}
	err := s.exec.StreamWithContext(s.ctx, opts)
	var exitErr utilexec.ExitError
	if errors.As(err, &exitErr) {
		s.err = err
		return nil
	}
	s.err = err
	return err
}

// ExitCode is the command's exit code, once Output returned.
func (s *shell) ExitCode(ctx context.Context) (int, error) {
	select {
	case <-s.done:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	var exitErr utilexec.ExitError
	if errors.As(s.err, &exitErr) {
		return exitErr.ExitStatus(), nil
	}
	if s.err != nil {
		return 0, s.err
	}
	return 0, nil
}

func (s *shell) Close() error {
	s.cancel()
	if s.stdinW != nil {
		_ = s.stdinW.Close()
	}
	return nil
}
