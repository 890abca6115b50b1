package mesh

import (
	"context"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/wire"
)

// A cluster whose INPUTS was created by nodes from before the republish gets it from the first node that ensures
// the stream, and keeps what it stored; a stream that has it is left as it is.
func TestEnsureStreamAddsTheRepublishToAStreamCreatedWithout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Name = "n1"
	cfg.ClientAddr = "off"
	cfg.DataDir = t.TempDir()
	m, err := Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	old := wire.InputsConfig()
	old.RePublish = nil
	if _, err := m.JetStream().CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := m.JetStream().Publish(ctx, wire.InputSubject("a"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second call finds the republish in place
		s, err := m.EnsureStream(ctx, wire.InputsConfig())
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := wire.InputsConfig().RePublish; !reflect.DeepEqual(info.Config.RePublish, want) {
			t.Fatalf("republish %+v, want %+v", info.Config.RePublish, want)
		}
		if info.State.Msgs != 1 {
			t.Fatalf("stream holds %d messages after the update, want 1", info.State.Msgs)
		}
	}

	sub, err := m.Conn().SubscribeSync(wire.StoredSubject("a"))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ack, err := m.JetStream().Publish(ctx, wire.InputSubject("a"), []byte(`{"kind":"leave"}`))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no stored copy of an input stored after the update: %v", err)
	}
	seq, prev, err := wire.StoredPosition(msg.Header)
	if err != nil || seq != ack.Sequence || prev != 1 || string(msg.Data) != `{"kind":"leave"}` {
		t.Fatalf("stored copy %q at %d after %d (%v), want the input at %d after 1", msg.Data, seq, prev, err, ack.Sequence)
	}
}
