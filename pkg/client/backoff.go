package client

import (
	"math/rand/v2"
	"net/url"
	"slices"
	"time"

	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Backoff is the wait between two connection attempts: the n-th consecutive retry (from 0) waits
// Min + random(0, min(Cap, Base·2ⁿ)). A connection that stayed welcomed for StableAfter resets n (with 0, every
// welcome does).
type Backoff struct {
	Min, Base, Cap time.Duration
	StableAfter    time.Duration
}

// DefaultBackoff is the browser client's: full jitter from 250 ms up to 5 s, reset by a connection that stayed
// welcomed for 10 s.
var DefaultBackoff = Backoff{Base: 250 * time.Millisecond, Cap: 5 * time.Second, StableAfter: 10 * time.Second}

// delay is the wait before retry n.
func (b Backoff) delay(n int, rng *rand.Rand) time.Duration {
	ceiling := b.Cap
	if n < 30 && b.Base<<n < b.Cap && b.Base<<n > 0 {
		ceiling = b.Base << n
	}
	d := b.Min
	if ceiling > 0 {
		d += time.Duration(rng.Int64N(int64(ceiling)))
	}
	return d
}

// NormalizeURL turns a node's address into its WebSocket endpoint: http becomes ws, https wss, and a URL
// without a path gets /ws. It reports false for anything else.
func NormalizeURL(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", false
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", false
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/ws"
	}
	u.Fragment = ""
	return u.String(), true
}

// endpoints are the URLs to try, in order: the configured ones, then (with discovery) the nodes the server
// announced, deduplicated. advance moves to the next one after a connection ends.
type endpoints struct {
	seed []string
	list []string
	i    int
}

func newEndpoints(seed []string, first int) *endpoints {
	return &endpoints{seed: seed, list: slices.Clone(seed), i: first % len(seed)}
}

func (e *endpoints) current() string { return e.list[e.i] }

func (e *endpoints) advance() { e.i = (e.i + 1) % len(e.list) }

// announce replaces the announced nodes; the current endpoint stays current when still listed, else the next
// advance lands on the one that now stands where it stood.
func (e *endpoints) announce(nodes []protocol.NodeInfo) {
	cur := e.current()
	next := slices.Clone(e.seed)
	for _, n := range nodes {
		if u, ok := NormalizeURL(n.URL); ok && !slices.Contains(next, u) {
			next = append(next, u)
		}
	}
	e.list = next
	if i := slices.Index(next, cur); i >= 0 {
		e.i = i
	} else {
		e.i = (min(e.i, len(next)) - 1 + len(next)) % len(next)
	}
}
