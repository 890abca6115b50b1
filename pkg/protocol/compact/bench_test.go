package compact_test

import (
	"fmt"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// benchRoom is an arena room of n players of whom moving hold a key, ticked once.
func benchRoom(b *testing.B, n, moving int) *owner {
	o := newOwner(b, arenaGame(b), "lobby", sim.DefaultConfig())
	m := newMover(1)
	for i := range n {
		m.join(o, b, pid(i), fmt.Sprintf("bot-%d", i))
	}
	for i := range moving {
		m.keys(o, b, pid(i), directions[i%len(directions)])
	}
	o.step(b)
	o.enc.Commit()
	return o
}

var benchSizes = []struct{ n, moving int }{{50, 50}, {50, 0}, {1000, 100}, {1000, 1000}}

// BenchmarkOwnerTick is an owner's per-tick work for protocol 2: fill the encoder from the room, write the
// delta, commit. Compare with BenchmarkJSONTick, protocol 1's.
func BenchmarkOwnerTick(b *testing.B) {
	for _, c := range benchSizes {
		b.Run(fmt.Sprintf("players=%d/moving=%d", c.n, c.moving), func(b *testing.B) {
			o := benchRoom(b, c.n, c.moving)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				o.step(b)
				buf = o.enc.AppendDelta(buf[:0])
				o.enc.Commit()
			}
			b.ReportMetric(float64(len(buf)), "bytes/delta")
		})
	}
}

// BenchmarkJSONTick is protocol 1's encoding of the same tick (as owners and relays with protocol 1 sockets
// do).
func BenchmarkJSONTick(b *testing.B) {
	for _, c := range benchSizes {
		b.Run(fmt.Sprintf("players=%d/moving=%d", c.n, c.moving), func(b *testing.B) {
			o := benchRoom(b, c.n, c.moving)
			var tk protocol.Tick
			b.ReportAllocs()
			for b.Loop() {
				o.enc.Current().Tick(&tk)
				if _, err := protocol.Encode(&tk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRelayApply is a relay's per-tick work: apply the owner's delta to the room's state.
func BenchmarkRelayApply(b *testing.B) {
	for _, c := range benchSizes {
		b.Run(fmt.Sprintf("players=%d/moving=%d", c.n, c.moving), func(b *testing.B) {
			o := benchRoom(b, c.n, c.moving)
			var deltas [][]byte
			var dec compact.Decoder
			if err := dec.Apply(o.enc.AppendKeyframe(nil)); err != nil {
				b.Fatal(err)
			}
			var start compact.State
			start.CopyFrom(dec.State())
			for range 100 {
				o.step(b)
				deltas = append(deltas, o.enc.AppendDelta(nil))
				o.enc.Commit()
			}
			key := compact.AppendKeyframe(nil, &start)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i == len(deltas) {
					b.StopTimer()
					if err := dec.Apply(key); err != nil {
						b.Fatal(err)
					}
					i = 0
					b.StartTimer()
				}
				if err := dec.Apply(deltas[i]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkKeyframe is a relay's keyframe of its state, for sockets that need one.
func BenchmarkKeyframe(b *testing.B) {
	for _, c := range benchSizes {
		b.Run(fmt.Sprintf("players=%d", c.n), func(b *testing.B) {
			o := benchRoom(b, c.n, c.moving)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf = compact.AppendKeyframe(buf[:0], o.enc.Current())
			}
			b.ReportMetric(float64(len(buf)), "bytes")
		})
	}
}
