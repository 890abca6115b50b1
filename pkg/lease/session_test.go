package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/lease"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

const sessionBucket = "sessiontest"

// sessionBuckets returns the owners-style bucket (no max age, per-message TTLs allowed) bound through each node of
// a 3-node cluster, with each node's JetStream handle.
func sessionBuckets(t *testing.T, ttl time.Duration) ([]jetstream.KeyValue, []jetstream.JetStream) {
	t.Helper()
	c := nodetest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var kvs []jetstream.KeyValue
	var jss []jetstream.JetStream
	for _, m := range c.Members() {
		cfg := wire.OwnersConfig(ttl)
		cfg.Bucket = sessionBucket
		kv, err := m.Node.Mesh().EnsureKV(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		kvs = append(kvs, kv)
		jss = append(jss, m.Node.Mesh().JetStream())
	}
	// A bucket just created may refuse a write through a node the stream's interest has not reached yet ("no
	// responders"): the tests start once a write works through every node.
	for i, kv := range kvs {
		probe := "probe-" + c.Members()[i].Name
		testingutil.WaitFor(t, 10*time.Second, "a write to the new bucket through "+c.Members()[i].Name, func() bool {
			_, err := kv.Put(ctx, probe, nil)
			return err == nil
		})
		if err := kv.Delete(ctx, probe); err != nil {
			t.Fatal(err)
		}
	}
	return kvs, jss
}

func TestASessionHoldsItsRoomsWithoutWritingThemUntilAPeerFencesIt(t *testing.T) {
	kvs, jss := sessionBuckets(t, 2*time.Second)
	cfg := lease.Config{TTL: 2 * time.Second}
	ctx := context.Background()
	s1, err := lease.OpenSession(ctx, kvs[0], jss[0], sessionBucket, "n1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lease.AcquireIn(ctx, kvs[0], "r1", lease.Value{Epoch: 1}, s1)
	if err != nil {
		t.Fatal(err)
	}
	if v := l.Value(); v.Node != "n1" || v.Session != s1.ID() {
		t.Fatalf("room lease value %+v: want it to name n1 and its session", v)
	}
	roomRev := l.Revision()
	for range 3 {
		if err := s1.Renew(ctx); err != nil {
			t.Fatalf("renew session: %v", err)
		}
	}
	if e, err := kvs[1].Get(ctx, "r1"); err != nil || e.Revision() != roomRev {
		t.Fatalf("room key after session renewals: %v, %v; want it untouched at revision %d", e, err, roomRev)
	}
	if !l.Valid() || !l.Deadline().Equal(s1.Deadline()) {
		t.Fatal("a room lease under a live session is not valid until the session's deadline")
	}
	// A peer whose view is behind cannot fence the session: the CAS fails.
	if err := lease.FenceSession(ctx, kvs[1], "n1", s1.Revision()-1); !errors.Is(err, lease.ErrTaken) {
		t.Fatalf("fence at a stale revision: %v, want ErrTaken", err)
	}
	if err := lease.FenceSession(ctx, kvs[1], "n1", s1.Revision()); err != nil {
		t.Fatalf("fence: %v", err)
	}
	if err := s1.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("renew of a fenced session: %v, want ErrLost", err)
	}
	select {
	case <-s1.Done():
	default:
		t.Fatal("fenced session not done")
	}
	if l.Valid() {
		t.Fatal("a room lease outlived its session")
	}
	// Its room is free for a takeover by CAS on the room's own key.
	s2, err := lease.OpenSession(ctx, kvs[1], jss[1], sessionBucket, "n2", cfg)
	if err != nil {
		t.Fatal(err)
	}
	l2, err := lease.TakeoverIn(ctx, kvs[1], "r1", lease.Value{Epoch: 2}, roomRev, s2)
	if err != nil {
		t.Fatalf("takeover: %v", err)
	}
	if err := l.Release(ctx); err != nil {
		t.Fatalf("release by the old holder: %v", err)
	}
	if e, err := kvs[2].Get(ctx, "r1"); err != nil || e.Revision() != l2.Revision() {
		t.Fatalf("the old holder's release touched the new holder's key: %v, %v", e, err)
	}
}

func TestHoldEndsTheWorkOfARoomLeaseWhenItsSessionIsLost(t *testing.T) {
	kvs, jss := sessionBuckets(t, 2*time.Second)
	cfg := lease.Config{TTL: 2 * time.Second, RenewInterval: 100 * time.Millisecond}
	ctx := context.Background()
	s, err := lease.OpenSession(ctx, kvs[0], jss[0], sessionBucket, "n1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lease.AcquireIn(ctx, kvs[0], "r1", lease.Value{Epoch: 1}, s)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = lease.FenceSession(ctx, kvs[1], "n1", s.Revision())
		_ = s.Renew(ctx) // finds out
	}()
	cause := l.Hold(ctx, lease.HoldConfig{}, func(wctx context.Context) error {
		<-wctx.Done()
		return nil
	})
	if !errors.Is(cause, lease.ErrLost) {
		t.Fatalf("cause %v, want ErrLost", cause)
	}
}

func TestASessionNobodyRenewsExpiresAndANewRunOfItsNodeReplacesTheOldOne(t *testing.T) {
	kvs, jss := sessionBuckets(t, time.Second)
	cfg := lease.Config{TTL: time.Second, RenewInterval: 100 * time.Millisecond}
	ctx := context.Background()
	old, err := lease.OpenSession(ctx, kvs[0], jss[0], sessionBucket, "n1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The same node starting again replaces its old session by CAS: the old one is lost.
	s, err := lease.OpenSession(ctx, kvs[1], jss[1], sessionBucket, "n1", cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if s.ID() == old.ID() {
		t.Fatal("a new session reused the old id")
	}
	if err := old.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("renew of a replaced session: %v, want ErrLost", err)
	}
	// Not renewed, the key expires after its TTL (a per-message TTL: the bucket keeps room keys).
	w, err := kvs[2].Watch(ctx, lease.SessionKey("n1"), jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	select {
	case e := <-w.Updates():
		if e == nil || e.Operation() == jetstream.KeyValuePut {
			t.Fatalf("unexpected update %v", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("session key did not expire")
	}
	if err := s.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("renew of an expired session: %v, want ErrLost", err)
	}
}

func TestAHandedOverRoomIsAdoptedByTheOtherSessionWithoutAWrite(t *testing.T) {
	kvs, jss := sessionBuckets(t, 2*time.Second)
	cfg := lease.Config{TTL: 2 * time.Second}
	ctx := context.Background()
	s1, err := lease.OpenSession(ctx, kvs[0], jss[0], sessionBucket, "n1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := lease.OpenSession(ctx, kvs[1], jss[1], sessionBucket, "n2", cfg)
	if err != nil {
		t.Fatal(err)
	}
	l1, err := lease.AcquireIn(ctx, kvs[0], "r1", lease.Value{Epoch: 3}, s1)
	if err != nil {
		t.Fatal(err)
	}
	val := lease.Value{Node: "n2", Epoch: 4, Session: s2.ID()}
	if err := l1.HandOver(ctx, val); err != nil {
		t.Fatalf("hand over: %v", err)
	}
	if l1.Valid() {
		t.Fatal("the old holder's lease is still valid after the handoff")
	}
	e, err := kvs[1].Get(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := lease.Parse(e.Value())
	if err != nil || got.Node != "n2" || got.Epoch != 4 || got.Session != s2.ID() {
		t.Fatalf("handed-over value %+v, %v", got, err)
	}
	if _, err := lease.Adopt(kvs[0], "r1", got, e.Revision(), s1); !errors.Is(err, lease.ErrTaken) {
		t.Fatalf("adoption by the wrong session: %v", err)
	}
	l2, err := lease.Adopt(kvs[1], "r1", got, e.Revision(), s2)
	if err != nil || !l2.Valid() || l2.Epoch() != 4 {
		t.Fatalf("adopt: %v", err)
	}
	if err := l1.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if e2, err := kvs[2].Get(ctx, "r1"); err != nil || e2.Revision() != e.Revision() {
		t.Fatalf("the old holder's release after a handoff touched the key: %v, %v", e2, err)
	}
}
