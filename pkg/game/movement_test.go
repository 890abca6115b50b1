package game_test

import (
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
)

func TestHeldKeysMovePlayerBySpeedPerTick(t *testing.T) {
	cfg := game.DefaultConfig()
	const s0 = 10 // cfg.Speed
	tests := []struct {
		name   string
		keys   game.Keys
		dx, dy int
	}{
		{"no keys", 0, 0, 0},
		{"up", game.KeyUp, 0, -s0},
		{"down", game.KeyDown, 0, s0},
		{"left", game.KeyLeft, -s0, 0},
		{"right", game.KeyRight, s0, 0},
		{"up right", game.KeyUp | game.KeyRight, s0, -s0},
		{"up left", game.KeyUp | game.KeyLeft, -s0, -s0},
		{"down right", game.KeyDown | game.KeyRight, s0, s0},
		{"down left", game.KeyDown | game.KeyLeft, -s0, s0},
		{"up and down cancel", game.KeyUp | game.KeyDown, 0, 0},
		{"left and right cancel", game.KeyLeft | game.KeyRight, 0, 0},
		{"all keys cancel", game.AllKeys, 0, 0},
		{"up down right keeps right", game.KeyUp | game.KeyDown | game.KeyRight, s0, 0},
		{"left right down keeps down", game.KeyLeft | game.KeyRight | game.KeyDown, 0, s0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := game.NewState(1)
			mustApply(t, s, cfg, joinEv("p", 1, "alice"))
			place(t, s, "p", 500, 500)
			mustApply(t, s, cfg, inputEv("p", 2, tt.keys))

			p := player(t, s, "p")
			if p.Keys != tt.keys || p.VX != tt.dx || p.VY != tt.dy {
				t.Fatalf("after input: keys %d v (%d, %d), want keys %d v (%d, %d)", p.Keys, p.VX, p.VY, tt.keys, tt.dx, tt.dy)
			}
			for n := 1; n <= 3; n++ {
				s.Step(cfg)
				p = player(t, s, "p")
				if want := [2]int{500 + n*tt.dx, 500 + n*tt.dy}; [2]int{p.X, p.Y} != want {
					t.Fatalf("after %d steps at (%d, %d), want %v", n, p.X, p.Y, want)
				}
			}
		})
	}
}

func TestReleasingKeysStopsPlayer(t *testing.T) {
	cfg := game.DefaultConfig()
	s := game.NewState(1)
	mustApply(t, s, cfg, joinEv("p", 1, ""))
	place(t, s, "p", 500, 500)
	mustApply(t, s, cfg, inputEv("p", 2, game.KeyRight))
	s.Step(cfg)
	mustApply(t, s, cfg, inputEv("p", 3, 0))
	steps(s, cfg, 5)
	if p := player(t, s, "p"); p.X != 510 || p.Y != 500 || p.VX != 0 || p.VY != 0 {
		t.Fatalf("player at (%d, %d) v (%d, %d), want (510, 500) at rest", p.X, p.Y, p.VX, p.VY)
	}
}

func TestMovementIsClampedAtEveryWall(t *testing.T) {
	cfg := game.DefaultConfig() // 1000 x 1000, speed 10
	tests := []struct {
		name         string
		x, y         int
		keys         game.Keys
		wantX, wantY int
	}{
		{"left wall", 4, 500, game.KeyLeft, 0, 500},
		{"right wall", 996, 500, game.KeyRight, 1000, 500},
		{"top wall", 500, 3, game.KeyUp, 500, 0},
		{"bottom wall", 500, 997, game.KeyDown, 500, 1000},
		{"exactly on left wall", 0, 500, game.KeyLeft, 0, 500},
		{"exactly on bottom wall", 500, 1000, game.KeyDown, 500, 1000},
		{"top left corner", 5, 5, game.KeyUp | game.KeyLeft, 0, 0},
		{"bottom right corner", 995, 995, game.KeyDown | game.KeyRight, 1000, 1000},
		{"slides along top wall", 500, 0, game.KeyUp | game.KeyRight, 530, 0},
		{"slides along right wall", 1000, 500, game.KeyRight | game.KeyDown, 1000, 530},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := game.NewState(7)
			mustApply(t, s, cfg, joinEv("p", 1, ""))
			place(t, s, "p", tt.x, tt.y)
			mustApply(t, s, cfg, inputEv("p", 2, tt.keys))
			steps(s, cfg, 3)
			if p := player(t, s, "p"); p.X != tt.wantX || p.Y != tt.wantY {
				t.Fatalf("after 3 steps at (%d, %d), want (%d, %d)", p.X, p.Y, tt.wantX, tt.wantY)
			}
		})
	}
}

func TestPlayersNeverLeaveTheArena(t *testing.T) {
	cfg := game.DefaultConfig()
	cfg.Width, cfg.Height, cfg.Speed = 30, 20, 7
	s := game.NewState(3)
	keys := []game.Keys{game.KeyUp | game.KeyLeft, game.KeyDown | game.KeyRight, game.KeyUp | game.KeyRight, game.KeyDown | game.KeyLeft}
	for i, id := range []string{"a", "b", "c", "d"} {
		mustApply(t, s, cfg, joinEv(id, 1, ""))
		mustApply(t, s, cfg, inputEv(id, 2, keys[i]))
	}
	for range 20 {
		s.Step(cfg)
		if err := s.Validate(cfg); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][2]int{"a": {0, 0}, "b": {30, 20}, "c": {30, 0}, "d": {0, 20}}
	for id, w := range want {
		if p := player(t, s, id); [2]int{p.X, p.Y} != w {
			t.Errorf("player %s at (%d, %d), want corner %v", id, p.X, p.Y, w)
		}
	}
}

func TestKeysVelocityScalesWithSpeed(t *testing.T) {
	if vx, vy := (game.KeyDown | game.KeyLeft).Velocity(3); vx != -3 || vy != 3 {
		t.Fatalf("Velocity(3) = (%d, %d), want (-3, 3)", vx, vy)
	}
}
