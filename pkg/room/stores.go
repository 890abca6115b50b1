package room

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/kvbatch"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// PrepareStores readies the buckets for the way ownership writes them (docs/FAILOVER.md):
//   - the owners bucket keeps room keys until they are released: a bucket created by an older version has a
//     MaxAge (the lease TTL then), which would expire the key of every room nobody rewrites, so it is removed;
//   - the snapshots bucket accepts atomic batches (one replicated write per snapshot round of a node).
//
// Every node does it at start; the updates are idempotent, so nodes starting together do not conflict.
func PrepareStores(ctx context.Context, js jetstream.JetStream) error {
	s, err := js.Stream(ctx, wire.KVStream(wire.OwnersBucket))
	if err != nil {
		return fmt.Errorf("prepare the owners bucket: %w", err)
	}
	if cfg := s.CachedInfo().Config; cfg.MaxAge != 0 {
		cfg.MaxAge = 0
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("prepare the owners bucket: keep room keys (no max age): %w", err)
		}
	}
	if err := kvbatch.Allow(ctx, js, wire.SnapshotsBucket); err != nil {
		return fmt.Errorf("prepare the snapshots bucket: %w", err)
	}
	return nil
}
