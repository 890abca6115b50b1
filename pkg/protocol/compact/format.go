package compact

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// Frame kinds: the first byte of every frame. Neither is a byte a JSON text (or any UTF-8 text) starts with, so
// a reader tells a protocol 2 frame from a protocol 1 tick by its first byte.
const (
	Keyframe byte = 0xB1 // the whole state
	Delta    byte = 0xB2 // what changed since a base tick of the same epoch
)

// Limits a decoder enforces before it allocates anything. They bound the state a relay keeps per room and what a
// malformed frame can make a decoder do.
const (
	// MaxSlots bounds player slots: a slot is in [0, MaxSlots).
	MaxSlots = 1 << 16
	// MaxObjects bounds the objects of one kind (game.MaxObjects).
	MaxObjects = game.MaxObjects
	// MaxNames bounds the fields of each scope (globals, a player, an object kind) and the object kinds.
	MaxNames = 256
	// MaxString bounds a string's bytes (room, owner, game and field names, player names).
	MaxString = 255
	// MaxValues bounds the integers of one state: globals, every player's fields and every object's id and
	// fields together.
	MaxValues = 1 << 21
	// maxVarint is the longest varint: 8 bytes carry 56 bits, more than any value (±2^53) or delta (±2^54,
	// zigzagged to 2^55) needs, and few enough for a JavaScript decoder to read exactly.
	maxVarint = 8
)

// Errors of decoding. Every error a Decoder returns wraps one of them.
var (
	// ErrMalformed: the frame is not a valid frame (truncated, trailing bytes, a value out of range, a slot or
	// object that does not exist, a limit exceeded).
	ErrMalformed = errors.New("compact: malformed frame")
	// ErrBase: a valid delta whose base is not the decoder's state: a tick in between was missed, or the decoder
	// has no state yet. A keyframe resynchronises.
	ErrBase = errors.New("compact: delta does not apply to this state")
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}

// zigzag maps a signed integer to an unsigned one with small magnitudes small: 0, -1, 1, -2 → 0, 1, 2, 3.
func zigzag(d int64) uint64 { return uint64(d<<1) ^ uint64(d>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendZigzag(b []byte, v int64) []byte { return binary.AppendUvarint(b, zigzag(v)) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendID appends a player id: the framework's ids ("p" and 16 lowercase hex digits, session.NewPlayerID) as
// the tag 0x80 and the 8 bytes the digits spell; any other id as its length (1-64) and bytes.
func appendID(b []byte, id string) []byte {
	if packed, ok := packID(id); ok {
		b = append(b, 0x80)
		return binary.BigEndian.AppendUint64(b, packed)
	}
	b = append(b, byte(len(id)))
	return append(b, id...)
}

func packID(id string) (uint64, bool) {
	if len(id) != 17 || id[0] != 'p' {
		return 0, false
	}
	var v uint64
	for i := 1; i < 17; i++ {
		c := id[i]
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

const hexDigits = "0123456789abcdef"

func unpackID(v uint64) string {
	var b [17]byte
	b[0] = 'p'
	for i := 16; i >= 1; i-- {
		b[i] = hexDigits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// reader reads a frame; the first failure sticks (err) and every later read returns zero values.
type reader struct {
	b   []byte
	i   int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = malformed(format, args...)
	}
}

func (r *reader) left() int { return len(r.b) - r.i }

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if r.i >= len(r.b) {
		r.fail("truncated at byte %d", r.i)
		return 0
	}
	c := r.b[r.i]
	r.i++
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	var v uint64
	for k := 0; k < maxVarint; k++ {
		if r.i >= len(r.b) {
			r.fail("truncated at byte %d", r.i)
			return 0
		}
		c := r.b[r.i]
		r.i++
		v |= uint64(c&0x7f) << (7 * k)
		if c < 0x80 {
			if c == 0 && k > 0 {
				r.fail("varint at byte %d not minimal", r.i-1)
				return 0
			}
			return v
		}
	}
	r.fail("varint at byte %d longer than %d bytes", r.i, maxVarint)
	return 0
}

// count reads a count of items of at least minBytes bytes each, at most max: a count the rest of the frame
// cannot hold is refused before anything is allocated for it.
func (r *reader) count(what string, max, minBytes int) int {
	n := r.uvarint()
	if r.err != nil {
		return 0
	}
	if n > uint64(max) || n*uint64(minBytes) > uint64(r.left()) {
		r.fail("%s: count %d over the limit or the frame", what, n)
		return 0
	}
	return int(n)
}

// counter reads a non-negative integer of at most game.MaxValue (epochs, seqs, acks, times).
func (r *reader) counter(what string) uint64 {
	v := r.uvarint()
	if v > game.MaxValue {
		r.fail("%s %d over 2^53-1", what, v)
		return 0
	}
	return v
}

func (r *reader) zigzag() int64 { return unzigzag(r.uvarint()) }

// value reads a zigzagged integer of magnitude at most game.MaxValue.
func (r *reader) value(what string) int64 {
	v := r.zigzag()
	if v < -game.MaxValue || v > game.MaxValue {
		r.fail("%s %d out of ±2^53-1", what, v)
		return 0
	}
	return v
}

// plus returns old+delta for a delta read from the frame, refusing a result beyond ±game.MaxValue.
func (r *reader) plus(what string, old int64) int64 {
	d := r.zigzag()
	if r.err != nil {
		return old
	}
	if d < -2*game.MaxValue || d > 2*game.MaxValue {
		r.fail("%s: delta %d out of range", what, d)
		return old
	}
	v := old + d
	if v < -game.MaxValue || v > game.MaxValue {
		r.fail("%s %d out of ±2^53-1", what, v)
		return old
	}
	return v
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > r.left() {
		r.fail("truncated at byte %d", r.i)
		return nil
	}
	b := r.b[r.i : r.i+n]
	r.i += n
	return b
}

func (r *reader) str(what string) string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > MaxString {
		r.fail("%s: %d bytes, at most %d", what, n, MaxString)
		return ""
	}
	b := r.bytes(int(n))
	if r.err == nil && !utf8.Valid(b) {
		r.fail("%s: not UTF-8", what)
		return ""
	}
	return string(b)
}

// name reads a field or object kind name: [a-z][a-z0-9_]{0,31}, the rule of game.Schema.
func (r *reader) name(what string) string {
	s := r.str(what)
	if r.err == nil && !game.ValidFieldName(s) {
		r.fail("%s %q: want [a-z][a-z0-9_]{0,31}", what, s)
	}
	return s
}

func (r *reader) id() string {
	tag := r.byte()
	if r.err != nil {
		return ""
	}
	if tag == 0x80 {
		b := r.bytes(8)
		if r.err != nil {
			return ""
		}
		return unpackID(binary.BigEndian.Uint64(b))
	}
	if tag == 0 || tag > game.MaxPlayerIDLen {
		r.fail("player id tag %#x", tag)
		return ""
	}
	id := string(r.bytes(int(tag)))
	if r.err == nil && !game.ValidPlayerID(id) {
		r.fail("player id %q", id)
	}
	return id
}

// mask reads a bit mask of n bits (ceil(n/8) bytes, bit i of the mask in byte i/8, bit i%8); bits at and above
// n must be zero.
func (r *reader) mask(n int, into []byte) []byte {
	nb := (n + 7) / 8
	b := r.bytes(nb)
	if r.err != nil {
		return into[:0]
	}
	if n%8 != 0 && b[nb-1]>>(n%8) != 0 {
		r.fail("mask has bits beyond its %d fields", n)
	}
	return append(into[:0], b...)
}

func bit(m []byte, i int) bool { return m[i>>3]&(1<<(i&7)) != 0 }
