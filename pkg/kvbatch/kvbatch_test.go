package kvbatch_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/kvbatch"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// bucket makes an R3 bucket named name on a 3-node cluster, with atomic batches allowed when allow is set, and
// returns it with the node's connection.
func bucket(t *testing.T, c *nodetest.Cluster, name string, allow bool) jetstream.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m := c.Members()[0].Node.Mesh()
	kv, err := m.EnsureKV(ctx, jetstream.KeyValueConfig{Bucket: name, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	// A batch's commit is a request to the stream's leader: with none elected yet it finds no responders.
	testingutil.WaitFor(t, 30*time.Second, "a leader for "+name+"'s stream", func() bool {
		s, err := m.JetStream().Stream(ctx, wire.KVStream(name))
		if err != nil {
			return false
		}
		info, err := s.Info(ctx)
		return err == nil && info.Cluster != nil && info.Cluster.Leader != ""
	})
	if allow {
		if err := kvbatch.Allow(ctx, m.JetStream(), name); err != nil {
			t.Fatal(err)
		}
		if err := kvbatch.Allow(ctx, m.JetStream(), name); err != nil { // idempotent
			t.Fatal(err)
		}
	}
	return kv
}

func TestABatchStoresEveryKeyAtItsRevisionOrNone(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	kv := bucket(t, c, "batchtest", true)
	nc := c.Members()[0].Node.Mesh().Conn()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	var puts []kvbatch.Put
	for i := range 5 {
		puts = append(puts, kvbatch.Put{Key: fmt.Sprintf("room-%d", i), Value: []byte(fmt.Sprintf("v1-%d", i))})
	}
	revs, err := kvbatch.Write(ctx, nc, "batchtest", puts)
	if err != nil {
		t.Fatalf("create batch: %v", err)
	}
	for i, p := range puts {
		e, err := kv.Get(ctx, p.Key)
		if err != nil || string(e.Value()) != string(p.Value) || e.Revision() != revs[i] {
			t.Fatalf("%s after the batch: %v, %v; want %q at revision %d", p.Key, e, err, p.Value, revs[i])
		}
		puts[i].Revision = revs[i]
		puts[i].Value = []byte(fmt.Sprintf("v2-%d", i))
	}
	// One stale revision: the whole batch is refused, nothing changes.
	stale := append([]kvbatch.Put(nil), puts...)
	stale[3].Revision--
	if _, err := kvbatch.Write(ctx, nc, "batchtest", stale); !errors.Is(err, kvbatch.ErrConflict) {
		t.Fatalf("batch with a stale revision: %v, want ErrConflict", err)
	}
	// A create of a key that exists is a conflict too.
	if _, err := kvbatch.Write(ctx, nc, "batchtest", []kvbatch.Put{{Key: "room-0", Value: []byte("x")}}); !errors.Is(err, kvbatch.ErrConflict) {
		t.Fatalf("create of an existing key: %v, want ErrConflict", err)
	}
	for i := range puts {
		if e, err := kv.Get(ctx, puts[i].Key); err != nil || e.Revision() != revs[i] {
			t.Fatalf("%s changed by a refused batch: %v, %v", puts[i].Key, e, err)
		}
	}
	// The same batch at the right revisions goes through, and plain CAS writes see its revisions.
	revs2, err := kvbatch.Write(ctx, nc, "batchtest", puts)
	if err != nil {
		t.Fatalf("update batch: %v", err)
	}
	if _, err := kv.Update(ctx, "room-4", []byte("v3"), revs2[4]); err != nil {
		t.Fatalf("CAS at the batch's revision: %v", err)
	}
	// A key deleted since is written at its delete marker's revision.
	if err := kv.Delete(ctx, "room-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Get(ctx, "room-1"); !errors.Is(err, jetstream.ErrKeyDeleted) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	st, err := c.Members()[0].Node.Mesh().JetStream().Stream(ctx, "KV_batchtest")
	if err != nil {
		t.Fatal(err)
	}
	marker, err := st.GetLastMsgForSubject(ctx, "$KV.batchtest.room-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kvbatch.Write(ctx, nc, "batchtest", []kvbatch.Put{{Key: "room-1", Value: []byte("back"), Revision: marker.Sequence}}); err != nil {
		t.Fatalf("write over a delete marker: %v", err)
	}
}

func TestABatchOnABucketWithoutAtomicPublishIsRefusedAsDisabled(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	bucket(t, c, "plain", false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := kvbatch.Write(ctx, c.Members()[0].Node.Mesh().Conn(), "plain", []kvbatch.Put{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}})
	if !errors.Is(err, kvbatch.ErrDisabled) {
		t.Fatalf("batch on a plain bucket: %v, want ErrDisabled", err)
	}
	many := make([]kvbatch.Put, kvbatch.MaxBatch+1)
	if _, err := kvbatch.Write(ctx, c.Members()[0].Node.Mesh().Conn(), "plain", many); !errors.Is(err, kvbatch.ErrTooLarge) {
		t.Fatalf("oversized batch: %v", err)
	}
}
