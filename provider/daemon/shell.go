package daemon

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/runtime"
)

// shellIdle ends a shell whose tenant sent nothing and whose command
// printed nothing for this long.
const shellIdle = 30 * time.Minute

// maxShellArgs bounds a shell command's arguments.
const maxShellArgs = 256

// handleShell runs a command in a running replica of the lease, for its
// owner only, over the upgraded connection (see api.ShellProtocol). It
// counts as one of the lease's streams.
func (d *Daemon) handleShell(w http.ResponseWriter, r *http.Request, body []byte) {
	l, ok := d.leaseFromPath(w, r)
	if !ok {
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), api.ShellProtocol) {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("a shell needs Upgrade: %s", api.ShellProtocol))
		return
	}
	var req api.ShellRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("shell request: %v", err))
		return
	}
	if len(req.Cmd) == 0 || len(req.Cmd) > maxShellArgs || req.Cmd[0] == "" {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("give a command of 1 to %d arguments", maxShellArgs))
		return
	}
	if v := l.view(); v.Phase != PhaseStarting && v.Phase != PhaseRunning && v.Phase != PhaseUpdating {
		writeErr(w, http.StatusConflict, fmt.Errorf("lease %s is %s, not running", l.key, v.Phase))
		return
	}
	if req.Service == "" {
		if svcs := l.view().Services; len(svcs) == 1 {
			req.Service = svcs[0]
		} else {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("the lease runs services %s: name one", strings.Join(svcs, ", ")))
			return
		}
	}
	release, ok := d.openStream(l.key, l.ref.Order.Owner)
	if !ok {
		writeErr(w, http.StatusTooManyRequests, fmt.Errorf("too many streams open for this lease (%d) or owner (%d); close one", maxStreamsPerLease, maxStreamsPerOwner))
		return
	}
	defer release()
	ctx, cancel := context.WithCancel(d.ctx)
	defer cancel()
	sess, err := d.rt.Exec(ctx, l.ref, runtime.ExecRequest{Service: req.Service, Replica: req.Replica, Cmd: req.Cmd, TTY: req.TTY, Stdin: req.Stdin, Rows: req.Rows, Cols: req.Cols})
	switch {
	case errors.Is(err, runtime.ErrServiceNotFound), errors.Is(err, runtime.ErrNotRunning):
		writeErr(w, http.StatusNotFound, err)
		return
	case err != nil:
		writeErr(w, http.StatusUnprocessableEntity, err)
		return
	}
	defer func() { _ = sess.Close() }() // the session is over either way
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeErr(w, http.StatusHTTPVersionNotSupported, errors.New("a shell needs HTTP/1.1"))
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		d.log.Warn("shell: hijack failed", "lease", l.key, "err", err)
		return
	}
	defer func() { _ = conn.Close() }() // the session is over either way
	_ = conn.SetDeadline(time.Time{})   // the server's request deadlines do not bound a session
	if _, err := brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + api.ShellProtocol + "\r\n\r\n"); err != nil {
		return
	}
	if err := brw.Flush(); err != nil {
		return
	}
	d.log.Info("shell opened", "lease", l.key, "service", req.Service, "replica", req.Replica, "tty", req.TTY)
	l.event("shell", fmt.Sprintf("shell opened in %s-%d", req.Service, req.Replica))

	// The session ends when the command's output ends, the tenant goes, or
	// nothing moves either way for shellIdle.
	idle := time.AfterFunc(shellIdle, cancel)
	defer idle.Stop()
	var mu sync.Mutex
	out := &activity{w: api.FrameWriter{Mu: &mu, W: brw.Writer, Kind: api.FrameStdout}, flush: brw.Writer.Flush, mu: &mu, idle: idle}
	errOut := &activity{w: api.FrameWriter{Mu: &mu, W: brw.Writer, Kind: api.FrameStderr}, flush: brw.Writer.Flush, mu: &mu, idle: idle}
	go func() {
		defer cancel()
		d.pumpShellInput(ctx, bufio.NewReader(brw.Reader), sess, req.Stdin, idle)
	}()
	go func() { <-ctx.Done(); _ = sess.Close() }() // unblocks Output when the tenant goes
	_ = sess.Output(out, errOut)                   // ends with the command's output (or the session)
	code, err := sess.ExitCode(context.WithoutCancel(ctx))
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		_ = api.WriteFrame(brw.Writer, api.FrameError, []byte(err.Error()))
	} else {
		var p [4]byte
		binary.BigEndian.PutUint32(p[:], uint32(int32(code)))
		_ = api.WriteFrame(brw.Writer, api.FrameExit, p[:])
	}
	_ = brw.Writer.Flush()
	d.log.Info("shell closed", "lease", l.key, "exit_code", code)
}

// pumpShellInput applies the tenant's frames to the session: stdin, its
// end, terminal sizes. It returns when the tenant's side ends.
func (d *Daemon) pumpShellInput(ctx context.Context, r *bufio.Reader, sess runtime.Shell, stdin bool, idle *time.Timer) {
	for {
		kind, p, err := api.ReadFrame(r)
		if err != nil {
			return
		}
		idle.Reset(shellIdle)
		switch kind {
		case api.FrameStdin:
			if stdin {
				if _, err := sess.Stdin().Write(p); err != nil {
					return
				}
			}
		case api.FrameStdinEOF:
			if stdin {
				_ = sess.CloseStdin() // a command that already exited has no input to end
			}
		case api.FrameResize:
			if len(p) == 4 {
				_ = sess.Resize(ctx, binary.BigEndian.Uint16(p[:2]), binary.BigEndian.Uint16(p[2:])) // a size the engine refuses leaves the old one
			}
		}
	}
}

// activity is a frame writer that flushes each write and counts as
// activity for the session's idle timer.
type activity struct {
	w     api.FrameWriter
	flush func() error
	mu    *sync.Mutex
	idle  *time.Timer
}

func (a *activity) Write(p []byte) (int, error) {
	a.idle.Reset(shellIdle)
	n, err := a.w.Write(p)
	if err != nil {
		return n, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return n, a.flush()
}
