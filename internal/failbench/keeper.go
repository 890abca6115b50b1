package failbench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tickmesh/tickmesh/pkg/client"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/sim"
)

// keeper holds a room other than the lobby open for the whole run: the nodes close a room that has had no
// players for a while, and failbench's bot (which publishes below the gateway) is not always there. It is one
// player connected through pkg/client to the nodes' WebSocket endpoints in turn; when its node dies or is cut
// off, it reconnects to the next one, and the room keeps it (offline, within its grace) meanwhile. Its welcome
// names the room's game, which decides the bot's inputs.
//
// Goroutines: one, running the client; stop cancels and waits for it.
type keeper struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	game string // from the first welcome
}

// keeperWelcome bounds the wait for the keeper's first welcome.
const keeperWelcome = 30 * time.Second

// startKeeper connects the keeper to the room through urls and returns once it is welcomed.
func startKeeper(ctx context.Context, urls []string, roomName string, logf func(string, ...any)) (*keeper, error) {
	cl, err := client.New(client.Config{URLs: urls, Name: "failbench-keeper", Room: roomName})
	if err != nil {
		return nil, fmt.Errorf("start the room's keeper: %w", err)
	}
	kctx, cancel := context.WithCancel(ctx)
	k := &keeper{cancel: cancel, done: make(chan struct{})}
	welcomed := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(k.done)
		err := cl.Run(kctx, client.Handler{
			Welcome: func(c client.Conn, w *protocol.Welcome) error {
				k.mu.Lock()
				if k.game == "" {
					k.game = w.Game
				}
				k.mu.Unlock()
				logf("keeper welcomed in %s (game %q) by %s", w.Room, w.Game, w.Node)
				once.Do(func() { close(welcomed) })
				return nil
			},
			Closed: func(d client.Disconnect) { logf("keeper's connection ended: %v", d) },
		})
		if err != nil && !errors.Is(err, context.Canceled) {
			logf("UNPLANNED: the room's keeper stopped: %v", err)
		}
	}()
	select {
	case <-welcomed:
		return k, nil
	case <-k.done:
		return nil, fmt.Errorf("start the room's keeper: it stopped before a welcome (see events.log)")
	case <-time.After(keeperWelcome):
		k.stop()
		return nil, fmt.Errorf("start the room's keeper: no welcome in %s after %v", roomName, keeperWelcome)
	}
}

// roomGame is the game the keeper's first welcome named.
func (k *keeper) roomGame() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.game
}

// stop disconnects the keeper and waits for it.
func (k *keeper) stop() {
	k.cancel()
	<-k.done
}

// inputFor is how the bot makes its inputs in a room of game: the arena's keys, or the collect game's target
// point (both within their games' default bounds).
func inputFor(game string) (input, error) {
	switch game {
	case "arena":
		return func(player string, seq uint64) sim.Event {
			return sim.Event{Kind: sim.KindInput, Player: player, Seq: seq, Keys: uint8(seq % 16)}
		}, nil
	case "collect":
		return func(player string, seq uint64) sim.Event {
			x, y := seq*37%1001, seq*91%1001
			return sim.Event{Kind: sim.KindInput, Player: player, Seq: seq, Data: json.RawMessage(fmt.Sprintf(`{"x":%d,"y":%d}`, x, y))}
		}, nil
	}
	return nil, fmt.Errorf("failbench's bot has no inputs for the game %q", game)
}

// lobbyGame is the lobby's game on nodes started with their defaults, as failbench starts them.
const lobbyGame = "arena"
