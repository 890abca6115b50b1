// Package testingutil holds the small helpers every test of this module shares, whether it runs nodes in-process
// (pkg/node/nodetest) or as real processes (internal/cluster): free loopback ports, polling, a status probe and
// a writer that collects a process's output. It starts no goroutines.
package testingutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	return FreePortBlock(t, 1)
}

// FreePortBlock returns the first of n consecutive loopback ports that are free now. They are drawn below
// Linux's ephemeral range (32768-60999 by default), so that no outgoing connection can be handed one between
// now and the listen of the process that gets it (a port from ":0" is an ephemeral one, and was taken that way
// once in CI).
func FreePortBlock(t testing.TB, n int) int {
	t.Helper()
	for range 200 {
		base := 10000 + rand.IntN(22000-n)
		free := true
		for p := base; p < base+n && free; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no block of %d free loopback ports below 32000", n)
	return 0
}

// Eventually polls cond every interval until it holds (true) or timeout passes (false).
func Eventually(timeout, interval time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// WaitFor polls cond every 20 ms until it holds, or fails the test naming what once timeout has passed.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Eventually(timeout, 20*time.Millisecond, cond) {
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// HTTPStatus is the status code of a GET of url, 0 when there is no answer within 2 s.
func HTTPStatus(url string) int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Output collects a process's stdout and stderr for a test to read while the process runs.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String is everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// SnapshotRoster counts the players and the tombstones ("gone") in a room snapshot as stored in the snapshots
// bucket, for tests of its bounds; it reads only those two members of the room's state.
func SnapshotRoster(data []byte) (players, gone int, err error) {
	var s struct {
		State struct {
			Players []json.RawMessage `json:"players"`
			Gone    []json.RawMessage `json:"gone"`
		} `json:"state"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return 0, 0, fmt.Errorf("decode snapshot: %w", err)
	}
	return len(s.State.Players), len(s.State.Gone), nil
}
