package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestTakeoverTicksBeforeTheMetaLeaderIsBack is the regression test for the replay stall the chaos suite found:
// a takeover replayed the input stream through a consumer, and creating a consumer needs the JetStream meta
// leader. When the owner's node was also the meta leader, SIGKILLing it made the new owner wait for NATS's 4-9
// s meta election before its first tick. Replay now reads with direct gets, which any replica answers, so the
// new owner ticks while the meta leader is still being elected. (An in-process cluster cannot show it: an
// in-process server shutdown hands the meta leadership over at once; a SIGKILLed process cannot.)
func TestTakeoverTicksBeforeTheMetaLeaderIsBack(t *testing.T) {
	c := startCluster(t)
	var owner string
	var epoch uint64
	waitFor(t, 30*time.Second, "a lobby owner", func() bool { owner, epoch = c.owner(); return owner != "" })
	ownerIdx, err := strconv.Atoi(strings.TrimPrefix(owner, "n"))
	if err != nil {
		t.Fatalf("owner %q: %v", owner, err)
	}

	secrets := c.secrets()
	nc, err := nats.Connect(c.natsURL, nats.UserInfo(secrets.AdminUser, secrets.AdminPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The owner moves the stream leaders off its node by itself; wait for it, so that only the meta leader dies
	// with the owner.
	for _, stream := range []string{"KV_owners", "KV_snapshots", "INPUTS"} {
		waitFor(t, 60*time.Second, stream+" leader off the owner", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			s, err := js.Stream(ctx, stream)
			if err != nil {
				return false
			}
			info := s.CachedInfo()
			return info.Cluster != nil && info.Cluster.Leader != "" && info.Cluster.Leader != owner
		})
	}
	sys, err := nats.Connect(c.natsURL, nats.UserInfo(secrets.SysUser, secrets.SysPassword))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	waitFor(t, 60*time.Second, "the meta leader on the owner's node", func() bool {
		if c.isMetaLeader(ownerIdx) {
			return true
		}
		req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": owner}})
		_, _ = sys.Request("$JS.API.META.LEADER.STEPDOWN", req, 2*time.Second)
		time.Sleep(time.Second)
		return c.isMetaLeader(ownerIdx)
	})
	if o, e := c.owner(); o != owner || e != epoch {
		t.Fatalf("the lobby moved to %s/%d while the meta leader moved", o, e)
	}

	// The first tick of a new epoch that reaches this client (connected to the survivors too).
	var mu sync.Mutex
	var firstNew time.Time
	sub, err := nc.Subscribe("game.lobby.tick", func(m *nats.Msg) {
		e, _ := strconv.ParseUint(m.Header.Get("Tm-Epoch"), 10, 64)
		mu.Lock()
		if e > epoch && firstNew.IsZero() {
			firstNew = time.Now()
		}
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })

	c.run("kill", owner)
	killed := time.Now()
	var metaBack time.Time
	for time.Since(killed) < 30*time.Second && metaBack.IsZero() {
		for i := 1; i <= 3; i++ {
			if i != ownerIdx && c.isMetaLeader(i) {
				metaBack = time.Now()
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if metaBack.IsZero() {
		t.Fatal("no meta leader within 30 s of the kill")
	}
	mu.Lock()
	first := firstNew
	mu.Unlock()
	if first.IsZero() {
		t.Fatalf("no tick of a new epoch before the meta leader was back (%v after the kill)", metaBack.Sub(killed))
	}
	t.Logf("first tick of the new owner %v after the kill; meta leader back after %v", first.Sub(killed), metaBack.Sub(killed))
	if !first.Before(metaBack) {
		t.Fatal("the new owner ticked only after the meta leader was back")
	}
}

// isMetaLeader reads node i's tickmesh_jetstream_meta_leader gauge (false when the node does not answer).
func (c *cluster) isMetaLeader(i int) bool {
	client := http.Client{Timeout: 500 * time.Millisecond}
	resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", c.adminPort(i)))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "tickmesh_jetstream_meta_leader "); ok {
			return strings.TrimSpace(v) == "1"
		}
	}
	return false
}
