package wire

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Tick headers: owners stamp every tick with its epoch and seq in NATS headers, so that relays fence a tick
// without decoding its body, which they forward to sockets as it is. HeaderTime is the owner's publish instant
// (Unix microseconds), from which relays measure a tick's delivery latency; a tick without it is relayed all
// the same. HeaderApplied lists the players whose applied ack is above the ack the tick shows (see Applied): a
// node that restores the room from this tick needs it; relays keep it with the last tick.
const (
	HeaderEpoch   = "Tm-Epoch"
	HeaderSeq     = "Tm-Seq"
	HeaderTime    = "Tm-Time"
	HeaderApplied = "Tm-Applied"
	// HeaderKey marks a frames message that carries a keyframe after its delta: the keyframe's byte offset.
	HeaderKey = "Tm-Key"
	// HeaderFrames marks a JSON tick whose owner also publishes it as frames: a relay that speaks protocol 2
	// takes the frames instead.
	HeaderFrames = "Tm-Frames"
)

// MaxCounter is the largest epoch, seq or ack the cluster accepts: 2^53-1, the largest integer a JavaScript
// number holds exactly. A value above it is corrupt or forged, never the result of counting.
const MaxCounter = 1<<53 - 1

// TickMsg is the publish of one tick of room: data is the tick as clients receive it.
func TickMsg(room string, epoch, seq uint64, data []byte) *nats.Msg {
	m := &nats.Msg{Subject: TickSubject(room), Data: data, Header: nats.Header{}}
	m.Header[HeaderEpoch] = []string{strconv.FormatUint(epoch, 10)}
	m.Header[HeaderSeq] = []string{strconv.FormatUint(seq, 10)}
	return m
}

// FramesMsg is the publish of one tick of room as protocol 2 frames: data is a delta or a keyframe, or, when
// keyAt > 0, a delta (data[:keyAt]) followed by the keyframe of the same tick.
func FramesMsg(room string, epoch, seq uint64, data []byte, keyAt int) *nats.Msg {
	m := &nats.Msg{Subject: FramesSubject(room), Data: data, Header: nats.Header{}}
	m.Header[HeaderEpoch] = []string{strconv.FormatUint(epoch, 10)}
	m.Header[HeaderSeq] = []string{strconv.FormatUint(seq, 10)}
	if keyAt > 0 {
		m.Header[HeaderKey] = []string{strconv.Itoa(keyAt)}
	}
	return m
}

// SplitFrames returns the frames of a frames message: its first frame, and the keyframe that follows it (nil
// when there is none). A HeaderKey that does not fall inside the data is ErrBadHeader.
func SplitFrames(h nats.Header, data []byte) (first, key []byte, err error) {
	v := h.Get(HeaderKey)
	if v == "" {
		return data, nil, nil
	}
	at, perr := strconv.Atoi(v)
	if perr != nil || at <= 0 || at >= len(data) {
		return nil, nil, fmt.Errorf("%w: %s=%q for %d bytes", ErrBadHeader, HeaderKey, v, len(data))
	}
	return data[:at:at], data[at:], nil
}

// StampTickTime sets m's HeaderTime to t, the instant of its publish.
func StampTickTime(m *nats.Msg, t time.Time) {
	m.Header[HeaderTime] = []string{strconv.FormatInt(t.UnixMicro(), 10)}
}

// TickTime reads a tick's HeaderTime; ok is false when it has none or it does not parse.
func TickTime(h nats.Header) (t time.Time, ok bool) {
	us, err := strconv.ParseInt(h.Get(HeaderTime), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMicro(us), true
}

// ParseTickHeader reads a tick's epoch and seq from its headers. An epoch of 0 or any value above MaxCounter is
// ErrBadHeader.
func ParseTickHeader(h nats.Header) (epoch, seq uint64, err error) {
	epoch, err1 := strconv.ParseUint(h.Get(HeaderEpoch), 10, 64)
	seq, err2 := strconv.ParseUint(h.Get(HeaderSeq), 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		return 0, 0, fmt.Errorf("%w: %s=%q %s=%q", ErrBadHeader, HeaderEpoch, h.Get(HeaderEpoch), HeaderSeq, h.Get(HeaderSeq))
	case epoch == 0 || epoch > MaxCounter || seq > MaxCounter:
		return 0, 0, fmt.Errorf("%w: epoch %d, seq %d out of range", ErrBadHeader, epoch, seq)
	}
	return epoch, seq, nil
}

// Applied is one entry of HeaderApplied: a player whose events up to Seq are applied by the owner, while the
// tick shows a lower ack (the highest seq both applied and stored in INPUTS).
type Applied struct {
	Player string
	Seq    uint64
}

// EncodeApplied is the value of HeaderApplied: "player=seq" entries separated by commas ("" for none). Player
// ids are [a-z0-9] (game.ValidPlayerID), so neither separator occurs in them.
func EncodeApplied(entries []Applied) string {
	var b strings.Builder
	for i, e := range entries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.Player)
		b.WriteByte('=')
		b.WriteString(strconv.FormatUint(e.Seq, 10))
	}
	return b.String()
}

// ParseApplied reads a HeaderApplied value (nil for ""). An entry without a player, with a seq of 0 or above
// MaxCounter, or a player listed twice is ErrBadHeader: such a tick is not one an owner wrote.
func ParseApplied(v string) (map[string]uint64, error) {
	if v == "" {
		return nil, nil
	}
	out := map[string]uint64{}
	for entry := range strings.SplitSeq(v, ",") {
		id, num, ok := strings.Cut(entry, "=")
		seq, err := strconv.ParseUint(num, 10, 64)
		_, dup := out[id]
		if !ok || id == "" || err != nil || seq == 0 || seq > MaxCounter || dup {
			return nil, fmt.Errorf("%w: %s entry %.64q", ErrBadHeader, HeaderApplied, entry)
		}
		out[id] = seq
	}
	return out, nil
}
