package room

import (
	"context"
	"errors"
	"time"
)

// A direct get (a KV Get, a stream message get) is answered by whichever replica of the stream the request is
// routed to, and a frozen or cut-off replica keeps its routes open for the seconds its peers' pings take to give
// up: about a third of the reads routed to it wait for their whole timeout (docs/FAILOVER.md, nats-facts). On a
// takeover the frozen replica is usually the old owner's. So the reads on a takeover's path are sent twice at
// once, each routed on its own, the first answer wins, and while no answer has come another pair is sent after
// readAttempt (a healthy cluster answers in a few milliseconds), then after twice as long each time, within the
// read's overall bound. The pairs sent before stay in flight: when a node takes over hundreds of rooms at once,
// the answers take longer than readAttempt only because the servers are busy, and a late answer is as good as any
// (cancelling a pair after readAttempt would throw those answers away and load the servers with the same reads
// again, which keeps the answers late). Replay's batched reads (batchread.go) request each batch in pairs too (a
// late answer to an earlier pair counts there as well), and also leave an answer that stops for readAttempt.
const readAttempt = 50 * time.Millisecond

// readFresh is a read of type T in the way described above: read is called twice at once, and twice more after
// readAttempt, 2 readAttempt, 4 readAttempt ... while no call has returned something other than a deadline, until
// total has passed (or ctx ended); it returns the first such call's result, or the last error. The calls still
// running then are cancelled and waited for: no call of read outlives readFresh, so read may use its caller's
// variables.
func readFresh[T any](ctx context.Context, total time.Duration, read func(ctx context.Context) (T, error)) (T, error) {
	type answer struct {
		v   T
		err error
	}
	rctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	answers := make(chan answer, 2)
	running := 0
	send := func() {
		for range 2 {
			running++
			go func() {
				v, err := read(rctx)
				answers <- answer{v, err}
			}()
		}
	}
	// Every call still running is cancelled and waited for before readFresh returns.
	defer func() {
		cancel()
		for ; running > 0; running-- {
			<-answers
		}
	}()
	send()
	wait := readAttempt
	again := time.NewTimer(wait)
	defer again.Stop()
	var last answer
	for {
		select {
		case a := <-answers:
			running--
			if a.err == nil || !errors.Is(a.err, context.DeadlineExceeded) || ctx.Err() != nil {
				return a.v, a.err
			}
			last = a
			if running == 0 {
				return last.v, last.err // the overall bound has passed
			}
		case <-again.C:
			if rctx.Err() != nil {
				continue // the calls are returning with the deadline
			}
			send()
			wait *= 2
			again.Reset(wait)
		}
	}
}
