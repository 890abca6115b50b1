package compact_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
)

// keyframeOf writes a keyframe by hand: n players with nf fields each, all zero, the first at slot firstSlot.
func keyframeOf(n, nf, firstSlot int) []byte {
	b := []byte{compact.Keyframe, 1, 1, 1, 1, 'r', 1, 'o', 0, 0}
	b = binary.AppendUvarint(b, uint64(nf))
	for i := range nf {
		name := fmt.Sprintf("f%d", i)
		b = append(append(b, byte(len(name))), name...)
	}
	b = append(b, 0) // no object kinds
	b = binary.AppendUvarint(b, uint64(n))
	for i := range n {
		gap := 0
		if i == 0 {
			gap = firstSlot
		}
		b = binary.AppendUvarint(b, uint64(gap))
		b = append(b, 0x80)
		b = binary.BigEndian.AppendUint64(b, uint64(i))
		b = append(b, 0, 0, 0, 1) // ack, name, conn, online
		b = append(b, make([]byte, nf)...)
	}
	return b
}

// The state a decoder keeps is bounded whatever the frames say: at most MaxSlots player slots and MaxValues
// integers; the encoder refuses to write beyond them too.
func TestTheStateIsBounded(t *testing.T) {
	var dec compact.Decoder
	if err := dec.Apply(keyframeOf(3, 2, 0)); err != nil {
		t.Fatalf("a small hand-made keyframe: %v", err)
	}
	if err := dec.Apply(keyframeOf(1, 2, compact.MaxSlots-1)); err != nil {
		t.Fatalf("the last slot: %v", err)
	}
	if err := dec.Apply(keyframeOf(1, 2, compact.MaxSlots)); !errors.Is(err, compact.ErrMalformed) {
		t.Fatalf("a slot beyond MaxSlots: %v", err)
	}
	n := compact.MaxValues/compact.MaxNames + 1
	if err := dec.Apply(keyframeOf(n, compact.MaxNames, 0)); !errors.Is(err, compact.ErrMalformed) {
		t.Fatalf("%d players of %d fields (over MaxValues): %v", n, compact.MaxNames, err)
	}
	if s := dec.State(); s.Players() != 1 {
		t.Fatalf("a refused keyframe changed the state: %d players", s.Players())
	}

	schema := &compact.Schema{}
	for i := range compact.MaxNames {
		schema.Player = append(schema.Player, fmt.Sprintf("f%d", i))
	}
	var v game.View
	var roster []compact.Roster
	for i := range n {
		id := fmt.Sprintf("p%016x", i)
		roster = append(roster, compact.Roster{ID: id, Online: true})
		v.Players = append(v.Players, game.PlayerView{ID: id, Fields: make([]int64, compact.MaxNames)})
	}
	enc := compact.NewEncoder()
	if err := enc.Fill(compact.Header{Room: "r", Epoch: 1}, schema, roster, &v); !errors.Is(err, compact.ErrTooLarge) {
		t.Fatalf("the encoder filled a state over MaxValues: %v", err)
	}
}
