package wire

import (
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket and stream names.
const (
	OwnersBucket    = "owners"
	SnapshotsBucket = "snapshots"
	NodesBucket     = "nodes"
	InputsStream    = "INPUTS"
)

// KVStream is the name of the stream behind a KV bucket.
func KVStream(bucket string) string { return "KV_" + bucket }

// PlacedStreams are the streams whose leaders are kept off a node that owns rooms: if the owner's node also
// leads one of them and dies, nobody can take the room over before a 4-9 s Raft election ends.
var PlacedStreams = []string{KVStream(OwnersBucket), KVStream(SnapshotsBucket), InputsStream}

// OwnersConfig is the bucket of room leases and node sessions (pkg/lease). A room's key holds its lease, written
// when it is acquired, taken over or handed over, and kept until it is released: no MaxAge, which would expire
// the keys of rooms nobody writes. A node's session key ("node.<name>") is renewed by CAS several times a second
// with a per-message TTL of ttl, so that the session of a node that stops renewing expires by itself;
// LimitMarkerTTL allows such TTLs and leaves a marker that watchers see when one expires. History 1.
func OwnersConfig(ttl time.Duration) jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:         OwnersBucket,
		Description:    "Tickmesh room leases (key = room: {node, epoch, since, session}) and node sessions (key = node.<name>)",
		History:        1,
		LimitMarkerTTL: max(ttl, time.Second),
		Storage:        jetstream.FileStorage,
	}
}

// SnapshotsConfig is the bucket of room snapshots: one value per room, no history.
func SnapshotsConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       SnapshotsBucket,
		Description:  "Tickmesh room snapshots: key = room",
		History:      1,
		Storage:      jetstream.FileStorage,
		MaxValueSize: 8 << 20,
	}
}

// NodesConfig is the bucket of node heartbeats: an entry expires five heartbeats after its node stops writing.
func NodesConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      NodesBucket,
		Description: "Tickmesh node heartbeats",
		History:     1,
		TTL:         5 * time.Second,
		Storage:     jetstream.FileStorage,
	}
}

// InputsConfig is the INPUTS stream: every player event, replicated and synced, deduplicated by message id, and
// republished on the room's StoredSubject once stored (the owner follows its rooms there, not with a consumer).
// Owners purge a room's events once a later snapshot covers them; the age and size limits are a backstop that
// refuses new events (DiscardNew) rather than dropping events no snapshot covers yet.
func InputsConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        InputsStream,
		Description: "Tickmesh player events (join, input, leave) per room",
		Subjects:    []string{AllInputs},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      24 * time.Hour,
		MaxBytes:    1 << 30,
		Discard:     jetstream.DiscardNew,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
		RePublish:   &jetstream.RePublish{Source: AllInputs, Destination: storedDestination},
	}
}
