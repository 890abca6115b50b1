package protocol

import (
	"os"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/game"
)

func decodeTickFixture(t *testing.T, name string) *Tick {
	t.Helper()
	data, err := os.ReadFile("testdata/fixtures/server/" + name)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := DecodeServer(data)
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*Tick)
}

func names(fs []game.Field) string {
	var s []string
	for _, f := range fs {
		s = append(s, f.Name)
	}
	return strings.Join(s, " ")
}

func TestDecodedTicksNameTheGamesMembers(t *testing.T) {
	a := decodeTickFixture(t, "tick.json")
	if names(a.Schema.Globals) != "width height" || names(a.Schema.Player) != "x y vx vy keys" || len(a.Objects) != 0 {
		t.Fatalf("arena tick schema %+v", a.Schema)
	}
	if x, ok := a.Field(&a.Players[1], "x"); !ok || x != 512.25 {
		t.Fatalf("bob's x %v %v", x, ok)
	}
	if w, ok := a.Global("width"); !ok || w != 1000 {
		t.Fatalf("width %v %v", w, ok)
	}
	c := decodeTickFixture(t, "tick_collect.json")
	if names(c.Schema.Globals) != "width height round ends" || names(c.Schema.Player) != "x y tx ty score last" {
		t.Fatalf("collect tick schema %+v", c.Schema)
	}
	pickups, ok := c.ObjectsOf("pickups")
	if !ok || len(pickups) != 12 || names(c.Schema.Objects[0].Fields) != "x y value" {
		t.Fatalf("pickups %+v %v", pickups, ok)
	}
}

func TestTickViewMatchesMembersByName(t *testing.T) {
	c := decodeTickFixture(t, "tick_collect.json")
	s := &game.Schema{
		Globals: []game.Field{{Name: "ends"}, {Name: "round"}, {Name: "width"}, {Name: "height"}},
		Player:  []game.Field{{Name: "score"}, {Name: "last"}, {Name: "x"}, {Name: "y"}, {Name: "tx"}, {Name: "ty"}},
		Objects: []game.ObjectKind{{Name: "pickups", Fields: []game.Field{{Name: "value"}, {Name: "x"}, {Name: "y"}}}},
	}
	v, err := c.View(s)
	if err != nil {
		t.Fatal(err)
	}
	if v.Globals[0] != 1200 || v.Players[0].Fields[0] != 3 || v.Objects[0][0].Fields[0] != 3 || v.Objects[0][11].ID != 1164 {
		t.Fatalf("view %+v", v)
	}
	// Another game's schema, or a non-integer value, is refused.
	if _, err := c.View(arenaSchema); err == nil {
		t.Fatal("a collect tick read as an arena")
	}
	a := decodeTickFixture(t, "tick.json")
	if _, err := a.View(arenaSchema); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Fatalf("x 512.25 read as an integer: %v", err)
	}
	// An empty room has no player fields to compare.
	e := decodeTickFixture(t, "tick_empty.json")
	if v, err := e.View(arenaSchema); err != nil || v.Globals[1] != 1000 {
		t.Fatalf("empty arena: %+v %v", v, err)
	}
}

func TestTickDecodingIsLenientButConsistent(t *testing.T) {
	for _, frame := range []string{
		`{"type":"tick","room":"r","epoch":1,"seq":2,"owner":"n","time":3,"players":[],"note":"hi","flags":[1,2],"extra":{"a":1}}`,
		`{"type":"tick","room":"r","epoch":1,"seq":2,"players":[{"id":"a","x":1,"ack":1,"conn":1,"online":true,"tag":"t"}]}`,
	} {
		msg, err := DecodeServer([]byte(frame))
		if err != nil {
			t.Fatalf("%s: %v", frame, err)
		}
		tk := msg.(*Tick)
		if len(tk.Globals) != 0 || len(tk.Objects) != 0 {
			t.Fatalf("%s: unknown non-number members taken as the game's: %+v", frame, tk)
		}
		if _, err := Encode(tk); err != nil {
			t.Fatalf("%s: re-encode: %v", frame, err)
		}
	}
	for _, frame := range []string{
		`{"type":"tick","room":"r","epoch":1,"seq":2}`,
		`{"type":"tick","room":"r","epoch":1.5,"seq":2,"players":[]}`,
		`{"type":"tick","room":"r","epoch":1,"seq":2,"players":[{"id":"a","x":1},{"id":"b","y":1}]}`,
		`{"type":"tick","room":"r","epoch":1,"seq":2,"players":[{"id":"a","x":1},{"id":"b"}]}`,
		`{"type":"tick","room":"r","epoch":1,"seq":2,"players":[{"x":1}]}`,
		`{"type":"tick","room":"r","epoch":1,"seq":2,"players":[{"id":"a","online":1}]}`,
	} {
		if _, err := DecodeServer([]byte(frame)); err == nil {
			t.Errorf("decoded %s", frame)
		}
	}
}

func TestInputPayload(t *testing.T) {
	in := &Input{Seq: 1, Keys: Keys{Up: true, Right: true}}
	if got := string(in.Payload()); got != `{"up":true,"down":false,"left":false,"right":true}` {
		t.Fatalf("keys payload %s", got)
	}
	in = &Input{Seq: 1, Data: []byte(`{"x":1}`)}
	if got := string(in.Payload()); got != `{"x":1}` {
		t.Fatalf("data payload %s", got)
	}
}
