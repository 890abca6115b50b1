package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/sim"
)

// Events travel between nodes in two forms, on both the input and the live subject:
//
//   - one event, a JSON object (sim.Event): what nodes wrote before batches, and what a node writes with a batch
//     size of 1 (gateway.Config.BatchMax), so that nodes without batches read it during a rolling upgrade;
//   - a batch, a JSON array of such objects, in the order the node received them: one message, one PubAck,
//     for every event of a room a node collected in a short window.
//
// DecodeEvents reads both.

// MaxBatch is the most events a batch may hold: with every event at its largest (about 1.3 KB: a 1 KiB payload,
// a name, the ids) a batch stays well below NATS's default 1 MiB message limit.
const MaxBatch = 256

// EncodeEvent is the JSON encoding of one event, the element of a batch.
func EncodeEvent(ev sim.Event) ([]byte, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return data, nil
}

// EncodeBatch joins encoded events (EncodeEvent) into the data of one batch message. A single event is still a
// batch (an array of one): the form of a message says what wrote it, not how many events it holds.
func EncodeBatch(events [][]byte) []byte {
	n := 2 + len(events)
	for _, e := range events {
		n += len(e)
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, ']')
}

// EventMsg is the durable publish of one player event in the form before batches: the event as JSON on the
// room's input subject, with the message id (room:player:kind:seq or conn) by which INPUTS drops a repeat of
// it, whoever sends it again. The same Data goes to LiveSubject for the fast path.
func EventMsg(room string, ev sim.Event) (*nats.Msg, error) {
	if !ValidRoom(room) {
		return nil, ErrBadRoom
	}
	data, err := EncodeEvent(ev)
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(InputSubject(room))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, room+":"+ev.MsgID())
	return m, nil
}

// BatchMsg is the durable publish of a batch (data from EncodeBatch) on the room's input subject. id names the
// batch uniquely in the cluster (the sending node, its process and a counter): INPUTS drops a repeat of it, so a
// batch whose PubAck was lost is sent again whole, with the same id, and stored once.
func BatchMsg(room, id string, data []byte) (*nats.Msg, error) {
	if !ValidRoom(room) {
		return nil, ErrBadRoom
	}
	m := nats.NewMsg(InputSubject(room))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, room+":batch:"+id)
	return m, nil
}

// DecodeEvent decodes one event's JSON. It checks the encoding only; the room validates the event itself when it
// applies it. Events written by nodes before games had payloads (an input's key bitmask in "keys") decode
// unchanged: that is still the arena's form (sim.Event).
func DecodeEvent(data []byte) (sim.Event, error) {
	var ev sim.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return sim.Event{}, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	return ev, nil
}

// DecodeEvents decodes an event message's data (from the input or the live subject): one event, or a batch. It
// returns the events that decode, in order, and how many did not (an element of a batch that is not an event
// is skipped, its neighbours are kept; a message that is neither form counts as one).
func DecodeEvents(data []byte) (evs []sim.Event, bad int) {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 || data[0] != '[' {
		ev, err := DecodeEvent(data)
		if err != nil {
			return nil, 1
		}
		return []sim.Event{ev}, 0
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, 1
	}
	evs = make([]sim.Event, 0, len(raw))
	for _, r := range raw {
		ev, err := DecodeEvent(r)
		if err != nil {
			bad++
			continue
		}
		evs = append(evs, ev)
	}
	return evs, bad
}

// StoredPosition is where a copy from a StoredSubject sits in INPUTS: its stream sequence, and prev, the sequence
// of the room's message stored before it (0 when INPUTS held none: the room's first, or all before it purged).
// A follower that has seen the room's messages up to prev has missed nothing before this one.
func StoredPosition(h nats.Header) (seq, prev uint64, err error) {
	seq, err = strconv.ParseUint(h.Get(jetstream.SequenceHeader), 10, 64)
	if err != nil || seq == 0 {
		return 0, 0, fmt.Errorf("%w: %s %q", ErrBadStored, jetstream.SequenceHeader, h.Get(jetstream.SequenceHeader))
	}
	prev, err = strconv.ParseUint(h.Get(jetstream.LastSequenceHeader), 10, 64)
	if err != nil || prev >= seq {
		return 0, 0, fmt.Errorf("%w: %s %q", ErrBadStored, jetstream.LastSequenceHeader, h.Get(jetstream.LastSequenceHeader))
	}
	return seq, prev, nil
}
