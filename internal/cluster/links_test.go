package cluster

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoServer accepts connections and echoes every line back, standing for a node's route port.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// linked is node n1, whose route port is an echo server, behind a link (its address returned); n2 dials it.
func linked(t *testing.T) (string, *Links) {
	t.Helper()
	l, err := StartLinks([]Node{{Name: "n1", Route: echoServer(t), Link: "127.0.0.1:0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l.Addrs()[0], l
}

// roundTrip sends line and reports whether it came back within d.
func roundTrip(t *testing.T, conn net.Conn, r *bufio.Reader, line string, d time.Duration) bool {
	t.Helper()
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return false
	}
	_ = conn.SetReadDeadline(time.Now().Add(d))
	got, err := r.ReadString('\n')
	return err == nil && strings.TrimSpace(got) == line
}

func TestLinkCarriesBytesUntilEitherEndIsCutAndClosesStalledConnectionsOnHeal(t *testing.T) {
	link, l := linked(t)
	conn, err := net.Dial("tcp", link)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	// The dialer introduces itself as a NATS route does, with its INFO.
	if !roundTrip(t, conn, r, `INFO {"server_id":"X","server_name":"n2"}`, 2*time.Second) {
		t.Fatal("no echo through the link")
	}

	// Cutting the dialer (n2) stalls the connection: nothing is closed, nothing passes.
	l.Cut(map[string]bool{"n2": true})
	if roundTrip(t, conn, r, "while n2 is cut", 300*time.Millisecond) {
		t.Fatal("bytes passed while the dialer was cut off")
	}
	// Healing closes the stalled connection, so that both ends dial again at once.
	l.Cut(map[string]bool{})
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(r); err != nil {
		t.Fatalf("the stalled connection was not closed on heal: %v", err)
	}

	// A new connection works again; cutting the node the link stands for (n1) stalls it too, and so does a
	// connection opened during the cut.
	conn2, err := net.Dial("tcp", link)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	r2 := bufio.NewReader(conn2)
	if !roundTrip(t, conn2, r2, `INFO {"server_name":"n3"}`, 2*time.Second) {
		t.Fatal("no echo after heal")
	}
	l.Cut(map[string]bool{"n1": true})
	if roundTrip(t, conn2, r2, "while n1 is cut", 300*time.Millisecond) {
		t.Fatal("bytes passed while the target was cut off")
	}
	conn3, err := net.Dial("tcp", link)
	if err != nil {
		t.Fatal(err)
	}
	defer conn3.Close()
	if roundTrip(t, conn3, bufio.NewReader(conn3), `INFO {"server_name":"n3"}`, 300*time.Millisecond) {
		t.Fatal("a connection opened during the cut carried bytes")
	}
}

func TestCutFileRoundTripsAndIsFollowed(t *testing.T) {
	path := t.TempDir() + "/cut"
	cut, err := ReadCuts(path)
	if err != nil || len(cut) != 0 {
		t.Fatalf("missing file: %v, %v", cut, err)
	}
	if err := WriteCuts(path, map[string]bool{"n2": true, "n1": true}); err != nil {
		t.Fatal(err)
	}
	cut, err = ReadCuts(path)
	if err != nil || !cut["n1"] || !cut["n2"] || len(cut) != 2 {
		t.Fatalf("read back %v, %v", cut, err)
	}
	_, l := linked(t)
	ctx, stop := context.WithCancel(t.Context())
	reports := make(chan []string, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Follow(ctx, path, func(cut []string) { reports <- cut })
	}()
	defer func() {
		stop()
		<-done
	}()
	if got := <-reports; strings.Join(got, ",") != "n1,n2" {
		t.Fatalf("first report %v", got)
	}
	if err := WriteCuts(path, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	if got := <-reports; len(got) != 0 {
		t.Fatalf("after heal: %v", got)
	}
}
