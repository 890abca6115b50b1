// Package gametest is the conformance kit for Tickmesh games: a game author calls Run from a test of their own
// package, and `go test` checks the properties that make Tickmesh's determinism and exactly-once promises hold
// for the game:
//
//   - Info: a valid name, schema, input bound and parameters, the same on every call.
//   - Views: every View conforms to the schema (field counts, ranges, sorted ids, object counts), its JSON size
//     stays within Schema.MaxJSONBytes, a View does not alias the state, and Restore of a View gives a state
//     whose View is the same.
//   - Inputs: the generator's payloads are accepted; payloads that are not one JSON value, the wrong JSON type,
//     one byte over the declared bound, and the author's invalid payloads are refused, by DecodeInput and, as
//     input events, by the framework without changing the room.
//   - Determinism: random event sequences (joins, inputs, leaves, steps, grace expiry, a full room, invalid
//     and stale events) applied twice give identical encodings after every event.
//   - Exactly-once: delivering every event twice, and redelivering events already applied at random later
//     points while the room still remembers their player, changes nothing.
//   - Snapshot and restore: at random points the room is encoded (as a snapshot) and decoded, or rebuilt from
//     its roster and View (as from a relayed tick), and continues exactly as the original.
//   - Restore refuses Views a state could not have written (a missing field, a value out of range, players out
//     of order) and keeps nothing of the View it was given.
//
// The game runs inside the framework's roster (package sim), as a room owner runs it. Scripts are drawn from
// fixed seeds, so a failure is reproducible; its message names the script and the event.
package gametest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// Config tells the kit what it cannot guess about a game.
type Config struct {
	// Input returns a valid input payload (JSON text) for the game, drawn with r. Required.
	Input func(r *rand.Rand) []byte
	// Invalid are payloads the game must refuse, beyond the kit's own (wrong types, out-of-range values,
	// unknown members: what only the game knows).
	Invalid [][]byte
	// Scripts is the number of random event sequences; 0 means 64 (16 with -short).
	Scripts int
	// Room is the framework's rules for the scripts; the zero value means a small, crowded room (3 players at
	// most out of 5, grace 6 ticks, tombstones kept 25 ticks and at most 3) so that short scripts reach a full
	// room, grace expiry and both ways of forgetting tombstones.
	Room sim.Config
}

func (c *Config) defaults() {
	if c.Scripts == 0 {
		c.Scripts = 64
		if testing.Short() {
			c.Scripts = 16
		}
	}
	if c.Room == (sim.Config{}) {
		c.Room = sim.Config{GraceTicks: 6, TombstoneTicks: 25, TombstoneCap: 3, MaxPlayers: 3}
	}
}

// property is one check of the kit.
type property struct {
	name  string
	check func(g game.Game, c *Config) error
}

var properties = []property{
	{"Info", checkInfo},
	{"NewState", checkNew},
	{"Inputs", checkInputs},
	{"Determinism", checkDeterminism},
	{"ExactlyOnce", checkExactlyOnce},
	{"SnapshotRestore", checkSnapshotRestore},
	{"RestoreValidates", checkRestoreValidates},
}

// Run checks every property of g, each as a subtest of t.
func Run(t *testing.T, g game.Game, c Config) {
	t.Helper()
	if c.Input == nil {
		t.Fatal("gametest: Config.Input is required")
	}
	c.defaults()
	if err := c.Room.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range properties {
		t.Run(p.name, func(t *testing.T) {
			if err := p.check(g, &c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Check runs every property of g and returns the first failure (Run without a testing.T).
func Check(g game.Game, c Config) error {
	if c.Input == nil {
		return errors.New("gametest: Config.Input is required")
	}
	c.defaults()
	for _, p := range properties {
		if err := p.check(g, &c); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return nil
}

func checkInfo(g game.Game, _ *Config) error {
	info := g.Info()
	if err := info.Validate(); err != nil {
		return err
	}
	if !reflect.DeepEqual(info, g.Info()) {
		return errors.New("Info changed between two calls")
	}
	return nil
}

// checkView checks v against the schema and the size bound.
func checkView(info *game.Info, v *game.View) error {
	if err := info.Schema.Check(v); err != nil {
		return err
	}
	if n, bound := gameJSONBytes(&info.Schema, v), info.Schema.MaxJSONBytes(len(v.Players)); n > bound {
		return fmt.Errorf("the view's JSON takes %d bytes, above the schema's bound of %d for %d players", n, bound, len(v.Players))
	}
	return nil
}

// gameJSONBytes is the size of the game's members in a tick or snapshot (see Schema.MaxJSONBytes).
func gameJSONBytes(s *game.Schema, v *game.View) int {
	n := 0
	member := func(name string, val int64) int { return len(`,"":`) + len(name) + len(strconv.FormatInt(val, 10)) }
	for i, f := range s.Globals {
		n += member(f.Name, v.Globals[i])
	}
	for _, p := range v.Players {
		for i, f := range s.Player {
			n += member(f.Name, p.Fields[i])
		}
	}
	for k, kind := range s.Objects {
		n += len(`,"":[]`) + len(kind.Name)
		for i, o := range v.Objects[k] {
			if i > 0 {
				n++
			}
			n += len(`{"id":}`) + len(strconv.FormatInt(o.ID, 10))
			for j, f := range kind.Fields {
				n += member(f.Name, o.Fields[j])
			}
		}
	}
	return n
}

func checkNew(g game.Game, _ *Config) error {
	info := g.Info()
	for _, seed := range []uint64{0, 1, 0xdeadbeef, 1<<64 - 1} {
		s := g.New(seed)
		var v game.View
		s.View(&v)
		if err := checkView(&info, &v); err != nil {
			return fmt.Errorf("New(%d): %w", seed, err)
		}
		if len(v.Players) != 0 {
			return fmt.Errorf("New(%d) has %d players", seed, len(v.Players))
		}
		var w game.View
		g.New(seed).View(&w)
		if !v.Equal(&w) {
			return fmt.Errorf("two New(%d) differ", seed)
		}
	}
	return nil
}

// kitInvalid are payloads no game accepts: not one JSON value, or a JSON type no input is.
var kitInvalid = [][]byte{nil, []byte(""), []byte(" "), []byte("{"), []byte("}"), []byte(`{"a":1} {}`), []byte("nul"),
	[]byte("null"), []byte(`"text"`), []byte("1e999"), []byte("\xff"), []byte(`{"\ud800":1}x`)}

func checkInputs(g game.Game, c *Config) error {
	info := g.Info()
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		p := c.Input(r)
		if len(p) > info.MaxInputBytes {
			return fmt.Errorf("the generator's payload %q is above the game's bound of %d bytes", p, info.MaxInputBytes)
		}
		if _, err := g.DecodeInput(p); err != nil {
			return fmt.Errorf("the generator's payload %q is refused: %v", p, err)
		}
		// One byte over the bound (white space after a valid payload) is refused.
		over := append(bytes.Clone(p), bytes.Repeat([]byte(" "), info.MaxInputBytes+1-len(p))...)
		if _, err := g.DecodeInput(over); err == nil {
			return fmt.Errorf("a payload of %d bytes (bound %d) is accepted: %q", len(over), info.MaxInputBytes, over)
		}
	}
	invalid := append(append([][]byte{}, kitInvalid...), c.Invalid...)
	for _, p := range invalid {
		if _, err := g.DecodeInput(p); err == nil {
			return fmt.Errorf("the invalid payload %q is accepted", p)
		}
	}
	// As events, through the framework: refused without changing the room.
	room := sim.New(g, c.Room, 7)
	if _, err := room.Apply(sim.Event{Kind: sim.KindJoin, Player: "p0", Seq: 1}); err != nil {
		return fmt.Errorf("join: %v", err)
	}
	room.Step()
	before := room.AppendJSON(nil)
	for _, p := range invalid {
		if len(p) == 0 {
			continue // an event without data is a key bitmask (LegacyKeys games) or refused: covered by sim
		}
		ev := sim.Event{Kind: sim.KindInput, Player: "p0", Seq: 2, Data: p}
		if ok, err := room.Apply(ev); ok || !errors.Is(err, sim.ErrInvalidEvent) {
			return fmt.Errorf("the input event with payload %q: applied %v, error %v; want ErrInvalidEvent", p, ok, err)
		}
		if after := room.AppendJSON(nil); !bytes.Equal(after, before) {
			return fmt.Errorf("the refused payload %q changed the room:\n%s\n%s", p, before, after)
		}
	}
	return nil
}

func checkDeterminism(g game.Game, c *Config) error {
	for i := range c.Scripts {
		sc := newScript(g, c, uint64(i))
		a, err := sc.run(deliverOnce, nil)
		if err != nil {
			return err
		}
		b, err := sc.run(deliverOnce, nil)
		if err != nil {
			return err
		}
		if err := sameRuns(sc, a, b, "a second run"); err != nil {
			return err
		}
	}
	return nil
}

func checkExactlyOnce(g game.Game, c *Config) error {
	for i := range c.Scripts {
		sc := newScript(g, c, uint64(i))
		a, err := sc.run(deliverOnce, nil)
		if err != nil {
			return err
		}
		for _, m := range []mode{deliverTwice, deliverReplay} {
			b, err := sc.run(m, nil)
			if err != nil {
				return err
			}
			if err := sameRuns(sc, a, b, m.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkSnapshotRestore(g game.Game, c *Config) error {
	for i := range c.Scripts {
		sc := newScript(g, c, uint64(i))
		a, err := sc.run(deliverOnce, nil)
		if err != nil {
			return err
		}
		r := rand.New(rand.NewPCG(uint64(i), 99))
		for range 3 {
			cut := r.IntN(len(sc.ops) + 1)
			for _, how := range []restoreHow{fromSnapshot, fromTick} {
				b, err := sc.run(deliverOnce, &restoreAt{op: cut, how: how})
				if err != nil {
					return err
				}
				if err := sameRuns(sc, a, b, fmt.Sprintf("a restore %s after op %d", how, cut)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func sameRuns(sc *script, a, b *result, what string) error {
	for i := range min(len(a.trace), len(b.trace)) {
		if a.trace[i] != b.trace[i] {
			return fmt.Errorf("script %d: with %s the room differs after op %d (%s):\n%s\n%s", sc.index, what, i, sc.ops[i],
				a.states[i], b.states[i])
		}
	}
	if a.final != b.final || a.applied != b.applied {
		return fmt.Errorf("script %d: with %s the room ends differently (%d events applied, then %d):\n%s\n%s", sc.index, what,
			a.applied, b.applied, a.final, b.final)
	}
	return nil
}

func checkRestoreValidates(g game.Game, c *Config) error {
	info := g.Info()
	// A state with players (and whatever objects the game has by then).
	var v *game.View
	var seed uint64
	var tick int64
	for i := range c.Scripts {
		sc := newScript(g, c, uint64(i))
		room := sim.New(g, c.Room, sc.seed)
		for _, o := range sc.ops {
			o.apply(room)
		}
		var w game.View
		room.View(&w)
		if len(w.Players) > 0 {
			v, seed, tick = &w, sc.seed, room.Tick()
			break
		}
	}
	if v == nil {
		return errors.New("no script ends with a player in the room")
	}
	st, err := g.Restore(seed, tick, v)
	if err != nil {
		return fmt.Errorf("Restore of a state's own view: %v", err)
	}
	var got game.View
	st.View(&got)
	if !got.Equal(v) {
		return fmt.Errorf("Restore then View differs from the view restored:\n%+v\n%+v", v, &got)
	}
	// Nothing of the View is kept: changing it afterwards changes nothing.
	scribble := v.Clone()
	st2, _ := g.Restore(seed, tick, scribble)
	for i := range scribble.Globals {
		scribble.Globals[i] ^= 1
	}
	for _, p := range scribble.Players {
		for i := range p.Fields {
			p.Fields[i] ^= 1
		}
	}
	var again game.View
	st2.View(&again)
	if !again.Equal(v) {
		return errors.New("Restore keeps the View it was given: changing the View changed the state")
	}
	// Nor does the state share memory with a View it wrote.
	again.Players[0].Fields[0] ^= 1
	var third game.View
	st2.View(&third)
	if !third.Equal(v) {
		return errors.New("View aliases the state: changing a View changed the state")
	}
	// Views no state writes are refused.
	bad := map[string]func(w *game.View){
		"a player field missing": func(w *game.View) { w.Players[0].Fields = w.Players[0].Fields[:len(w.Players[0].Fields)-1] },
		"a player field out of range": func(w *game.View) {
			if len(info.Schema.Player) > 0 {
				w.Players[0].Fields[0] = info.Schema.Player[0].Max + 1
			} else {
				w.Players[0].Fields = append(w.Players[0].Fields, 0)
			}
		},
		"a global too many":            func(w *game.View) { w.Globals = append(w.Globals, 0) },
		"a player id twice":            func(w *game.View) { w.Players = append(w.Players, w.Players[len(w.Players)-1]) },
		"an object list too many":      func(w *game.View) { w.Objects = append(w.Objects, nil) },
		"a player with a malformed id": func(w *game.View) { w.Players[0].ID = "no spaces" },
	}
	if len(info.Schema.Player) == 0 {
		delete(bad, "a player field missing")
	}
	if len(info.Schema.Globals) > 0 {
		bad["a global missing"] = func(w *game.View) { w.Globals = w.Globals[:len(w.Globals)-1] }
	}
	for what, mutate := range bad {
		w := v.Clone()
		mutate(w)
		if _, err := g.Restore(seed, tick, w); err == nil {
			return fmt.Errorf("Restore accepts a view with %s", what)
		}
	}
	return nil
}

// traceHash is the hash of a room's encoding after one op.
type traceHash = [32]byte

func hashOf(b []byte) traceHash { return sha256.Sum256(b) }
