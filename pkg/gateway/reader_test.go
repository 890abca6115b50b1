package gateway_test

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// clientFrame is one final client frame (masked, as RFC 6455 requires of clients) with a payload under 126 bytes.
func clientFrame(opcode byte, payload string) []byte {
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	f := []byte{0x80 | opcode, 0x80 | byte(len(payload))}
	f = append(f, mask[:]...)
	for i := range len(payload) {
		f = append(f, payload[i]^mask[i%4])
	}
	return f
}

// writeRaw writes bytes to the client's TCP connection in one write, around gorilla.
func (cl *client) writeRaw(b []byte) {
	cl.t.Helper()
	cl.wmu.Lock()
	defer cl.wmu.Unlock()
	if _, err := cl.ws.NetConn().Write(b); err != nil {
		cl.t.Fatalf("%s: raw write: %v", cl.name, err)
	}
}

// pongTimes is the t of every pong the client got so far.
func (cl *client) pongTimes() []float64 {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]float64(nil), cl.pongs...)
}

func TestMessagesArrivingInOneSegmentAreAllHandled(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	lobbyOwner(t, c, 0)
	cl := dial(t, c, "n1", "batcher", dialOpts{})

	// The hello and a ping in one TCP write: the ping is in the server's read buffer when the hello is handled.
	hello, err := protocol.Encode(&protocol.Hello{Protocol: protocol.Version, Name: "batcher"})
	if err != nil {
		t.Fatal(err)
	}
	cl.writeRaw(append(clientFrame(websocket.TextMessage, string(hello)), clientFrame(websocket.TextMessage, `{"type":"ping","t":0}`)...))
	cl.waitWelcome()
	testingutil.WaitFor(t, waitShort, "pong 0", func() bool { return len(cl.pongTimes()) >= 1 })

	// Two pings with a pong between them, in one TCP write: the server reads them with one read, so the second
	// ping is already in its buffer when the first is handled.
	var b bytes.Buffer
	b.Write(clientFrame(websocket.TextMessage, `{"type":"ping","t":1}`))
	b.Write(clientFrame(websocket.PongMessage, ""))
	b.Write(clientFrame(websocket.TextMessage, `{"type":"ping","t":2}`))
	cl.writeRaw(b.Bytes())
	testingutil.WaitFor(t, waitShort, "pongs 1 and 2", func() bool { return len(cl.pongTimes()) >= 3 })
	if got := cl.pongTimes(); got[0] != 0 || got[1] != 1 || got[2] != 2 {
		t.Fatalf("pongs %v, want [0 1 2]", got)
	}

	// A frame split across two writes is read whole.
	f := clientFrame(websocket.TextMessage, `{"type":"ping","t":3}`)
	cl.writeRaw(f[:5])
	time.Sleep(100 * time.Millisecond)
	cl.writeRaw(f[5:])
	testingutil.WaitFor(t, waitShort, "pong 3", func() bool { return len(cl.pongTimes()) >= 4 })
	if !cl.open() {
		t.Fatalf("closed with %d", cl.closeCodeNow())
	}
}

// serverReaders counts the gateway's goroutines that read a socket's messages (readBurst) and those that wait
// for a socket to become readable (watch in awaitReadable).
func serverReaders() (reading, waiting int) {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	for _, g := range strings.Split(string(buf), "\n\n") {
		switch {
		case strings.Contains(g, "gateway.(*conn).readBurst"):
			reading++
		case strings.Contains(g, "gateway.(*conn).watch") && strings.Contains(g, "gateway.awaitReadable"):
			waiting++
		}
	}
	return reading, waiting
}

func TestAnIdleSocketWaitsOutsideTheWebSocketReaderAfterAPong(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" {
		t.Skip("sockets cannot be peeked at here: the watcher waits inside the WebSocket read (readable_other.go)")
	}
	c := nodetest.StartCluster(t, 1)
	lobbyOwner(t, c, 0)
	cl := join(t, c, "n1", "idler")

	// A pong alone (browsers send one for every server ping) is a control frame, which gorilla handles inside
	// its read of the next message: the gateway must take it itself, or the read waits for the next message.
	cl.writeRaw(clientFrame(websocket.PongMessage, ""))
	time.Sleep(200 * time.Millisecond)
	testingutil.WaitFor(t, waitShort, "the socket's reader back to waiting", func() bool {
		reading, waiting := serverReaders()
		return reading == 0 && waiting == 1
	})

	// It still reads what comes next.
	cl.writeRaw(clientFrame(websocket.TextMessage, `{"type":"ping","t":5}`))
	testingutil.WaitFor(t, waitShort, "pong 5", func() bool { return len(cl.pongTimes()) == 1 })

	// A pong sent as two halves is taken whole.
	f := clientFrame(websocket.PongMessage, "abc")
	cl.writeRaw(f[:1])
	time.Sleep(50 * time.Millisecond)
	cl.writeRaw(f[1:])
	time.Sleep(200 * time.Millisecond)
	testingutil.WaitFor(t, waitShort, "the socket's reader back to waiting", func() bool {
		reading, waiting := serverReaders()
		return reading == 0 && waiting == 1
	})
	if !cl.open() {
		t.Fatalf("closed with %d", cl.closeCodeNow())
	}
}

func TestAClientPingIsAnsweredWithItsPayload(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	lobbyOwner(t, c, 0)
	cl := dial(t, c, "n1", "pinger", dialOpts{noRead: true})
	pongs := make(chan string, 4)
	cl.ws.SetPongHandler(func(data string) error {
		pongs <- data
		return nil
	})
	done := make(chan struct{})
	go func() { // this test's reader: it runs the pong handler
		defer close(done)
		for {
			if _, _, err := cl.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cl.ws.Close()
		<-done
	})
	cl.hello("", 1)
	time.Sleep(500 * time.Millisecond) // ticks flow: the pong goes through the socket's writer between them
	for _, payload := range []string{"one", ""} {
		cl.wmu.Lock()
		err := cl.ws.WriteControl(websocket.PingMessage, []byte(payload), time.Now().Add(5*time.Second))
		cl.wmu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-pongs:
			if got != payload {
				t.Fatalf("pong %q, want %q", got, payload)
			}
		case <-time.After(waitShort):
			t.Fatalf("no pong for ping %q", payload)
		}
	}
}

// A client's close frame is answered with its own code, through the socket's writer, and the player leaves
// even when the code is one the server uses for itself (4503, taken over: then the server sends no leave).
func TestClientCloseIsAnsweredWithItsCodeAndThePlayerLeaves(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	lobbyOwner(t, c, 0)
	watcher := join(t, c, "n1", "watcher")
	for _, code := range []int{websocket.CloseNormalClosure, protocol.CloseTakenOver} {
		cl := join(t, c, "n1", fmt.Sprintf("closer-%d", code))
		id := cl.id()
		watcher.waitTick(waitShort, cl.name+" online", online(id))
		cl.wmu.Lock()
		_ = cl.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, "bye"), time.Now().Add(time.Second))
		cl.wmu.Unlock()
		if got := cl.waitClose(waitShort); got != code {
			t.Errorf("%s: the server answered with %d, want %d", cl.name, got, code)
		}
		left := time.Now()
		ticksUntil(t, watcher, left, cl.name+" offline", func(tk *protocol.Tick) bool {
			p, ok := find(tk, id)
			return ok && !p.Online
		})
	}
}
