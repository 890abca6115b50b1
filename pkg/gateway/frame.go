package gateway

import "encoding/binary"

// textFrame is data as one unmasked, final WebSocket text frame (RFC 6455 §5.2), as a server sends it when no
// extension is negotiated (the Upgrader offers none). A tick is framed once and the same bytes are written to
// every socket of its room, straight to the socket (writeNow) or by the socket's flush.
func textFrame(data []byte) []byte { return wsFrame(0x80|0x1, data) }

// binaryFrame is data as one unmasked, final WebSocket binary frame: a protocol 2 tick.
func binaryFrame(data []byte) []byte { return wsFrame(0x80|0x2, data) }

func wsFrame(first byte, data []byte) []byte {
	n := len(data)
	var f []byte
	switch {
	case n <= 125:
		f = make([]byte, 2, 2+n)
		f[1] = byte(n)
	case n <= 0xffff:
		f = make([]byte, 4, 4+n)
		f[1] = 126
		binary.BigEndian.PutUint16(f[2:], uint16(n))
	default:
		f = make([]byte, 10, 10+n)
		f[1] = 127
		binary.BigEndian.PutUint64(f[2:], uint64(n))
	}
	f[0] = first
	return append(f, data...)
}
