package lease_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// buckets returns the same R3 lease bucket bound through each node of a 3-node cluster.
func buckets(t *testing.T, ttl time.Duration) []jetstream.KeyValue {
	t.Helper()
	c := nodetest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []jetstream.KeyValue
	for _, m := range c.Members() {
		cfg := wire.OwnersConfig(ttl)
		cfg.Bucket = "leasetest"
		cfg.TTL = ttl // keys renewed by themselves expire with the bucket's TTL
		kv, err := m.Node.Mesh().EnsureKV(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kv)
	}
	return out
}

func TestOnlyOneOfConcurrentAcquisitionsWinsOnAReplicatedBucket(t *testing.T) {
	kvs := buckets(t, 2*time.Second)
	cfg := lease.Config{TTL: 2 * time.Second}
	for round := range 5 {
		key := "room" + string(rune('a'+round))
		var wg sync.WaitGroup
		results := make([]error, len(kvs))
		for i, kv := range kvs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_, results[i] = lease.Acquire(ctx, kv, key, lease.Value{Node: "n", Epoch: uint64(i + 1)}, cfg)
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range results {
			switch {
			case err == nil:
				won++
			case errors.Is(err, lease.ErrTaken):
			default:
				t.Fatalf("round %d: loser got %v, want ErrTaken", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d winners: %v", round, won, results)
		}
	}
}

func TestRenewAfterTakeoverIsLostAndReleaseLeavesTheNewHolder(t *testing.T) {
	kvs := buckets(t, 2*time.Second)
	cfg := lease.Config{TTL: 2 * time.Second}
	ctx := context.Background()
	old, err := lease.Acquire(ctx, kvs[0], "lobby", lease.Value{Node: "n1", Epoch: 1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Renew(ctx); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if !old.Valid() || time.Until(old.Deadline()) > 2*time.Second {
		t.Fatalf("deadline %v not within the TTL", time.Until(old.Deadline()))
	}
	// A takeover at a stale revision fails; at the current one it succeeds.
	if _, err := lease.Takeover(ctx, kvs[1], "lobby", lease.Value{Node: "n2", Epoch: 2}, old.Revision()-1, cfg); !errors.Is(err, lease.ErrTaken) {
		t.Fatalf("stale takeover: %v", err)
	}
	nw, err := lease.Takeover(ctx, kvs[1], "lobby", lease.Value{Node: "n2", Epoch: 2}, old.Revision(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("renew after takeover: %v, want ErrLost", err)
	}
	if err := old.Release(ctx); err != nil {
		t.Fatalf("release of a lost lease: %v", err)
	}
	e, err := kvs[2].Get(ctx, "lobby")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := lease.Parse(e.Value()); v.Node != "n2" || v.Epoch != 2 {
		t.Fatalf("holder after the old release: %+v", v)
	}
	if err := nw.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := kvs[0].Get(ctx, "lobby"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("key after release: %v", err)
	}
	// Absent again: a new Create wins.
	if _, err := lease.Acquire(ctx, kvs[2], "lobby", lease.Value{Node: "n3", Epoch: 3}, cfg); err != nil {
		t.Fatal(err)
	}
}

func TestUnrenewedLeaseExpiresAndHoldStopsTheWork(t *testing.T) {
	kvs := buckets(t, time.Second)
	cfg := lease.Config{TTL: time.Second, RenewInterval: 100 * time.Millisecond}
	ctx := context.Background()
	l, err := lease.Acquire(ctx, kvs[0], "r", lease.Value{Node: "n1", Epoch: 1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Hold must cancel the work with ErrLost when someone else takes over (retrying until it wins: the holder's
	// renewals keep moving the revision, and on a loaded machine a takeover may lose that race many times). The
	// hold gives up after a while, so that a takeover that never wins fails the test instead of hanging it.
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	stolen := make(chan struct{})
	go func() {
		defer close(stolen)
		time.Sleep(300 * time.Millisecond)
		for hctx.Err() == nil {
			if _, err := lease.Takeover(hctx, kvs[1], "r", lease.Value{Node: "n2", Epoch: 2}, l.Revision(), cfg); err == nil {
				return
			}
		}
	}()
	defer func() { <-stolen }()
	cause := l.Hold(hctx, lease.HoldConfig{}, func(wctx context.Context) error {
		<-wctx.Done()
		return nil
	})
	if !errors.Is(cause, lease.ErrLost) {
		t.Fatalf("cause %v, want ErrLost", cause)
	}
	// A key nobody renews disappears after its TTL, and watchers see it go.
	w, err := kvs[2].Watch(ctx, "r", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case e := <-w.Updates():
		if e == nil || e.Operation() == jetstream.KeyValuePut {
			t.Fatalf("unexpected update %v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("lease did not expire")
	}
}

func TestHoldStopsWhenQuorumIsLost(t *testing.T) {
	kvs := buckets(t, 2*time.Second)
	cfg := lease.Config{TTL: 2 * time.Second, RenewInterval: 50 * time.Millisecond}
	l, err := lease.Acquire(context.Background(), kvs[0], "q", lease.Value{Node: "n1", Epoch: 1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	quorum := true
	go func() {
		time.Sleep(200 * time.Millisecond)
		mu.Lock()
		quorum = false
		mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a failure, not a hang
	defer cancel()
	cause := l.Hold(ctx, lease.HoldConfig{Quorum: func() bool { mu.Lock(); defer mu.Unlock(); return quorum }},
		func(wctx context.Context) error { <-wctx.Done(); return nil })
	if !errors.Is(cause, lease.ErrNoQuorum) {
		t.Fatalf("cause %v, want ErrNoQuorum", cause)
	}
}

func TestConfigValidateChecksRelations(t *testing.T) {
	bad := []lease.Config{
		{TTL: 500 * time.Millisecond},
		{TTL: 1500 * time.Millisecond},
		{TTL: time.Second, Margin: time.Second},
		{TTL: time.Second, RenewInterval: time.Second},
	}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (lease.Config{TTL: 10 * time.Second}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestIsTakenRecognisesBothWrongLastSequenceCodes(t *testing.T) {
	for _, code := range []jetstream.ErrorCode{jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant} {
		err := &jetstream.APIError{ErrorCode: code, Code: 400}
		if !lease.IsTaken(err) {
			t.Errorf("code %d not taken", code)
		}
	}
	if lease.IsTaken(context.DeadlineExceeded) || lease.IsTaken(nil) {
		t.Error("timeouts are unknown, not taken")
	}
}
