package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gpunet/gpunet/provider/leaseauth"
)

// A lease shell runs a command in a lease's running container. The tenant
// sends a signed request naming the command; the provider answers 101 and
// the connection carries frames both ways: a type byte, a 4-byte
// big-endian length and the payload.

// ShellProtocol is the Upgrade token of a lease shell.
const ShellProtocol = "gpunet-shell/1"

// Frame types. Tenant to provider: stdin data, stdin closed, a terminal
// resize (rows, cols: two big-endian uint16). Provider to tenant: stdout,
// stderr, the exit code (big-endian int32, the last frame), an error.
const (
	FrameStdin    byte = 'i'
	FrameStdinEOF byte = 'e'
	FrameResize   byte = 'r'
	FrameStdout   byte = 'o'
	FrameStderr   byte = 'x'
	FrameExit     byte = 'c'
	FrameError    byte = 'E'
)

// MaxFrame is the largest payload of a frame.
const MaxFrame = 32 << 10

// ShellRequest is what a lease shell runs, and where.
type ShellRequest struct {
	Service string   `json:"service"`
	Replica int      `json:"replica"`
	Cmd     []string `json:"cmd"`
	TTY     bool     `json:"tty,omitempty"`
	Stdin   bool     `json:"stdin,omitempty"`
	Rows    uint16   `json:"rows,omitempty"`
	Cols    uint16   `json:"cols,omitempty"`
}

// WriteFrame writes one frame.
func WriteFrame(w io.Writer, kind byte, payload []byte) error {
	if len(payload) > MaxFrame {
		return fmt.Errorf("frame of %d bytes, at most %d", len(payload), MaxFrame)
	}
	var hdr [5]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	if _, err := w.Write(append(hdr[:], payload...)); err != nil {
		return err
	}
	return nil
}

// ReadFrame reads one frame; a payload over MaxFrame is an error.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes, at most %d", n, MaxFrame)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0], payload, nil
}

// FrameWriter writes data as frames of one kind, a frame per write (cut
// at MaxFrame), one writer at a time.
type FrameWriter struct {
	Mu   *sync.Mutex
	W    io.Writer
	Kind byte
}

func (f FrameWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), MaxFrame)]
		f.Mu.Lock()
		err := WriteFrame(f.W, f.Kind, chunk)
		f.Mu.Unlock()
		if err != nil {
			return n, err
		}
		n += len(chunk)
		p = p[len(chunk):]
	}
	return n, nil
}

// ExitError is a shell command's non-zero exit.
type ExitError struct{ Code int }

func (e *ExitError) Error() string { return fmt.Sprintf("command exited with code %d", e.Code) }

// Shell runs req in the lease's container: stdin (when req.Stdin) goes to
// the command, its output to stdout and stderr (one stream with a TTY),
// and each size on resize to its terminal. It returns the command's exit
// code.
func (c *Client) Shell(ctx context.Context, owner string, dseq uint64, gseq, oseq uint32, req ShellRequest, stdin io.Reader, stdout, stderr io.Writer, resize <-chan [2]uint16) (int, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+LeasePath(owner, dseq, gseq, oseq, "shell"), bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Connection", "Upgrade")
	hreq.Header.Set("Upgrade", ShellProtocol)
	if err := leaseauth.Sign(hreq, body, c.chainID, c.provider, c.signer, c.sign, time.Now()); err != nil {
		return 0, err
	}
	res, err := c.upgrader().Do(hreq)
	if err != nil {
		return 0, fmt.Errorf("provider API %s: %w", c.base, err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		defer res.Body.Close()
		var e Error
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = string(bytes.TrimSpace(raw))
		}
		return 0, &StatusError{Code: res.StatusCode, Message: e.Error}
	}
	conn, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		res.Body.Close()
		return 0, errors.New("the provider's answer cannot carry a shell")
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var mu sync.Mutex
	send := func(kind byte, p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		return WriteFrame(conn, kind, p)
	}
	done := make(chan struct{})
	defer close(done)
	if req.Stdin && stdin != nil {
		go func() {
			buf := make([]byte, MaxFrame)
			for {
				n, err := stdin.Read(buf)
				if n > 0 && send(FrameStdin, buf[:n]) != nil {
					return
				}
				if err != nil {
					_ = send(FrameStdinEOF, nil) // the connection may be gone already
					return
				}
			}
		}()
	}
	go func() {
		for {
			select {
			case <-done:
				return
			case sz, ok := <-resize:
				if !ok {
					return
				}
				var p [4]byte
				binary.BigEndian.PutUint16(p[:2], sz[0])
				binary.BigEndian.PutUint16(p[2:], sz[1])
				if send(FrameResize, p[:]) != nil {
					return
				}
			}
		}
	}()
	r := bufio.NewReader(conn)
	for {
		kind, p, err := ReadFrame(r)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, fmt.Errorf("shell connection ended before the command's exit: %w", err)
		}
		switch kind {
		case FrameStdout:
			if _, err := stdout.Write(p); err != nil {
				return 0, err
			}
		case FrameStderr:
			if _, err := stderr.Write(p); err != nil {
				return 0, err
			}
		case FrameExit:
			if len(p) != 4 {
				return 0, errors.New("malformed exit frame")
			}
			return int(int32(binary.BigEndian.Uint32(p))), nil
		case FrameError:
			return 0, fmt.Errorf("provider: %s", p)
		}
	}
}

// upgrader is the client's transport limited to HTTP/1.1, where a
// connection can switch protocols.
func (c *Client) upgrader() *http.Client {
	c.upgradeOnce.Do(func() {
		tr, ok := c.http.Transport.(*http.Transport)
		if !ok {
			c.upgradeClient = c.http
			return
		}
		t := tr.Clone()
		t.ForceAttemptHTTP2 = false
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		if t.TLSClientConfig != nil {
			t.TLSClientConfig.NextProtos = []string{"http/1.1"}
		}
		c.upgradeClient = &http.Client{Transport: t}
	})
	return c.upgradeClient
}
