package wire

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Tick bundles: an owner node publishes the frames of all the rooms it owns in bundles, one NATS message for
// the ticks of many rooms, instead of one message per room tick. A NATS message costs its publisher, every
// server on its way and every subscriber a fixed price (headers, routing, delivery) that at thousands of rooms
// exceeds the frames themselves; a bundle pays it once for all the rooms that ticked within the owner's bundle
// window.
//
// A node publishes on BundleSubject(shard, node), the shard being BundleShard(room) of each room in it: relays
// subscribe to each shard apart (AllBundles), and NATS delivers each subscription on its own goroutine, so a
// relay's fan-out runs on BundleShards goroutines instead of one. A room is always in the same shard, and an
// owner publishes each shard in order, so a room's ticks from one owner arrive in order.
//
// A bundle is the version byte BundleVersion followed by entries, each:
//
//	uvarint len(room), room
//	uvarint epoch, uvarint seq
//	uvarint time       the owner's publish instant of the tick, Unix microseconds (0: none)
//	uvarint keyAt      as Tm-Key: the offset of the keyframe after the delta in data (0: none)
//	uvarint len(applied), applied   as Tm-Applied
//	uvarint len(data), data         the room's frames, as on FramesSubject
//
// The fields are those of a frames message's headers and body (FramesMsg), so that a relay takes a bundled tick
// exactly as it takes a tick of its own message.

// BundleVersion is the first byte of every bundle.
const BundleVersion = 1

// BundleShards is the number of bundle subjects of each node. Owners and relays must agree on it: it is part of
// the wire.
const BundleShards = 2

// BundleSubject is where node publishes the bundles of shard.
func BundleSubject(shard int, node string) string {
	return "tickmesh.bundle." + strconv.Itoa(shard) + "." + node
}

// AllBundles is the subject of shard's bundles from every node. Bundles are node-to-node traffic, binary, outside
// game.>: a tool or a viewer watching the game's subjects sees the rooms' own ticks, never a bundle.
func AllBundles(shard int) string { return "tickmesh.bundle." + strconv.Itoa(shard) + ".*" }

// BundleShard is room's shard (FNV-1a of its name).
func BundleShard(room string) int {
	h := uint32(2166136261)
	for i := 0; i < len(room); i++ {
		h ^= uint32(room[i])
		h *= 16777619
	}
	return int(h % BundleShards)
}

// BundledTick is one room's tick in a bundle.
type BundledTick struct {
	Room    string
	Epoch   uint64
	Seq     uint64
	Time    int64  // the owner's publish instant, Unix microseconds; 0 for none
	KeyAt   int    // the offset of the keyframe after the delta in Data; 0 for none
	Applied string // HeaderApplied's value; "" for none
	Data    []byte // the frames
}

// AppendBundledTick appends t as a bundle entry to b; b must start with BundleVersion (NewBundle).
func AppendBundledTick(b []byte, t *BundledTick) []byte {
	b = binary.AppendUvarint(b, uint64(len(t.Room)))
	b = append(b, t.Room...)
	b = binary.AppendUvarint(b, t.Epoch)
	b = binary.AppendUvarint(b, t.Seq)
	b = binary.AppendUvarint(b, uint64(max(t.Time, 0)))
	b = binary.AppendUvarint(b, uint64(t.KeyAt))
	b = binary.AppendUvarint(b, uint64(len(t.Applied)))
	b = append(b, t.Applied...)
	b = binary.AppendUvarint(b, uint64(len(t.Data)))
	return append(b, t.Data...)
}

// NewBundle starts a bundle in b (reusing its storage).
func NewBundle(b []byte) []byte { return append(b[:0], BundleVersion) }

// ReadBundle calls fn with each entry of bundle, in order. The entry's Data aliases bundle; fn must not keep t
// (it is reused) but may keep t.Data as long as bundle is not modified. A bundle that is not one (another
// version, a truncated or malformed entry, a bad room name, an epoch of 0 or a counter above MaxCounter, a keyAt
// outside the data) is ErrBadBundle: fn has then been called for the entries before the bad one.
func ReadBundle(bundle []byte, fn func(t *BundledTick)) error {
	if len(bundle) == 0 || bundle[0] != BundleVersion {
		return fmt.Errorf("%w: version byte %v", ErrBadBundle, bundle[:min(len(bundle), 1)])
	}
	var t BundledTick
	r := bundleReader{b: bundle[1:]}
	for n := 0; len(r.b) > 0; n++ {
		room := r.bytes()
		t.Epoch, t.Seq = r.uvarint(), r.uvarint()
		tm, keyAt := r.uvarint(), r.uvarint()
		applied := r.bytes()
		t.Data = r.bytes()
		switch {
		case r.bad:
			return fmt.Errorf("%w: entry %d is truncated", ErrBadBundle, n)
		case !ValidRoom(string(room)):
			return fmt.Errorf("%w: entry %d: %w %.40q", ErrBadBundle, n, ErrBadRoom, room)
		case t.Epoch == 0 || t.Epoch > MaxCounter || t.Seq > MaxCounter || tm > MaxCounter:
			return fmt.Errorf("%w: entry %d: epoch %d, seq %d, time %d out of range", ErrBadBundle, n, t.Epoch, t.Seq, tm)
		case keyAt >= uint64(len(t.Data)) || len(t.Data) == 0:
			return fmt.Errorf("%w: entry %d: keyframe at %d of %d bytes", ErrBadBundle, n, keyAt, len(t.Data))
		}
		t.Room, t.Time, t.KeyAt, t.Applied = string(room), int64(tm), int(keyAt), string(applied)
		fn(&t)
	}
	return nil
}

// Frames splits t's data as SplitFrames splits a frames message: its first frame, and the keyframe after it
// (nil when there is none).
func (t *BundledTick) Frames() (first, key []byte) {
	if t.KeyAt == 0 {
		return t.Data, nil
	}
	return t.Data[:t.KeyAt:t.KeyAt], t.Data[t.KeyAt:]
}

// bundleReader reads a bundle's fields; bad is set at the first that does not fit, and every read after it
// returns zero.
type bundleReader struct {
	b   []byte
	bad bool
}

func (r *bundleReader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *bundleReader) bytes() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}
