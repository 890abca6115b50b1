package node_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
)

func TestRoutesWithTLSAndPasswordFormAReplicatedCluster(t *testing.T) {
	cert, key, ca := nodetest.WriteCerts(t)
	c := nodetest.StartCluster(t, 3, func(cfg *node.Config) {
		cfg.Mesh.RouteTLSCert, cfg.Mesh.RouteTLSKey, cfg.Mesh.RouteTLSCA = cert, key, ca
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv1, err := c.Member("n1").Node.Mesh().EnsureKV(ctx, jetstream.KeyValueConfig{Bucket: "tls", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv1.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	kv3, err := c.Member("n3").Node.Mesh().EnsureKV(ctx, jetstream.KeyValueConfig{Bucket: "tls", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 10*time.Second, "value through TLS routes", func() bool {
		e, err := kv3.Get(ctx, "k")
		return err == nil && string(e.Value()) == "v"
	})
	if !c.Member("n1").Node.Mesh().Routed("n3") {
		t.Fatal("no route n1-n3")
	}
}
