package console

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gpunet/gpunet/provider/api"
	"github.com/gpunet/gpunet/provider/leaseauth"
)

// A browser cannot set the signature headers of a WebSocket, nor speak
// the provider's upgraded shell protocol over fetch. So the page opens a
// WebSocket to the console and sends, as its first message, the shell
// request it signed (path, headers, body); the console makes that request
// to the provider, unchanged, over TLS pinned to the chain's hash, and
// then carries the provider's frames (provider/api: a type byte, a length
// and a payload) both ways, one frame per WebSocket message.

// ShellOpen is the page's first message.
type ShellOpen struct {
	Path    string            `json:"path"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// upgrader's default origin check refuses another site's page.
var upgrader = websocket.Upgrader{ReadBufferSize: 32 << 10, WriteBufferSize: 32 << 10}

func (s *Server) shell(w http.ResponseWriter, r *http.Request) {
	owner := r.PathValue("provider")
	if !s.validAddress(w, owner, "provider") {
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	defer func() { _ = ws.Close() }()       // the page may have gone
	ws.SetReadLimit(2 * (api.MaxFrame + 5)) // a frame, or the opening request
	fail := func(kind, msg string) {
		_ = ws.WriteJSON(apiError{Kind: kind, Message: msg}) // the page may be gone
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	var open ShellOpen
	if err := ws.ReadJSON(&open); err != nil {
		fail("request", "the first message must be the signed shell request: "+err.Error())
		return
	}
	_ = ws.SetReadDeadline(time.Time{})
	if !strings.HasPrefix(open.Path, "/v1/leases/") || !strings.HasSuffix(open.Path, "/shell") {
		fail("request", "a shell path is /v1/leases/OWNER/DSEQ/GSEQ/OSEQ/shell")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ep, ans := s.providerEndpoint(ctx, owner)
	if ans != nil {
		fail(ans.Kind, ans.Message)
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+ep.host+open.Path, strings.NewReader(open.Body))
	if err != nil {
		fail("request", err.Error())
		return
	}
	for _, h := range relayHeaders {
		if v, ok := open.Headers[h]; ok {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", api.ShellProtocol)
	tr := leaseauth.PinnedClient(ep.pin, 0).Transport.(*http.Transport).Clone()
	tr.ForceAttemptHTTP2 = false // an upgrade is HTTP/1.1
	tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
	// No redirect: a provider must not send the console, with the
	// tenant's signed request, to another address.
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := (&http.Client{Transport: tr, CheckRedirect: noRedirect}).Do(req)
	if err != nil {
		kind, msg := ep.failed(err)
		fail(kind, msg)
		return
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		raw, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		res.Body.Close()
		var e api.Error
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = string(bytes.TrimSpace(raw))
		}
		fail("provider", fmt.Sprintf("provider refused the shell (%d): %s", res.StatusCode, e.Error))
		return
	}
	conn, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		res.Body.Close()
		fail("provider", "the provider's answer cannot carry a shell")
		return
	}
	defer conn.Close()
	if err := ws.WriteJSON(map[string]bool{"open": true}); err != nil {
		return
	}
	// Page → provider: each binary message is one frame, checked.
	go func() {
		defer cancel()
		for {
			kind, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if kind != websocket.BinaryMessage {
				continue
			}
			if _, _, err := api.ReadFrame(bytes.NewReader(msg)); err != nil {
				return
			}
			if _, err := conn.Write(msg); err != nil {
				return
			}
		}
	}()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	// Provider → page: frame by frame.
	rd := bufio.NewReader(conn)
	for {
		kind, payload, err := api.ReadFrame(rd)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := api.WriteFrame(&buf, kind, payload); err != nil {
			return
		}
		if err := ws.WriteMessage(websocket.BinaryMessage, buf.Bytes()); err != nil {
			return
		}
		if kind == api.FrameExit || kind == api.FrameError {
			_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			return
		}
	}
}
