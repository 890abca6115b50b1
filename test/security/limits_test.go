package security

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// joinRoom dials n as a client at address ip (n trusts loopback as its proxy, so X-Real-IP names the client)
// and says hello for room. It does not wait for the welcome.
func joinRoom(t testing.TB, n *node.Node, name, roomName, ip string) *player {
	t.Helper()
	p := dialPlayer(t, wsURL(n), name, http.Header{"X-Real-IP": {ip}})
	p.send(&protocol.Hello{Protocol: protocol.Version, Name: name, Room: roomName})
	return p
}

func trustLoopback(cfg *node.Config) {
	cfg.Gateway.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

// TestRoomLimitsAnswerWithAnErrorAndACloseCode: one address may have sockets in MaxRoomsPerIP distinct rooms
// (the next room gets too_many_rooms and 4506, final), a node serves MaxRooms rooms (the next gets
// too_many_rooms and 4004, retryable: another node may have room). Nobody else notices.
func TestRoomLimitsAnswerWithAnErrorAndACloseCode(t *testing.T) {
	c := nodetest.StartCluster(t, 1, trustLoopback, func(cfg *node.Config) {
		cfg.Gateway.MaxRoomsPerIP = 2
		cfg.Gateway.MaxRooms = 4 // the lobby and three more
	})
	n := c.Member("n1").Node
	alice := joinLobby(t, n, "alice")

	joinRoom(t, n, "m1", "r-1", "203.0.113.7").waitWelcome()
	joinRoom(t, n, "m2", "r-2", "203.0.113.7").waitWelcome()
	joinRoom(t, n, "m2b", "r-2", "203.0.113.7").waitWelcome() // a room it is in already
	third := joinRoom(t, n, "m3", "r-3", "203.0.113.7")
	if code, text := third.waitClose(10 * time.Second); code != protocol.CloseTooManyRooms {
		t.Fatalf("a third room from one address: closed %d (%s), want %d", code, text, protocol.CloseTooManyRooms)
	}
	if third.errorCount(protocol.CodeTooManyRooms) != 1 {
		t.Fatalf("no too_many_rooms error before the close: %v", third.errorCodes())
	}

	joinRoom(t, n, "o3", "r-3", "198.51.100.1").waitWelcome() // the node's fourth room
	fifth := joinRoom(t, n, "o4", "r-4", "198.51.100.2")
	if code, text := fifth.waitClose(10 * time.Second); code != protocol.CloseOverloaded {
		t.Fatalf("a fifth room on the node: closed %d (%s), want %d", code, text, protocol.CloseOverloaded)
	}
	alice.keepsPlaying(10)
}

// TestAFullRoomAnswersRoomFull: with the room at its maximum of players, a new player gets room_full and 4505 —
// at the hello when the node's last tick shows the room full, and from the owner's notice when the node had no
// tick of the room yet (the join is refused by the owner, not dropped in silence).
func TestAFullRoomAnswersRoomFull(t *testing.T) {
	c := nodetest.StartCluster(t, 3, func(cfg *node.Config) { cfg.Room.Sim.MaxPlayers = 2 })
	n1, n2 := c.Member("n1").Node, c.Member("n2").Node
	joinRoom(t, n1, "a", "small", "127.0.0.1").waitWelcome()
	b := joinRoom(t, n1, "b", "small", "127.0.0.1")
	b.waitWelcome()
	b.waitPlayers(2)

	// n2 serves no socket of the room: it has no tick of it and welcomes the player; the owner refuses the join.
	late := joinRoom(t, n2, "late", "small", "127.0.0.1")
	if code, text := late.waitClose(20 * time.Second); code != protocol.CloseRoomFull {
		t.Fatalf("join refused by the owner: closed %d (%s), want %d", code, text, protocol.CloseRoomFull)
	}
	if late.errorCount(protocol.CodeRoomFull) != 1 {
		t.Fatalf("no room_full error before the close: %v", late.errorCodes())
	}
	// n1 has the room's ticks: it answers at the hello.
	early := joinRoom(t, n1, "early", "small", "127.0.0.1")
	if code, text := early.waitClose(10 * time.Second); code != protocol.CloseRoomFull {
		t.Fatalf("hello to a full room: closed %d (%s), want %d", code, text, protocol.CloseRoomFull)
	}
	b.keepsPlaying(10)
}

// TestARoomLeavesNoSeriesBehind: a room that closes (empty for EmptyAfter) leaves no series on any node, so the
// number of series stays bounded by the rooms that exist.
func TestARoomLeavesNoSeriesBehind(t *testing.T) {
	c := nodetest.StartCluster(t, 2, func(cfg *node.Config) { cfg.Room.EmptyAfter = time.Second })
	n1 := c.Member("n1").Node
	p := joinRoom(t, n1, "brief", "brief", "127.0.0.1")
	p.waitWelcome()
	p.waitPlayers(1)
	testingutil.WaitFor(t, 10*time.Second, "series of the room", func() bool {
		return strings.Contains(metricsText(t, n1), `room="brief"`)
	})
	p.ws.Close()
	for _, m := range c.Members() {
		testingutil.WaitFor(t, 40*time.Second, m.Name+" forgets the room's series", func() bool {
			return !strings.Contains(metricsText(t, m.Node), `room="brief"`)
		})
	}
}

// TestALeaseNoNodeWroteIsTakenOverWithoutWrapping: an owners entry with epoch 2^64-1 (written with admin
// rights: an operator's mistake or a stolen password) is corrupt: the room is taken over from it with the next
// epoch above every real one, not 0, and its players keep playing.
func TestALeaseNoNodeWroteIsTakenOverWithoutWrapping(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	_, before := c.AgreedOwner(room.Lobby, 0, 30*time.Second)
	alice := joinLobby(t, c.Member("n1").Node, "alice")
	nc, _, err := connectAs(t, c, "n1", c.Secrets.AdminUser, c.Secrets.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, wire.OwnersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, room.Lobby, []byte(`{"node":"mallory","epoch":18446744073709551615,"since":0}`)); err != nil {
		t.Fatal(err)
	}
	_, after := c.AgreedOwner(room.Lobby, before, 30*time.Second)
	if after <= before || after > lease.MaxEpoch {
		t.Fatalf("epoch after the corrupt lease: %d (before %d)", after, before)
	}
	alice.keepsPlaying(20)
}

// TestForgedTickHeadersAreDropped: ticks whose epoch or seq is out of range (2^53 and above, which no owner
// writes: wire.MaxCounter) never reach a socket, and do not fence the real owner out.
func TestForgedTickHeadersAreDropped(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	n := c.Member("n1").Node
	alice := joinLobby(t, n, "alice")
	alice.keepsPlaying(3)
	nc, _, err := connectAs(t, c, "n1", c.Secrets.AdminUser, c.Secrets.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	for _, epoch := range []uint64{1 << 53, 1<<64 - 1} {
		m := wire.TickMsg(room.Lobby, epoch, 1, []byte(`{"type":"tick","room":"lobby","epoch":1,"seq":1,"owner":"x","time":0,"width":1,"height":1,"players":[]}`))
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	alice.keepsPlaying(20)
	if e := alice.lastEpoch(); e >= 1<<53 {
		t.Fatalf("a forged epoch reached the socket: %d", e)
	}
}

func metricsText(t testing.TB, n *node.Node) string {
	t.Helper()
	resp, err := http.Get(n.AdminURL() + "/metrics")
	if err != nil {
		t.Fatalf("metrics of %s: %v", n.Name(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
