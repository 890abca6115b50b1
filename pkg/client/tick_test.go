package client

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/protocol"
)

func TestTickHeadAndAckAreReadWithoutDecodingPlayers(t *testing.T) {
	tk := &protocol.Tick{Room: "lobby", Epoch: 3, Seq: 1234, Owner: "n2", Time: 1732800000123,
		Players: []protocol.TickPlayer{
			{ID: "p0000000000000001", Name: `"ack":1 }`, Ack: 42, Conn: 41, Online: true},
			{ID: "p0000000000000002", Name: "bob", Ack: 7, Conn: 1},
		}}
	data, err := protocol.Encode(tk)
	if err != nil {
		t.Fatal(err)
	}
	var got Tick
	if !parseTickHead(data, "lobby", &got) || got.Room != "lobby" || got.Epoch != 3 || got.Seq != 1234 || got.Time != 1732800000123 {
		t.Fatalf("parseTickHead = %+v", got)
	}
	got.Data = data
	for player, want := range map[string]uint64{"p0000000000000001": 42, "p0000000000000002": 7} {
		if ack, ok := got.Ack(player); !ok || ack != want {
			t.Errorf("ack of %s = %d, %v; want %d", player, ack, ok, want)
		}
	}
	if _, ok := got.Ack("p0000000000000003"); ok {
		t.Error("found the ack of a player not in the tick")
	}
	// Decoding gives the same answers.
	full, err := got.Decode()
	if err != nil || full.Owner != "n2" || len(full.Players) != 2 {
		t.Fatalf("Decode = %+v, %v", full, err)
	}
	if ack, ok := got.Ack("p0000000000000001"); !ok || ack != 42 {
		t.Errorf("ack after Decode = %d, %v", ack, ok)
	}
	if !parseTickHead(data, "other", &got) || got.Room != "lobby" {
		t.Errorf("a tick of another room than expected: room %q", got.Room)
	}
	welcome, _ := protocol.Encode(&protocol.Welcome{Protocol: 1, Player: "p1", Resume: "x", Room: "lobby", Node: "n1"})
	if parseTickHead(welcome, "lobby", &got) {
		t.Fatal("a welcome read as a tick")
	}
}

// TestTickFixturesParse holds the head parser to the protocol's golden fixtures: every tick fixture is canonical.
func TestTickFixturesParse(t *testing.T) {
	files, err := filepath.Glob("../protocol/testdata/fixtures/server/tick*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no tick fixtures: %v", err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msg, err := protocol.DecodeServer(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want := msg.(*protocol.Tick)
		var got Tick
		if !parseTickHead(bytes.TrimSpace(data), "lobby", &got) || got.Room != want.Room || got.Epoch != want.Epoch ||
			got.Seq != want.Seq || got.Time != want.Time {
			t.Errorf("%s: head %+v; want %s %d/%d/%d", f, got, want.Room, want.Epoch, want.Seq, want.Time)
		}
	}
}

func TestBackoffStaysWithinItsBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	b := Backoff{Min: 50 * time.Millisecond, Base: 100 * time.Millisecond, Cap: time.Second}
	for n := range 40 {
		ceiling := min(time.Second, 100*time.Millisecond<<min(n, 10))
		for range 50 {
			if d := b.delay(n, rng); d < 50*time.Millisecond || d >= 50*time.Millisecond+ceiling {
				t.Fatalf("retry %d: %v outside [50ms, %v)", n, d, 50*time.Millisecond+ceiling)
			}
		}
	}
	if d := DefaultBackoff.delay(100, rng); d >= 5*time.Second {
		t.Fatalf("capped delay %v", d)
	}
}

func TestCloseCodesAreClassifiedLikeTheBrowser(t *testing.T) {
	for code, want := range map[int]Action{1000: Retry, 1006: Retry, 4000: Retry, 4001: Retry, 4499: Retry,
		4500: Final, 4501: ResetIdentity, 4503: Final, 4504: Final, 4999: Final, 5000: Retry} {
		if got := Classify(code); got != want {
			t.Errorf("Classify(%d) = %v, want %v", code, got, want)
		}
	}
}

func TestEndpointsRotateAndFollowAnnouncements(t *testing.T) {
	for raw, want := range map[string]string{"http://h:1": "ws://h:1/ws", "https://h/": "wss://h/ws", "ws://h/x": "ws://h/x"} {
		if got, ok := NormalizeURL(raw); !ok || got != want {
			t.Errorf("NormalizeURL(%q) = %q, %v", raw, got, ok)
		}
	}
	for _, bad := range []string{"ftp://h", "h:1", ""} {
		if _, ok := NormalizeURL(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
	e := newEndpoints([]string{"ws://lb/ws"}, 0)
	e.announce([]protocol.NodeInfo{{Name: "n1", URL: "http://a:1"}, {Name: "n2", URL: "http://b:1"}, {Name: "x", URL: "ftp://c"}})
	if strings.Join(e.list, " ") != "ws://lb/ws ws://a:1/ws ws://b:1/ws" || e.current() != "ws://lb/ws" {
		t.Fatalf("after announce: %v at %d", e.list, e.i)
	}
	e.advance()
	e.advance()
	if e.current() != "ws://b:1/ws" {
		t.Fatalf("current %s", e.current())
	}
	// The current node goes away: the next advance lands on what now stands where it stood.
	e.announce([]protocol.NodeInfo{{Name: "n1", URL: "http://a:1"}, {Name: "n2", URL: "http://b:1"}, {Name: "n3", URL: "http://c:1"}})
	e.announce([]protocol.NodeInfo{{Name: "n1", URL: "http://a:1"}, {Name: "n3", URL: "http://c:1"}})
	e.advance()
	if e.current() != "ws://c:1/ws" {
		t.Fatalf("after n2 left: %s (%v)", e.current(), e.list)
	}
	e.advance()
	if e.current() != "ws://lb/ws" {
		t.Fatalf("wrap: %s", e.current())
	}
}

func TestSessionSavesEverySeqBeforeUseAndNeverGoesBack(t *testing.T) {
	st := &MemoryStore{}
	s := session{store: st, room: "lobby"}
	if seq, _ := s.next(); seq != 1 {
		t.Fatalf("first seq %d", seq)
	}
	if saved, _ := st.Load("lobby"); saved.Seq != 1 {
		t.Fatalf("saved %+v", saved)
	}
	_ = s.welcome("p1", "tok", 9) // the server has applied up to 9 (another connection of the same player)
	if seq, _ := s.next(); seq != 10 {
		t.Fatalf("seq after an ack of 9: %d", seq)
	}
	_ = s.welcome("p1", "", 3) // an empty token keeps the old one; a lower ack changes nothing
	if saved, _ := st.Load("lobby"); saved != (State{Resume: "tok", Seq: 10}) || s.player != "p1" {
		t.Fatalf("saved %+v", saved)
	}
	_ = s.clear()
	if saved, _ := st.Load("lobby"); saved != (State{}) || s.player != "" {
		t.Fatalf("after clear %+v", saved)
	}
}
