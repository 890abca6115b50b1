package protocol

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func mustDecode(t *testing.T, frame string) any {
	t.Helper()
	v, err := DecodeClient([]byte(frame))
	if err != nil {
		t.Fatalf("DecodeClient(%q): %v", frame, err)
	}
	return v
}

func decodeCode(t *testing.T, frame []byte) string {
	t.Helper()
	v, err := DecodeClient(frame)
	var derr *DecodeError
	if !errors.As(err, &derr) {
		t.Fatalf("DecodeClient(%q) = %+v, %v; want a *DecodeError", frame, v, err)
	}
	return derr.Code
}

func TestDecodeClientValues(t *testing.T) {
	cases := []struct {
		frame string
		want  any
	}{
		{`{"type":"hello","protocol":1,"name":"alice"}`, &Hello{Protocol: 1, Name: "alice"}},
		{` { "seq" : 41 , "room":"r-1", "name" : "  alice b  ", "resume":"a.b", "protocol" : 1 , "type" : "hello" } ` + "\n",
			&Hello{Protocol: 1, Name: "alice b", Resume: "a.b", Room: "r-1", Seq: 41}},
		{`{"type":"hello","protocol":1,"name":"` + strings.Repeat("é", 32) + `"}`, &Hello{Protocol: 1, Name: strings.Repeat("é", 32)}},
		{`{"type":"hello","protocol":1,"name":"\u00e9\ud83d\ude80"}`, &Hello{Protocol: 1, Name: "é🚀"}},
		{`{"type":"input","seq":1,"keys":{}}`, &Input{Seq: 1}},
		{`{"type":"input","keys":{"right":true,"up":false,"down":true},"seq":9007199254740991}`,
			&Input{Seq: MaxSeq, Keys: Keys{Down: true, Right: true}}},
		{`{"typ\u0065":"inp\u0075t","s\u0065q":7,"keys":{"\u0075p":true}}`, &Input{Seq: 7, Keys: Keys{Up: true}}},
		{`{"type":"ping"}`, &Ping{}},
		{`{"type":"ping","t":0}`, &Ping{T: ptr(0.0)}},
		{`{"type":"ping","t":-1.5e300}`, &Ping{T: ptr(-1.5e300)}},
		{`{"type":"ping","t":1e-400}`, &Ping{T: ptr(0.0)}},
	}
	for _, c := range cases {
		got := mustDecode(t, c.frame)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("DecodeClient(%q) = %+v, want %+v", c.frame, got, c.want)
		}
	}
}

func TestDecodeClientErrors(t *testing.T) {
	cases := map[string]string{
		"\xff": CodeBadJSON,
		`{"type":"hello","protocol":1,"name":"` + "\xff" + `"}`:                        CodeBadJSON,
		`{"type":"ping"}` + "\x00":                                                     CodeBadJSON,
		`{"type":"ping","x":{"a":[1,{"b":"}"}]}}`:                                      CodeBadField,
		`{"type":"hello","protocol":1,"name":"a","protocol":2}`:                        CodeBadProtocol,
		`{"type":"hello","protocol":1,"name":"a","seq":1,"seq":2}`:                     CodeBadField,
		`{"type":"input","seq":1e0,"keys":{}}`:                                         CodeBadField,
		`{"type":"input","seq":-0,"keys":{}}`:                                          CodeBadField,
		`{"type":"input","seq":18446744073709551616,"keys":{}}`:                        CodeBadField,
		`{"type":"ping","t":-1e400}`:                                                   CodeBadField,
		`{"type":"ping","t":true}`:                                                     CodeBadField,
		`{"type":"ping","t":1,"t":2}`:                                                  CodeBadField,
		`{"type":"hello","protocol":1,"name":"a","room":"lobby","room":"lobby"}`:       CodeBadField,
		`{"type":"hello","protocol":1,"name":"a","resume":"x","resume":"x","seq":2}`:   CodeBadField,
		`{"type":"input","seq":1,"keys":{},"keys":{}}`:                                 CodeBadField,
		`{"type":"input","seq":1,"keys":{"down":true,"down":true}}`:                    CodeBadField,
		`{"type":"input","seq":1,"keys":{"left":true,"left":true}}`:                    CodeBadField,
		`{"type":"input","seq":1,"keys":{"right":true,"right":true}}`:                  CodeBadField,
		`{"type":"input","seq":1,"type":"input","keys":{}}`:                            CodeBadField,
		`{"type":"hello","type":"input","protocol":1,"name":"a"}`:                      CodeBadField,
		`{"type":"` + strings.Repeat("x", 5000) + `"}`:                                 CodeUnknownType,
		`{"type":"hello","protocol":1,"name":"a","` + strings.Repeat("é", 50) + `":1}`: CodeBadField,
		strings.Repeat("[", 20000) + strings.Repeat("]", 20000):                        CodeBadJSON,
	}
	for frame, want := range cases {
		if got := decodeCode(t, []byte(frame)); got != want {
			t.Errorf("DecodeClient(%.80q) code = %s, want %s", frame, got, want)
		}
	}
}

func TestDecodeErrorMessages(t *testing.T) {
	_, err := DecodeClient([]byte(`{"type":"hello","protocol":1,"name":"a","` + strings.Repeat("é", 50) + `":1}`))
	var derr *DecodeError
	if !errors.As(err, &derr) {
		t.Fatal(err)
	}
	if len(derr.Message) > 80 || !strings.HasPrefix(derr.Message, `unknown field "éé`) {
		t.Errorf("message not truncated: %q", derr.Message)
	}
	if got := derr.Reply(); got.Code != CodeBadField || got.Message != derr.Message {
		t.Errorf("Reply() = %+v", got)
	}
	if !strings.Contains(derr.Error(), CodeBadField) {
		t.Errorf("Error() = %q", derr.Error())
	}
	_, err = DecodeClient([]byte(`{"type":"input","seq":0,"keys":{}}`))
	if err == nil || !strings.Contains(err.Error(), "seq: must be between 1 and 9007199254740991") {
		t.Errorf("err = %v", err)
	}
}

func TestDecodeServerLenient(t *testing.T) {
	v, err := DecodeServer([]byte(`{"type":"pong","t":2,"future":{"x":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := v.(*Pong); !ok || p.T == nil || *p.T != 2 {
		t.Fatalf("got %+v", v)
	}
	var derr *DecodeError
	if _, err := DecodeServer([]byte(`{"type":"future"}`)); !errors.As(err, &derr) || derr.Code != CodeUnknownType {
		t.Fatalf("unknown type: %v", err)
	}
	if _, err := DecodeServer([]byte(`{"type":"tick","seq":"x"}`)); !errors.As(err, &derr) || derr.Code != CodeBadField {
		t.Fatalf("wrong type: %v", err)
	}
	if _, err := DecodeServer([]byte(`[]`)); !errors.As(err, &derr) || derr.Code != CodeBadJSON {
		t.Fatalf("not an object: %v", err)
	}
}

func TestHelloDefaults(t *testing.T) {
	h := mustDecode(t, `{"type":"hello","protocol":1,"name":"alice"}`).(*Hello)
	if h.RoomName() != DefaultRoom || h.JoinSeq() != 1 {
		t.Errorf("RoomName=%q JoinSeq=%d", h.RoomName(), h.JoinSeq())
	}
	h = mustDecode(t, `{"type":"hello","protocol":1,"name":"alice","room":"x","seq":9}`).(*Hello)
	if h.RoomName() != "x" || h.JoinSeq() != 9 {
		t.Errorf("RoomName=%q JoinSeq=%d", h.RoomName(), h.JoinSeq())
	}
}

func TestKeysMask(t *testing.T) {
	if got := (Keys{Up: true}).Mask(); got != 1 {
		t.Errorf("up = %d", got)
	}
	if got := (Keys{Down: true}).Mask(); got != 2 {
		t.Errorf("down = %d", got)
	}
	if got := (Keys{Left: true}).Mask(); got != 4 {
		t.Errorf("left = %d", got)
	}
	if got := (Keys{Right: true}).Mask(); got != 8 {
		t.Errorf("right = %d", got)
	}
	for m := range 16 {
		if got := KeysFromMask(uint8(m)).Mask(); got != uint8(m) {
			t.Errorf("KeysFromMask(%d).Mask() = %d", m, got)
		}
	}
	if got := KeysFromMask(0xf5).Mask(); got != 5 {
		t.Errorf("high bits not ignored: %d", got)
	}
}

func TestValidRoom(t *testing.T) {
	for room, want := range map[string]bool{
		"lobby": true, "a": true, "0": true, "-": true, "room-2": true, strings.Repeat("z", 32): true,
		"": false, strings.Repeat("z", 33): false, "Lobby": false, "a b": false, "a_b": false, "a.b": false,
		"é": false, "lobby\n": false, "a*": false, "a>": false,
	} {
		if got := ValidRoom(room); got != want {
			t.Errorf("ValidRoom(%q) = %v, want %v", room, got, want)
		}
	}
}

func TestRetryable(t *testing.T) {
	retry := []int{CloseDraining, CloseTooSlow, CloseNoOwner, CloseOverloaded, CloseIdle, 4003, 4000, 4123, 4499,
		1000, 1001, 1002, 1005, 1006, 1009, 1011, 1012, 1013, 1014, 1015, 3000, 3999, 5000}
	final := []int{CloseBadProtocol, CloseBadResume, CloseTooManyErrors, CloseTakenOver, CloseOriginNotAllowed,
		4500, 4777, 4999}
	for _, c := range retry {
		if !Retryable(c) {
			t.Errorf("Retryable(%d) = false", c)
		}
	}
	for _, c := range final {
		if Retryable(c) {
			t.Errorf("Retryable(%d) = true", c)
		}
	}
	// The close code constants are in their documented ranges.
	for _, c := range []int{CloseDraining, CloseTooSlow, CloseNoOwner, CloseOverloaded, CloseIdle} {
		if c < 4000 || c > 4499 {
			t.Errorf("transient close code %d out of range", c)
		}
	}
	for _, c := range []int{CloseBadProtocol, CloseBadResume, CloseTooManyErrors, CloseTakenOver, CloseOriginNotAllowed} {
		if c < 4500 || c > 4999 {
			t.Errorf("final close code %d out of range", c)
		}
	}
}

func TestEncode(t *testing.T) {
	cases := []struct {
		msg  any
		want string
	}{
		{Hello{Protocol: 1, Name: "a"}, `{"type":"hello","protocol":1,"name":"a"}`},
		{&Input{Seq: 3, Keys: Keys{Left: true}}, `{"type":"input","seq":3,"keys":{"up":false,"down":false,"left":true,"right":false}}`},
		{Ping{}, `{"type":"ping"}`},
		{&Pong{T: ptr(0.0)}, `{"type":"pong","t":0}`},
		{Pong{T: ptr(1e21)}, `{"type":"pong","t":1e+21}`},
		{&Welcome{Protocol: 1}, `{"type":"welcome","protocol":1,"player":"","resume":"","room":"","node":"","nodes":[],"ack":0}`},
		{Nodes{}, `{"type":"nodes","nodes":[]}`},
		{&Tick{Room: "r"}, `{"type":"tick","room":"r","epoch":0,"seq":0,"owner":"","time":0,"players":[]}`},
		{&Tick{Room: "r", Schema: arenaSchema, Globals: []float64{0, 0}}, `{"type":"tick","room":"r","epoch":0,"seq":0,"owner":"","time":0,"width":0,"height":0,"players":[]}`},
		{&Input{Seq: 4, Data: json.RawMessage(`{"x":1,"y":2}`)}, `{"type":"input","seq":4,"data":{"x":1,"y":2}}`},
		{&Welcome{Protocol: 1, Game: "arena", Params: Params{{Name: "width", Value: 1000}, {Name: "tick_rate", Value: 20}}},
			`{"type":"welcome","protocol":1,"player":"","resume":"","room":"","node":"","nodes":[],"ack":0,"game":"arena","params":{"width":1000,"tick_rate":20}}`},
		{Error{Code: CodeTooLarge, Message: "<&>"}, `{"type":"error","code":"too_large","message":"<&>"}`},
	}
	for _, c := range cases {
		got, err := Encode(c.msg)
		if err != nil {
			t.Errorf("Encode(%+v): %v", c.msg, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("Encode(%+v) = %s, want %s", c.msg, got, c.want)
		}
	}
	// Encode does not modify its argument when substituting empty lists.
	w := &Welcome{}
	if _, err := Encode(w); err != nil || w.Nodes != nil {
		t.Errorf("Encode modified its argument: %+v, %v", w, err)
	}
	for _, bad := range []any{nil, 42, "x", (*Tick)(nil), (*Hello)(nil), &Pong{T: ptr(math.NaN())}, struct{}{}} {
		if b, err := Encode(bad); err == nil {
			t.Errorf("Encode(%#v) = %s, want an error", bad, b)
		}
	}
}

func BenchmarkDecodeInput(b *testing.B) {
	frame := []byte(`{"type":"input","seq":42,"keys":{"up":true,"down":false,"left":false,"right":true}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeClient(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeHello(b *testing.B) {
	frame := []byte(`{"type":"hello","protocol":1,"name":"alice","resume":"eyJ2IjoxLCJwIjoicDNmOWExYzBkMmI0ZTZmODEiLCJpYXQiOjE3MzI3OTkwMDB9.M_dYjbiuPs8L50lMUxehKHDCZzfLJaRH2TBi2n3zPFc","room":"lobby","seq":41}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeClient(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeTick(b *testing.B) {
	at := &arenaTick{Room: "lobby", Epoch: 3, Seq: 1234, Owner: "n2", Time: 1732800000123, Width: 1000, Height: 1000}
	for i := range 50 {
		at.Players = append(at.Players, arenaTickPlayer{ID: "p3f9a1c0d2b4e6f81", Name: "alice", X: float64(i), Y: 20.5, Keys: 2, Ack: 42, Conn: 41, Online: true})
	}
	tick := at.generic()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(tick); err != nil {
			b.Fatal(err)
		}
	}
}
