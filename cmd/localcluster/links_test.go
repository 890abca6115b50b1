package main

import (
	"bufio"
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

// linkedCluster is a cluster whose node n1's route is an echo server behind a link; n2 dials it.
func linkedCluster(t *testing.T) (*cluster, *links) {
	t.Helper()
	c := &cluster{Nodes: []nodeSpec{
		{Name: "n1", Route: echoServer(t), Link: "127.0.0.1:0"},
	}}
	l, err := startLinks(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	c.Nodes[0].Link = l.lns[0].Addr().String()
	return c, l
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
	c, l := linkedCluster(t)
	conn, err := net.Dial("tcp", c.Nodes[0].Link)
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
	l.apply(map[string]bool{"n2": true})
	if roundTrip(t, conn, r, "while n2 is cut", 300*time.Millisecond) {
		t.Fatal("bytes passed while the dialer was cut off")
	}
	// Healing closes the stalled connection, so that both ends dial again at once.
	l.apply(map[string]bool{})
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(r); err != nil {
		t.Fatalf("the stalled connection was not closed on heal: %v", err)
	}

	// A new connection works again; cutting the node the link stands for (n1) stalls it too, and so does a
	// connection opened during the cut.
	conn2, err := net.Dial("tcp", c.Nodes[0].Link)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	r2 := bufio.NewReader(conn2)
	if !roundTrip(t, conn2, r2, `INFO {"server_name":"n3"}`, 2*time.Second) {
		t.Fatal("no echo after heal")
	}
	l.apply(map[string]bool{"n1": true})
	if roundTrip(t, conn2, r2, "while n1 is cut", 300*time.Millisecond) {
		t.Fatal("bytes passed while the target was cut off")
	}
	conn3, err := net.Dial("tcp", c.Nodes[0].Link)
	if err != nil {
		t.Fatal(err)
	}
	defer conn3.Close()
	if roundTrip(t, conn3, bufio.NewReader(conn3), `INFO {"server_name":"n3"}`, 300*time.Millisecond) {
		t.Fatal("a connection opened during the cut carried bytes")
	}
}

func TestCutFileRoundTrips(t *testing.T) {
	dir := t.TempDir()
	path := dir + "/cut"
	cut, err := readCut(path)
	if err != nil || len(cut) != 0 {
		t.Fatalf("missing file: %v, %v", cut, err)
	}
	if err := writeCut(path, map[string]bool{"n2": true, "n1": true}); err != nil {
		t.Fatal(err)
	}
	cut, err = readCut(path)
	if err != nil || !cut["n1"] || !cut["n2"] || len(cut) != 2 {
		t.Fatalf("read back %v, %v", cut, err)
	}
}
