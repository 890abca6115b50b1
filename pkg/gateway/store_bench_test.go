package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// BenchmarkStoreEvents compares three ways of storing player events in a stream configured like INPUTS (R3,
// file storage, SyncAlways, dedup window, plus AllowAtomicPublish) on a real three-node embedded cluster:
//
//   - single: one message per event with its own message id (the form before batches);
//   - batch: one message per 64 events (wire.EncodeBatch), one message id, one PubAck;
//   - atomic: a NATS atomic batch of 64 messages (Nats-Batch-Id, -Sequence, -Commit), each with its own message
//     id, one PubAck on the commit.
//
// Eight publishers run at once, each with one publish (or batch) in flight, as eight busy rooms of one node do.
// cpu-µs/event is the CPU time of the whole process per event stored: the three servers (leader and two
// followers: Raft, file store, fsync) and the publishers. Run it on a quiet machine:
//
//	go test -run '^$' -bench StoreEvents -benchtime 20000x ./pkg/gateway/
func BenchmarkStoreEvents(b *testing.B) {
	c := nodetest.StartCluster(b, 3)
	js := c.Member("n1").Node.Mesh().JetStream()
	nc := c.Member("n1").Node.Mesh().Conn()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := wire.InputsConfig()
	cfg.Name, cfg.Subjects, cfg.Replicas, cfg.AllowAtomicPublish = "BENCH", []string{"bench.>"}, 3, true
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		b.Fatal(err)
	}
	ev, _ := wire.EncodeEvent(sim.Event{Kind: sim.KindInput, Player: "p0123456789abcdef", Seq: 1, Keys: 5})
	const size, workers = 64, 8
	runs := 0 // every run (b.Run calls the function more than once) uses new message ids: a repeat is cheaper
	for _, mode := range []string{"single", "batch", "atomic"} {
		b.Run(mode, func(b *testing.B) {
			runs++
			run := runs
			per := 1
			if mode != "single" {
				per = size
			}
			rounds := (b.N + per - 1) / per
			var next sync.Mutex
			n := 0
			take := func() bool {
				next.Lock()
				defer next.Unlock()
				n++
				return n <= rounds
			}
			cpu0 := cpuTime()
			start := time.Now()
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					subj := fmt.Sprintf("bench.%s.%d", mode, w)
					for i := 0; take(); i++ {
						id := fmt.Sprintf("%s-%d-%d-%d", mode, run, w, i)
						var err error
						switch mode {
						case "single":
							m := nats.NewMsg(subj)
							m.Data = ev
							m.Header.Set(jetstream.MsgIDHeader, id)
							_, err = js.PublishMsg(ctx, m)
						case "batch":
							evs := make([][]byte, size)
							for k := range evs {
								evs[k] = ev
							}
							m := nats.NewMsg(subj)
							m.Data = wire.EncodeBatch(evs)
							m.Header.Set(jetstream.MsgIDHeader, id)
							_, err = js.PublishMsg(ctx, m)
						case "atomic":
							err = publishAtomic(ctx, nc, subj, id, ev, size)
						}
						if err != nil {
							b.Errorf("%s: %v", mode, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			events := float64(rounds * per)
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/events, "cpu-µs/event")
			b.ReportMetric(events/time.Since(start).Seconds(), "events/s")
			stored := float64(rounds) // messages the stream holds: one per event but for the batch form
			if mode != "batch" {
				stored = events
			}
			b.ReportMetric(stored/events, "msgs/event")
		})
	}
}

// publishAtomic stores size copies of ev on subj as one atomic batch: every message but the last without a reply,
// the last with Nats-Batch-Commit, whose PubAck settles the batch.
func publishAtomic(ctx context.Context, nc *nats.Conn, subj, id string, ev []byte, size int) error {
	for k := 1; k <= size; k++ {
		m := nats.NewMsg(subj)
		m.Data = ev
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(k))
		m.Header.Set(jetstream.MsgIDHeader, id+"-"+strconv.Itoa(k))
		if k < size {
			if err := nc.PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		resp, err := nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return err
		}
		var ack struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
			Count int `json:"count"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return err
		}
		if ack.Error != nil {
			return fmt.Errorf("atomic batch: %s", ack.Error.Description)
		}
		if ack.Count != size {
			return fmt.Errorf("atomic batch stored %d of %d", ack.Count, size)
		}
	}
	return nil
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
