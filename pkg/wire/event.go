package wire

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/sim"
)

// EventMsg is the durable publish of a player event: the event as JSON on the room's input subject, with the
// message id (room:player:kind:seq or conn) by which INPUTS drops a repeat of it, whoever sends it again. The
// same Data goes to LiveSubject for the fast path.
func EventMsg(room string, ev sim.Event) (*nats.Msg, error) {
	if !ValidRoom(room) {
		return nil, ErrBadRoom
	}
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	m := nats.NewMsg(InputSubject(room))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, room+":"+ev.MsgID())
	return m, nil
}

// DecodeEvent decodes an event message's data (from the input or the live subject). It checks the encoding
// only; the room validates the event itself when it applies it. Events written by nodes before games had
// payloads (an input's key bitmask in "keys") decode unchanged: that is still the arena's form (sim.Event).
func DecodeEvent(data []byte) (sim.Event, error) {
	var ev sim.Event
	if err := json.Unmarshal(data, &ev); err != nil {
		return sim.Event{}, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	return ev, nil
}
