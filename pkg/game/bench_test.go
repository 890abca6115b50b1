package game_test

import (
	"fmt"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
)

func BenchmarkStep100Players(b *testing.B) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	for i := range 100 {
		id := fmt.Sprintf("p%03d", i)
		mustApply(b, s, cfg, joinEv(id, 1, id))
		mustApply(b, s, cfg, inputEv(id, 2, game.Keys(i%16)))
	}
	b.ReportAllocs()
	for b.Loop() {
		s.Step(cfg)
	}
}

func BenchmarkApplyInput1000Players(b *testing.B) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = fmt.Sprintf("p%04d", i)
		mustApply(b, s, cfg, joinEv(ids[i], 1, ""))
	}
	b.ReportAllocs()
	seq := uint64(1)
	for b.Loop() {
		seq++
		for _, id := range ids[:100] {
			if ok, err := s.Apply(cfg, inputEv(id, seq, game.Keys(seq%16))); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	}
}
