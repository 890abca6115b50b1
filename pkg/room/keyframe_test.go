package room_test

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// A relay's request for a keyframe (wire.SyncSubject, sent from another node) makes the owner's next tick carry
// one, between the keyframes it sends every second.
func TestAKeyframeRequestAddsAKeyframeToTheOwnersNextTick(t *testing.T) {
	c := nodetest.StartCluster(t, 2)
	name, _ := owner(t, c, 0)
	asker := c.Member(other(c, name)).Node.Mesh().Conn()

	var mu sync.Mutex
	var keySeq, keys, last uint64 // the last tick with a keyframe, how many had one, the last tick
	sub, err := asker.Subscribe(wire.FramesSubject(room.Lobby), func(m *nats.Msg) {
		_, seq, err := wire.ParseTickHeader(m.Header)
		if err != nil {
			return
		}
		first, key, err := wire.SplitFrames(m.Header, m.Data)
		if err != nil || len(first) == 0 {
			return
		}
		mu.Lock()
		if first[0] == compact.Keyframe || key != nil {
			keySeq, keys = max(keySeq, seq), keys+1
		}
		last = max(last, seq)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	// The owner publishes a room's own frames once it sees the subscription (within 250 ms); it sends a keyframe
	// every TickRate ticks (20).
	lastKey := func() (key, now uint64) {
		mu.Lock()
		defer mu.Unlock()
		return keySeq, last
	}
	testingutil.WaitFor(t, 20*time.Second, "two periodic keyframes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return keys >= 2
	})
	// Ask between two periodic keyframes, 4 to 12 ticks after one, and expect a keyframe within 4 ticks of the
	// request: the next periodic one is at least 8 ticks further. A machine too slow to catch that window tries
	// again at the next period.
	for attempt := 0; ; attempt++ {
		if attempt == 10 {
			t.Fatalf("never caught the owner between 4 and 12 ticks after a keyframe in 10 periods")
		}
		var key, at uint64
		testingutil.WaitFor(t, 5*time.Second, "a tick 4 ticks after a keyframe", func() bool {
			key, at = lastKey()
			return at >= key+4
		})
		if at > key+12 {
			testingutil.WaitFor(t, 5*time.Second, "the next keyframe", func() bool { k, _ := lastKey(); return k > key })
			continue
		}
		if err := asker.Publish(wire.SyncSubject(room.Lobby), nil); err != nil {
			t.Fatal(err)
		}
		testingutil.WaitFor(t, 5*time.Second, "a keyframe after the request", func() bool { k, _ := lastKey(); return k > key })
		got, _ := lastKey()
		if got > at+4 {
			t.Fatalf("asked at tick %d (the last keyframe at %d): the next keyframe came at %d, not within 4 ticks", at, key, got)
		}
		return
	}
}
