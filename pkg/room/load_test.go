package room_test

import (
	"context"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/room"
)

// loadDuration is how long TestSaturatedOwnerKeepsItsRoom loads the owner: TICKMESH_LOAD_DURATION (a Go
// duration) or 20 s, short enough for CI. docs/FAILOVER.md gives the long run (5 minutes).
func loadDuration(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("TICKMESH_LOAD_DURATION")
	if v == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("TICKMESH_LOAD_DURATION=%q: want a positive Go duration", v)
	}
	return d
}

// loadSeed is the seed of the pauses' schedule: TICKMESH_LOAD_SEED, or 1.
func loadSeed(t *testing.T) uint64 {
	t.Helper()
	v := os.Getenv("TICKMESH_LOAD_SEED")
	if v == "" {
		return 1
	}
	s, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("TICKMESH_LOAD_SEED=%q: want an unsigned integer", v)
	}
	return s
}

// An owner that is merely slow keeps its room: with every core busy with other work, the garbage collector
// running all the time, and the owner's loop and renewals stalled for 100-300 ms (a long GC pause, a descheduled
// VM) every one to two seconds, the lobby's epoch never changes. The test counts epoch changes as every node sees
// them; it asserts no latency.
func TestSaturatedOwnerKeepsItsRoom(t *testing.T) {
	d, seed := loadDuration(t), loadSeed(t)
	c := nodetest.StartCluster(t, 3)
	name, epoch := owner(t, c, 0)
	rec := record(t, c, other(c, name))
	testingutil.WaitFor(t, 10*time.Second, "lobby ticks", func() bool { return rec.lastTick().Seq > 0 })
	startSeq := rec.lastTick().Seq

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	// Other work on every core.
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			x := uint64(1)
			for ctx.Err() == nil {
				for range 1 << 16 {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			_ = x
		}()
	}
	// Garbage, so that the collector runs all the time and every goroutine pays assists.
	wg.Add(1)
	go func() {
		defer wg.Done()
		var keep [][]byte
		for ctx.Err() == nil {
			keep = append(keep, make([]byte, 256<<10))
			if len(keep) > 64 {
				keep = keep[:0]
			}
			time.Sleep(time.Millisecond)
		}
	}()
	// Pauses of the owner's loop and renewals.
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	owner := c.Member(name).Node.Rooms()
	wg.Add(1)
	pauses := 0
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			pause := time.Duration(100+rng.IntN(201)) * time.Millisecond
			owner.InjectFault(room.Lobby, room.Fault{Until: time.Now().Add(pause)})
			pauses++
			if !sleep(ctx, pause+time.Duration(1000+rng.IntN(1001))*time.Millisecond) {
				return
			}
		}
	}()

	changes := 0
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for _, m := range c.Members() {
			if n, e := m.Node.Rooms().Owner(room.Lobby); e > epoch {
				changes++
				t.Errorf("%s sees the lobby at %s/%d, was %s/%d", m.Name, n, e, name, epoch)
				name, epoch = n, e
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	owner.InjectFault(room.Lobby, room.Fault{})
	if changes > 0 {
		t.Fatalf("%d epoch changes in %v of load (seed %d)", changes, d, seed)
	}
	if got := rec.lastTick().Seq; got <= startSeq {
		t.Fatalf("no tick published under load: seq %d then %d", startSeq, got)
	}
	t.Logf("%v of load with %d owner pauses (seed %d): 0 epoch changes, ticks %d → %d", d, pauses, seed, startSeq, rec.lastTick().Seq)
}

func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
