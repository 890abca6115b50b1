package compact_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

var update = flag.Bool("update", false, "rewrite the golden frame streams in "+fixtureDir)

// The golden frame streams, shared with the TypeScript tests (docs/PROTOCOL.md, Fixtures): <game>.frames is what
// a protocol 2 socket receives (a keyframe, deltas, a keyframe after a skipped tick, deltas), each frame preceded
// by its length (4 bytes, big-endian); <game>.jsonl has, line by line, the protocol 1 tick each frame makes.
// Both are made by running the game as an owner does (arenaScript, collectScript), and wide.* from a random world
// of a wider schema (wideScript); -update rewrites them.
func TestGoldenFrameStreams(t *testing.T) {
	for _, c := range []struct {
		name   string
		script func(t testing.TB) (frames [][]byte, ticks [][]byte)
	}{{"arena", arenaScript}, {"collect", collectScript}, {"wide", wideScript}} {
		t.Run(c.name, func(t *testing.T) {
			frames, ticks := c.script(t)
			var stream, lines []byte
			for i, f := range frames {
				stream = compact.AppendFramed(stream, f)
				lines = append(append(lines, ticks[i]...), '\n')
			}
			fp, jp := filepath.Join(fixtureDir, c.name+".frames"), filepath.Join(fixtureDir, c.name+".jsonl")
			if *update {
				if err := os.MkdirAll(fixtureDir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(fp, stream, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(jp, lines, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// The encoder still writes the fixtures' bytes: the format has not moved.
			gotStream, err := os.ReadFile(fp)
			if err != nil {
				t.Fatalf("%v (run with -update to make it)", err)
			}
			if !bytes.Equal(gotStream, stream) {
				t.Fatalf("%s: the encoder's frames are no longer the fixture's", fp)
			}
			// The fixture decodes to the ticks of its .jsonl.
			want := readLines(t, jp)
			var dec compact.Decoder
			r := bytes.NewReader(gotStream)
			kinds := map[byte]int{}
			for i := 0; ; i++ {
				frame, err := compact.ReadFrame(r, nil)
				if err == io.EOF {
					if i != len(want) {
						t.Fatalf("%d frames, %d ticks", i, len(want))
					}
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				kinds[frame[0]]++
				if err := dec.Apply(frame); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if got := jsonOf(t, dec.State()); !bytes.Equal(got, want[i]) {
					t.Fatalf("frame %d decodes to\n%s\nwant\n%s", i, got, want[i])
				}
				if _, err := protocol.DecodeServer(want[i]); err != nil {
					t.Fatalf("line %d is not a protocol 1 tick: %v", i, err)
				}
			}
			if kinds[compact.Keyframe] < 2 || kinds[compact.Delta] < 10 || len(kinds) != 2 {
				t.Fatalf("frames by kind: %v; want keyframes and deltas", kinds)
			}
		})
	}
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out
}

// socket sends what a protocol 2 socket gets: a keyframe first and after a skip, deltas otherwise.
type socket struct {
	frames, ticks [][]byte
	needKey       bool
}

func (s *socket) send(t testing.TB, o *owner, tick []byte, skip bool) {
	t.Helper()
	keyframe := !o.enc.CanDelta() || len(s.frames) == 0 || s.needKey
	s.needKey = skip
	if skip {
		// The socket's queue skipped a tick: it gets the next one as a keyframe.
		o.enc.Commit()
		return
	}
	var f []byte
	if keyframe {
		f = o.enc.AppendKeyframe(nil)
	} else {
		f = o.enc.AppendDelta(nil)
	}
	o.enc.Commit()
	s.frames = append(s.frames, f)
	s.ticks = append(s.ticks, tick)
}

func arenaScript(t testing.TB) ([][]byte, [][]byte) {
	cfg := sim.DefaultConfig()
	cfg.GraceTicks = 8
	o := newOwner(t, arenaGame(t), "lobby", cfg)
	m := newMover(11)
	var s socket
	skipped := false
	for tick := 1; tick <= 60; tick++ {
		switch tick {
		case 1:
			m.join(o, t, pid(1), "alice")
			m.join(o, t, pid(2), "bob")
		case 2:
			m.keys(o, t, pid(1), 8) // right
			m.keys(o, t, pid(2), 1|4)
		case 5:
			m.join(o, t, "guest_7", "Zoë ✓") // an id of another form, a name beyond ASCII
		case 9:
			m.keys(o, t, "guest_7", 2)
		case 14:
			o.apply(t, sim.Event{Kind: sim.KindLeave, Player: pid(2), Conn: 1}) // offline, away since this tick
		case 20:
			m.join(o, t, pid(2), "bobby") // back, on a new connection, with a new name
			m.keys(o, t, pid(1), 0)
		case 30:
			o.apply(t, sim.Event{Kind: sim.KindLeave, Player: "guest_7", Conn: m.seqs["guest_7"] - 1})
		case 41:
			m.join(o, t, pid(3), "carol") // after guest_7's grace: her slot is taken by carol
		case 45:
			m.keys(o, t, pid(3), 2|8)
		}
		js := o.step(t)
		skip := tick == 25 && !skipped
		skipped = skipped || skip
		s.send(t, o, js, skip)
	}
	return s.frames, s.ticks
}

func collectScript(t testing.TB) ([][]byte, [][]byte) {
	o := newOwner(t, collectGame(t), "collect-1", sim.DefaultConfig())
	m := newMover(12)
	var s socket
	for tick := 1; tick <= 120; tick++ {
		switch {
		case tick == 1:
			m.join(o, t, pid(1), "alice")
			m.join(o, t, pid(2), "bob")
		case tick%10 == 2:
			// Walk to the nearest pickup: scores change, pickups are taken and respawn.
			for _, id := range []string{pid(1), pid(2)} {
				x, y := nearestPickup(t, o, id)
				m.target(o, t, id, x, y)
			}
		}
		js := o.step(t)
		s.send(t, o, js, tick == 70)
	}
	return s.frames, s.ticks
}

func nearestPickup(t testing.TB, o *owner, id string) (int, int) {
	var tk struct {
		Players []struct {
			ID   string
			X, Y int
		}
		Pickups []struct{ X, Y int }
	}
	if err := json.Unmarshal(jsonOf(t, o.enc.Current()), &tk); err != nil {
		t.Fatal(err)
	}
	best, bx, by := -1, 0, 0
	for _, p := range tk.Players {
		if p.ID != id {
			continue
		}
		for _, k := range tk.Pickups {
			d := (k.X-p.X)*(k.X-p.X) + (k.Y-p.Y)*(k.Y-p.Y)
			if best < 0 || d < best {
				best, bx, by = d, k.X, k.Y
			}
		}
	}
	if best < 0 {
		panic(fmt.Sprintf("no pickup for %s", id))
	}
	return bx, by
}

// wideScript is a random world of a schema wider than the games' (multi-byte masks, three object kinds, ids not
// of the packed form, values up to ±2^53-1 and deltas between them, names beyond ASCII): the paths of a decoder
// the games do not reach.
func wideScript(t testing.TB) ([][]byte, [][]byte) {
	frames, states := randomFrames(t, 7, 30)
	var ticks [][]byte
	for _, s := range states {
		ticks = append(ticks, jsonOf(t, s))
	}
	return frames, ticks
}
