package sim_test

import (
	"fmt"
	"testing"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

func arenaRoom(b *testing.B) *sim.Room {
	g, err := arena.New(arena.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	return sim.New(g, sim.DefaultConfig(), 1)
}

func BenchmarkArenaStep100Players(b *testing.B) {
	r := arenaRoom(b)
	for i := range 100 {
		id := fmt.Sprintf("p%03d", i)
		mustApply(b, r, joinEv(id, 1, id))
		mustApply(b, r, keysEv(id, 2, uint8(i%16)))
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Step()
	}
}

func BenchmarkArenaApplyInput1000Players(b *testing.B) {
	r := arenaRoom(b)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("p%04d", i)
		mustApply(b, r, joinEv(ids[i], 1, ""))
	}
	b.ReportAllocs()
	seq := uint64(1)
	for b.Loop() {
		seq++
		for _, id := range ids[:100] {
			if ok, err := r.Apply(keysEv(id, seq, uint8(seq%16))); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	}
}
