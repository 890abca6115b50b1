package room

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// readPerMessage is the read loop replay used before batched reads, kept to compare them: one direct get of the
// next message of the subject per message, each sent twice by readFresh.
func readPerMessage(ctx context.Context, s jetstream.Stream, subject string, from, to uint64, each func(data []byte, seq uint64)) error {
	for seq := from; seq <= to; {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg, err := readFresh(ctx, 2*time.Second, func(gctx context.Context) (*jetstream.RawStreamMsg, error) {
			return s.GetMsg(gctx, seq, jetstream.WithGetMsgSubject(subject))
		})
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			continue
		}
		each(msg.Data, msg.Sequence)
		seq = msg.Sequence + 1
	}
	return nil
}

// BenchmarkReplayReads reads a room's input messages (60 or 600 of them, each followed by two messages of other
// rooms) through a node of a 3-node cluster that does not lead INPUTS (an owner's node does not lead it:
// placement), one direct get per message as replay did before, and in batches as it does now. Each message's
// events are decoded, as replay does before it applies them.
//
//	go test -run '^$' -bench ReplayReads -benchtime 20x ./pkg/room/
func BenchmarkReplayReads(b *testing.B) {
	ms := natsCluster(b, 3)
	var reader *mesh.Mesh
	for _, m := range ms {
		if !m.LeadsStream(wire.InputsStream) {
			reader = m
		}
	}
	ctx := context.Background()
	s, err := reader.JetStream().Stream(ctx, wire.InputsStream)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{60, 600} {
		room := fmt.Sprintf("r%d", n)
		byRoom, _ := fill(b, ms, ms[0], n, room, room+"-x", room+"-y")
		msgs := byRoom[room]
		from, to, subject := msgs[0].seq, msgs[n-1].seq, wire.InputSubject(room)
		check := func(b *testing.B, got int) {
			if got != n {
				b.Fatalf("%d messages read, want %d", got, n)
			}
		}
		b.Run(fmt.Sprintf("messages=%d/per-message", n), func(b *testing.B) {
			for b.Loop() {
				got := 0
				if err := readPerMessage(ctx, s, subject, from, to, func(data []byte, _ uint64) {
					wire.DecodeEvents(data)
					got++
				}); err != nil {
					b.Fatal(err)
				}
				check(b, got)
			}
		})
		b.Run(fmt.Sprintf("messages=%d/batched", n), func(b *testing.B) {
			for b.Loop() {
				got := 0
				if _, err := readRange(ctx, reader.Conn(), wire.InputsStream, subject, from, to, func(data []byte, _ uint64) {
					wire.DecodeEvents(data)
					got++
				}); err != nil {
					b.Fatal(err)
				}
				check(b, got)
			}
		})
	}
}
