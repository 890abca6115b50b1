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
// once, each routed on its own, the first answer wins, and a pair that gets no answer within readAttempt (a
// healthy cluster answers in a few milliseconds) is sent again, within the read's overall bound. Replay's
// batched reads (batchread.go) do the same with each batch, and also leave an answer that stops for readAttempt.
const readAttempt = 50 * time.Millisecond

// readFresh is a read of type T in the way described above: read is called twice at a time with a readAttempt
// deadline until one call returns something other than a deadline, or until total has passed (or ctx ended); it
// returns that call's result, or the last error. The call that lost is cancelled and waited for: no call of read
// outlives readFresh, so read may use its caller's variables.
func readFresh[T any](ctx context.Context, total time.Duration, read func(ctx context.Context) (T, error)) (T, error) {
	type answer struct {
		v   T
		err error
	}
	end := time.Now().Add(total)
	for {
		d := time.Now().Add(readAttempt)
		if end.Before(d) {
			d = end
		}
		actx, cancel := context.WithDeadline(ctx, d)
		answers := make(chan answer, 2)
		for range 2 {
			go func() {
				v, err := read(actx)
				answers <- answer{v, err}
			}()
		}
		a, waiting := <-answers, 1
		if a.err != nil && errors.Is(a.err, context.DeadlineExceeded) {
			a, waiting = <-answers, 0 // the other one may still answer within the attempt
		}
		cancel()
		for ; waiting > 0; waiting-- {
			<-answers // cancelled: it returns at once
		}
		if a.err == nil || ctx.Err() != nil || !errors.Is(a.err, context.DeadlineExceeded) || !time.Now().Before(end) {
			return a.v, a.err
		}
	}
}
