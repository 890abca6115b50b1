package gateway

import (
	"encoding/binary"
	"strconv"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// The reader screens every client frame's header before gorilla reads it, so that gorilla never has a reason to
// write: gorilla answers a protocol error or a frame over its read limit with a close frame written from the
// reading goroutine, which could land in the middle of a tick that the socket's writer is writing as raw bytes.
// Screening makes every such answer go through the socket's own writer (closeWith), after the frame in flight.

// maxDiscard is the largest frame the reader skips, answering too_large and going on; a bigger one closes the
// connection with 1009. It is also the largest read limit a node may be configured with.
const maxDiscard = 1 << 20

// screened says what the screen did with the next frame.
type screened int

const (
	frameForGorilla screened = iota // a well-formed frame within the limit: gorilla reads it
	frameTaken                      // the screen consumed the frame (a pong, or a too-large frame answered too_large)
	frameEnds                       // the connection ends: a close is queued, or the read failed
)

// screen examines the next frame (waiting for its header if need be). It takes pongs (gorilla would handle a
// control frame inside its read of the next message, leaving the reader waiting deep in gorilla until the
// client's next message), skips and answers frames over the read limit, and closes the connection on a
// protocol violation or a fragmented message (browsers send each message as one frame).
func (c *conn) screen() screened {
	h, err := c.br.Peek(2)
	if err != nil {
		c.readFailed(err)
		return frameEnds
	}
	fin, rsv, op := h[0]&0x80 != 0, h[0]&0x70, int(h[0]&0x0f)
	masked, n, hdr := h[1]&0x80 != 0, uint64(h[1]&0x7f), 2
	switch n {
	case 126:
		hdr = 4
	case 127:
		hdr = 10
	}
	if hdr > 2 {
		ext, err := c.br.Peek(hdr)
		if err != nil {
			c.readFailed(err)
			return frameEnds
		}
		if hdr == 4 {
			n = uint64(binary.BigEndian.Uint16(ext[2:]))
		} else {
			n = binary.BigEndian.Uint64(ext[2:])
		}
	}
	control := op >= websocket.CloseMessage
	switch {
	case rsv != 0 || !masked:
		return c.protocolError("reserved bits or unmasked frame")
	case op != websocket.TextMessage && op != websocket.BinaryMessage && !control:
		return c.protocolError("unexpected opcode " + strconv.Itoa(op))
	case control && (!fin || n > 125):
		return c.protocolError("fragmented or oversized control frame")
	case op > websocket.PongMessage:
		return c.protocolError("unknown control opcode " + strconv.Itoa(op))
	case !fin:
		c.g.metrics.clientErrors.WithLabelValues(protocol.CodeTooLarge).Inc()
		c.closeWith(websocket.CloseMessageTooBig, "fragmented messages are not accepted")
		return frameEnds
	case n > maxDiscard:
		c.g.metrics.clientErrors.WithLabelValues(protocol.CodeTooLarge).Inc()
		c.closeWith(websocket.CloseMessageTooBig, "frame too large")
		return frameEnds
	}
	if op == websocket.PongMessage {
		if _, err := c.br.Discard(hdr + 4 + int(n)); err != nil {
			c.readFailed(err)
			return frameEnds
		}
		if err := c.pong(); err != nil {
			return frameEnds
		}
		return frameTaken
	}
	if control || n <= uint64(c.g.cfg.ReadLimit) {
		return frameForGorilla
	}
	if _, err := c.br.Discard(hdr + 4 + int(n)); err != nil {
		c.readFailed(err)
		return frameEnds
	}
	if !c.fail(protocol.CodeTooLarge, "frame of "+strconv.FormatUint(n, 10)+" bytes exceeds the limit of "+
		strconv.FormatInt(c.g.cfg.ReadLimit, 10)+"; it was dropped") {
		return frameEnds
	}
	return frameTaken
}

func (c *conn) protocolError(reason string) screened {
	c.g.metrics.clientErrors.WithLabelValues("protocol_error").Inc()
	c.closeWith(websocket.CloseProtocolError, reason)
	return frameEnds
}
