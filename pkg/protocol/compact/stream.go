package compact

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// MaxFrame bounds a frame in a stream: the largest keyframe the limits allow is far smaller.
const MaxFrame = 16 << 20

// ErrFrameTooLarge: a stream announced a frame over MaxFrame.
var ErrFrameTooLarge = errors.New("compact: frame too large")

// A stream of frames, as tools read and write them (cmd/tickdump, the golden fixtures): each frame preceded by
// its length as a 4-byte big-endian integer.

// AppendFramed appends frame to b, preceded by its length.
func AppendFramed(b, frame []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(frame)))
	return append(b, frame...)
}

// ReadFrame reads the next frame of a stream into buf (grown as needed) and returns it. At the end of the stream
// it returns io.EOF; a stream cut inside a frame is io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, buf []byte) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > MaxFrame {
		return nil, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, size)
	}
	if cap(buf) < int(size) {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}
