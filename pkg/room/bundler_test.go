package room

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// bundleSink subscribes to every shard's bundles and keeps what arrives: each bundle's ticks.
type bundleSink struct {
	mu      sync.Mutex
	bundles [][]wire.BundledTick // guarded by mu
	shards  []int                // guarded by mu: the shard of each bundle
}

func sinkBundles(t *testing.T, nc *nats.Conn) *bundleSink {
	t.Helper()
	s := &bundleSink{}
	for shard := range wire.BundleShards {
		sub, err := nc.Subscribe(wire.AllBundles(shard), func(m *nats.Msg) {
			var ticks []wire.BundledTick
			if err := wire.ReadBundle(m.Data, func(bt *wire.BundledTick) {
				c := *bt
				c.Data = bytes.Clone(bt.Data)
				ticks = append(ticks, c)
			}); err != nil {
				t.Errorf("bundle on %s: %v", m.Subject, err)
			}
			if m.Subject != wire.BundleSubject(shard, "b1") {
				t.Errorf("bundle on %s", m.Subject)
			}
			s.mu.Lock()
			s.bundles = append(s.bundles, ticks)
			s.shards = append(s.shards, shard)
			s.mu.Unlock()
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *bundleSink) got() ([][]wire.BundledTick, []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]wire.BundledTick(nil), s.bundles...), append([]int(nil), s.shards...)
}

// roomsInShards returns n rooms of each shard.
func roomsInShards(n int) [wire.BundleShards][]string {
	var out [wire.BundleShards][]string
	for i := 0; ; i++ {
		r := "r" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		s := wire.BundleShard(r)
		if len(out[s]) < n {
			out[s] = append(out[s], r)
		}
		done := true
		for _, rs := range out {
			done = done && len(rs) == n
		}
		if done {
			return out
		}
	}
}

// The ticks added within a window go out together, one bundle per shard, in the order they were added, each
// room's in its own shard; the bundler's goroutine sends them when the window ends and stops with its context.
func TestTicksWithinAWindowShareOneBundlePerShard(t *testing.T) {
	nc := natsCluster(t, 1)[0].Conn()
	sink := sinkBundles(t, nc)
	counts := struct {
		sync.Mutex
		sent, errors int
	}{}
	b := newBundler(nc, "b1", 200*time.Millisecond, func() { counts.Lock(); counts.sent++; counts.Unlock() }, func() { counts.Lock(); counts.errors++; counts.Unlock() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.run(ctx)
	}()
	rooms := roomsInShards(3)
	for seq := uint64(1); seq <= 2; seq++ {
		for _, rs := range rooms {
			for _, r := range rs {
				b.add(&wire.BundledTick{Room: r, Epoch: 1, Seq: seq, Data: []byte(r)})
			}
		}
	}
	testingutil.WaitFor(t, 5*time.Second, "a bundle per shard", func() bool { bs, _ := sink.got(); return len(bs) == wire.BundleShards })
	time.Sleep(300 * time.Millisecond) // more than a window: nothing else goes out
	bundles, shards := sink.got()
	if len(bundles) != wire.BundleShards {
		t.Fatalf("%d bundles, want one per shard", len(bundles))
	}
	for i, ticks := range bundles {
		rs := rooms[shards[i]]
		if len(ticks) != 2*len(rs) {
			t.Fatalf("bundle of shard %d: %d ticks, want %d", shards[i], len(ticks), 2*len(rs))
		}
		for j, tk := range ticks {
			want := rs[j%len(rs)]
			if tk.Room != want || tk.Seq != uint64(1+j/len(rs)) || string(tk.Data) != want {
				t.Fatalf("bundle of shard %d, tick %d: %+v, want %s at seq %d", shards[i], j, tk, want, 1+j/len(rs))
			}
		}
	}
	cancel()
	<-done
	counts.Lock()
	defer counts.Unlock()
	if counts.sent != wire.BundleShards || counts.errors != 0 {
		t.Fatalf("counted %d bundles sent and %d errors", counts.sent, counts.errors)
	}
}

// Without its goroutine a bundler sends only what it must at once: a bundle that a tick would take past
// maxBundle, and, with a window of 0, every tick; flush sends the rest.
func TestABundleGoesOutAtOnceWhenFullOrWithoutAWindow(t *testing.T) {
	nc := natsCluster(t, 1)[0].Conn()
	sink := sinkBundles(t, nc)
	b := newBundler(nc, "b1", time.Hour, func() {}, func() {})
	r := roomsInShards(1)[0][0]
	big := bytes.Repeat([]byte{7}, maxBundle/3+1)
	for seq := uint64(1); seq <= 4; seq++ {
		b.add(&wire.BundledTick{Room: r, Epoch: 1, Seq: seq, Data: big})
	}
	testingutil.WaitFor(t, 5*time.Second, "the full bundle", func() bool { bs, _ := sink.got(); return len(bs) == 1 })
	time.Sleep(100 * time.Millisecond)
	if bs, _ := sink.got(); len(bs) != 1 || len(bs[0]) != 2 || bs[0][1].Seq != 2 {
		t.Fatalf("bundles before the window: %d, want one of ticks 1 and 2", len(bs))
	}
	b.flush()
	testingutil.WaitFor(t, 5*time.Second, "the flushed bundle", func() bool { bs, _ := sink.got(); return len(bs) == 2 })
	if bs, _ := sink.got(); len(bs[1]) != 2 || bs[1][0].Seq != 3 || bs[1][1].Seq != 4 {
		t.Fatalf("flushed bundle of %d ticks, want ticks 3 and 4", len(bs[1]))
	}

	now := newBundler(nc, "b1", 0, func() {}, func() {})
	now.add(&wire.BundledTick{Room: r, Epoch: 1, Seq: 5, Data: []byte{1}})
	now.add(&wire.BundledTick{Room: r, Epoch: 1, Seq: 6, Data: []byte{1}})
	testingutil.WaitFor(t, 5*time.Second, "two bundles of one tick", func() bool { bs, _ := sink.got(); return len(bs) == 4 })
}
