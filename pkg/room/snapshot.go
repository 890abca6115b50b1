package room

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Bucket and stream names.
const (
	OwnersBucket    = "owners"
	SnapshotsBucket = "snapshots"
	InputsStream    = "INPUTS"
)

// TickSubject is where a room's ticks are published.
func TickSubject(room string) string { return "game." + room + ".tick" }

// InputSubject is where a room's player events are published durably: INPUTS stores them, the owner follows the
// stream.
func InputSubject(room string) string { return "game." + room + ".input" }

// LiveSubject is where the same events go on core NATS first, for the owner to apply at once (also while the
// stream has no leader). No stream captures it: a copy here that the stream also stored would race the durable
// publish of the same message id, which JetStream refuses while the first copy is still being replicated
// ("duplicate message id is in process").
func LiveSubject(room string) string { return "game." + room + ".live" }

// Snapshot is the durable state of a room, written by its owner every SnapshotInterval by CAS.
type Snapshot struct {
	Room     string      `json:"room"`
	Epoch    uint64      `json:"epoch"`     // epoch of the owner that wrote it
	Owner    string      `json:"owner"`     // node that wrote it
	InputSeq uint64      `json:"input_seq"` // every INPUTS message of the room up to this stream sequence is applied
	Time     int64       `json:"time"`      // writer's clock, Unix ms, informational
	State    *game.State `json:"state"`
}

// SnapshotsConfig is the snapshots bucket: one value per room, no history.
func SnapshotsConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:       SnapshotsBucket,
		Description:  "Tickmesh room snapshots: key = room",
		History:      1,
		Storage:      jetstream.FileStorage,
		MaxValueSize: 8 << 20,
	}
}

// InputsConfig is the INPUTS stream: every player event, replicated and synced, deduplicated by message id.
// Owners purge a room's events once a later snapshot covers them; the age and size limits are a backstop that
// refuses new events (DiscardNew) rather than dropping events no snapshot covers yet.
func InputsConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        InputsStream,
		Description: "Tickmesh player events (join, input, leave) per room",
		Subjects:    []string{"game.*.input"},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      24 * time.Hour,
		MaxBytes:    1 << 30,
		Discard:     jetstream.DiscardNew,
		Duplicates:  2 * time.Minute,
		AllowDirect: true,
	}
}

// Seed is the simulation seed of a room: derived from its name so every owner agrees.
func Seed(room string) uint64 {
	h := fnv.New64a()
	h.Write([]byte("tickmesh-room:" + room))
	return h.Sum64()
}

// tickOf encodes state as the tick message of an owner.
func tickOf(room string, epoch uint64, owner string, now time.Time, cfg game.Config, s *game.State) protocol.Tick {
	t := protocol.Tick{
		Room: room, Epoch: epoch, Seq: uint64(s.Tick), Owner: owner, Time: now.UnixMilli(),
		Width: float64(cfg.Width), Height: float64(cfg.Height),
		Players: make([]protocol.TickPlayer, len(s.Players)),
	}
	for i, p := range s.Players {
		tp := protocol.TickPlayer{
			ID: p.ID, Name: p.Name, X: float64(p.X), Y: float64(p.Y), VX: float64(p.VX), VY: float64(p.VY),
			Keys: uint8(p.Keys), Ack: p.Ack, Conn: p.Conn, Online: p.Online,
		}
		if !p.Online {
			tp.Away = uint64(p.AwaySince)
		}
		t.Players[i] = tp
	}
	return t
}

// stateFromTick rebuilds the game state a tick describes. Tombstones are not in ticks: they come from base
// (the snapshot), plus one for every player of base that the tick no longer has.
func stateFromTick(room string, t protocol.Tick, base *game.State) (*game.State, error) {
	s := game.NewState(Seed(room))
	s.Tick = int64(t.Seq)
	inTick := make(map[string]bool, len(t.Players))
	for _, p := range t.Players {
		inTick[p.ID] = true
		gp := game.Player{
			ID: p.ID, Name: p.Name, X: int(p.X), Y: int(p.Y), VX: int(p.VX), VY: int(p.VY),
			Keys: game.Keys(p.Keys), Ack: p.Ack, Conn: p.Conn, Online: p.Online,
		}
		if !p.Online {
			gp.AwaySince = int64(p.Away)
		}
		if float64(gp.X) != p.X || float64(gp.Y) != p.Y {
			return nil, fmt.Errorf("restore from tick: player %s has a non-integer position", p.ID)
		}
		s.Players = append(s.Players, gp)
	}
	if base != nil {
		for _, g := range base.Gone {
			if !inTick[g.ID] {
				s.Gone = append(s.Gone, g)
			}
		}
		for _, p := range base.Players {
			if !inTick[p.ID] {
				s.Gone = append(s.Gone, game.Tombstone{ID: p.ID, Ack: p.Ack, Tick: s.Tick})
			}
		}
	}
	sortState(s)
	return s, nil
}

func decodeSnapshot(b []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if s.State == nil {
		return nil, fmt.Errorf("decode snapshot: no state")
	}
	return &s, nil
}

func sortState(s *game.State) {
	slices.SortFunc(s.Players, func(a, b game.Player) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Gone, func(a, b game.Tombstone) int { return strings.Compare(a.ID, b.ID) })
	s.Gone = slices.CompactFunc(s.Gone, func(a, b game.Tombstone) bool { return a.ID == b.ID })
}
