package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// reflectTick is how Encode wrote ticks before appendTick: encoding/json, HTML escaping off.
func reflectTick(t *Tick) ([]byte, error) {
	if t.Players == nil {
		c := *t
		c.Players = []TickPlayer{}
		t = &c
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(struct {
		Type string `json:"type"`
		*Tick
	}{TypeTick, t}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkSameAsReflect fails when Encode and encoding/json disagree on t: on the bytes, or on whether it encodes.
func checkSameAsReflect(t *testing.T, tk *Tick) {
	t.Helper()
	want, werr := reflectTick(tk)
	got, gerr := Encode(tk)
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
			checkSameAsReflect(t, &Tick{Room: s, Epoch: 1, Seq: 2, Owner: s, Time: -5, Width: f, Height: -f,
				Players: []TickPlayer{{ID: s, Name: s, X: f, Y: -f, VX: f / 3, VY: f * 7, Keys: 255, Ack: math.MaxUint64,
					Conn: 1, Online: true}, {ID: "b", Away: 9}}})
		}
	}
	checkSameAsReflect(t, &Tick{})                        // no players: "players":[]
	checkSameAsReflect(t, &Tick{Players: []TickPlayer{}}) // the same
	checkSameAsReflect(t, &Tick{Width: math.NaN()})       // refused by both
	checkSameAsReflect(t, &Tick{Players: []TickPlayer{{X: math.Inf(-1)}}})

	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		tk := &Tick{Room: strs[rng.IntN(len(strs))], Epoch: rng.Uint64(), Seq: rng.Uint64(), Owner: strs[rng.IntN(len(strs))],
			Time: rng.Int64(), Width: rng.Float64() * 2000, Height: rng.NormFloat64() * 1e12}
		for range rng.IntN(60) {
			tk.Players = append(tk.Players, TickPlayer{ID: strs[rng.IntN(len(strs))], Name: strs[rng.IntN(len(strs))],
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
		checkSameAsReflect(t, &Tick{Room: room, Owner: name, Width: x, Height: y,
			Players: []TickPlayer{{ID: room, Name: name, X: x, Y: y, VX: y, VY: x, Away: away}}})
	})
}
