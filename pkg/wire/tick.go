package wire

import (
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// Tick headers: owners stamp every tick with its epoch and seq in NATS headers, so that relays fence a tick
// without decoding its body, which they forward to sockets as it is. HeaderTime is the owner's publish instant
// (Unix microseconds), from which relays measure a tick's delivery latency; a tick without it is relayed all
// the same.
const (
	HeaderEpoch = "Tm-Epoch"
	HeaderSeq   = "Tm-Seq"
	HeaderTime  = "Tm-Time"
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
