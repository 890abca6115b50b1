package gateway

import (
	"bufio"
	"net"
	"net/http"
	"syscall"

	"github.com/gorilla/websocket"
)

// readBufferSize is a socket's read buffer. Clients send small frames (an input is about 80 bytes); gorilla
// needs room for a control frame (125 bytes) and reuses a hijacked reader only when it is larger than 256 bytes.
// Every byte counts: it is kept for as long as the socket lives.
const readBufferSize = 272

// upgrade upgrades r to a WebSocket whose buffered reader is the returned one, so that the gateway can tell
// whether a read would have to wait for the network (bufio.Reader.Buffered). It also returns the socket's raw
// connection for awaitReadable (nil when the connection has none).
func (g *Gateway) upgrade(w http.ResponseWriter, r *http.Request) (*websocket.Conn, *bufio.Reader, syscall.RawConn, error) {
	hw := &hijacker{ResponseWriter: w}
	ws, err := g.up.Upgrade(hw, r, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	var rc syscall.RawConn
	if sc, ok := ws.NetConn().(syscall.Conn); ok {
		rc, _ = sc.SyscallConn()
	}
	return ws, hw.br, rc, nil
}

// hijacker hands gorilla a buffered reader of our own (the Upgrader's ReadBufferSize is 0, so gorilla uses it
// as the connection's reader) instead of net/http's 4 KB one.
type hijacker struct {
	http.ResponseWriter
	br *bufio.Reader
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return c, brw, err // gorilla refuses a client that sent data before the handshake completed
	}
	h.br = bufio.NewReaderSize(c, readBufferSize)
	return c, bufio.NewReadWriter(h.br, brw.Writer), nil
}
