package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// arenaTick is the tick struct of protocol 1 before games: the arena's members, as encoding/json wrote them.
type arenaTick struct {
	Room    string            `json:"room"`
	Epoch   uint64            `json:"epoch"`
	Seq     uint64            `json:"seq"`
	Owner   string            `json:"owner"`
	Time    int64             `json:"time"`
	Width   float64           `json:"width"`
	Height  float64           `json:"height"`
	Players []arenaTickPlayer `json:"players"`
}

type arenaTickPlayer struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	X      float64 `json:"x"`
	Y      float64 `json:"y"`
	VX     float64 `json:"vx"`
	VY     float64 `json:"vy"`
	Keys   uint8   `json:"keys"`
	Ack    uint64  `json:"ack"`
	Conn   uint64  `json:"conn"`
	Online bool    `json:"online"`
	Away   uint64  `json:"away,omitempty"`
}

// arenaSchema names the arena's members (games/arena declares the same; its tests check it).
var arenaSchema = &game.Schema{
	Globals: []game.Field{wideField("width"), wideField("height")},
	Player:  []game.Field{wideField("x"), wideField("y"), wideField("vx"), wideField("vy"), wideField("keys")},
}

// generic is the same tick as a Tick with the arena's schema.
func (a *arenaTick) generic() *Tick {
	t := &Tick{Room: a.Room, Epoch: a.Epoch, Seq: a.Seq, Owner: a.Owner, Time: a.Time, Schema: arenaSchema,
		Globals: []float64{a.Width, a.Height}, Objects: [][]TickObject{}}
	for _, p := range a.Players {
		t.Players = append(t.Players, TickPlayer{ID: p.ID, Name: p.Name, Fields: []float64{p.X, p.Y, p.VX, p.VY, float64(p.Keys)},
			Ack: p.Ack, Conn: p.Conn, Online: p.Online, Away: p.Away})
	}
	return t
}

// reflectTick is how Encode wrote ticks before appendTick: encoding/json, HTML escaping off.
func reflectTick(t *arenaTick) ([]byte, error) {
	if t.Players == nil {
		c := *t
		c.Players = []arenaTickPlayer{}
		t = &c
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Type string `json:"type"`
		*arenaTick
	}{TypeTick, t}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkSameAsReflect fails when Encode of the generic tick and encoding/json of the arena's tick struct disagree:
// on the bytes, or on whether it encodes.
func checkSameAsReflect(t *testing.T, tk *arenaTick) {
	t.Helper()
	want, werr := reflectTick(tk)
	got, gerr := Encode(tk.generic())
	if (werr != nil) != (gerr != nil) {
		t.Fatalf("encoding/json error %v, Encode error %v, for %+v", werr, gerr, tk)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Encode differs from encoding/json:\n got %s\nwant %s", got, want)
	}
}

func TestTickEncoderWritesWhatEncodingJSONWrites(t *testing.T) {
	strs := []string{"", "lobby", "n1", "p3f9a1c0d2b4e6f81", "alice", `quo"te`, `back\slash`, "tab\there", "new\nline",
		"\x00\x1f\x7f", "<b>&amp;</b>", "héllo wörld", "日本語", "emoji 🎮", "\u2028\u2029", "bad \xff utf8", "\xe2\x82"}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 12.345, 1000, 1e-6, 9.99e-7, 1e-7, 1.5e-10, 1e20,
		1e21, 1.2345e22, -3.3e-9, math.MaxFloat64, math.SmallestNonzeroFloat64, 123456789.123456789}
	for _, s := range strs {
		for _, f := range floats {
			checkSameAsReflect(t, &arenaTick{Room: s, Epoch: 1, Seq: 2, Owner: s, Time: -5, Width: f, Height: -f,
				Players: []arenaTickPlayer{{ID: s, Name: s, X: f, Y: -f, VX: f / 3, VY: f * 7, Keys: 255, Ack: math.MaxUint64,
					Conn: 1, Online: true}, {ID: "b", Away: 9}}})
		}
	}
	checkSameAsReflect(t, &arenaTick{})                             // no players: "players":[]
	checkSameAsReflect(t, &arenaTick{Players: []arenaTickPlayer{}}) // the same
	checkSameAsReflect(t, &arenaTick{Width: math.NaN()})            // refused by both
	checkSameAsReflect(t, &arenaTick{Players: []arenaTickPlayer{{X: math.Inf(-1)}}})

	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		tk := &arenaTick{Room: strs[rng.IntN(len(strs))], Epoch: rng.Uint64(), Seq: rng.Uint64(), Owner: strs[rng.IntN(len(strs))],
			Time: rng.Int64(), Width: rng.Float64() * 2000, Height: rng.NormFloat64() * 1e12}
		for range rng.IntN(60) {
			tk.Players = append(tk.Players, arenaTickPlayer{ID: strs[rng.IntN(len(strs))], Name: strs[rng.IntN(len(strs))],
				X: rng.Float64() * 1000, Y: math.Ldexp(rng.Float64(), rng.IntN(160)-80), VX: rng.NormFloat64(), VY: -rng.ExpFloat64(),
				Keys: uint8(rng.IntN(16)), Ack: rng.Uint64N(1 << 53), Conn: rng.Uint64N(100), Online: rng.IntN(2) == 0,
				Away: rng.Uint64N(3)})
		}
		checkSameAsReflect(t, tk)
	}
}

func FuzzTickEncoder(f *testing.F) {
	f.Add("lobby", "alice", 12.5, 1e-7, uint64(3))
	f.Add(`"<>&\`, "\xff\u2028", 1e21, -0.0, uint64(0))
	f.Fuzz(func(t *testing.T, room, name string, x, y float64, away uint64) {
		checkSameAsReflect(t, &arenaTick{Room: room, Owner: name, Width: x, Height: y,
			Players: []arenaTickPlayer{{ID: room, Name: name, X: x, Y: y, VX: y, VY: x, Away: away}}})
	})
}
