package room

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// A read is sent twice at once; the first answer wins, so one replica that does not answer costs nothing. The
// call that lost is cancelled and has returned when readFresh does (a caller's loop variable it reads may change
// right after).
func TestAReadIsSentTwiceAndTheFirstAnswerWins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls, running atomic.Int32
		start := time.Now()
		v, err := readFresh(t.Context(), 2*time.Second, func(ctx context.Context) (int, error) {
			running.Add(1)
			defer running.Add(-1)
			if calls.Add(1) == 1 {
				<-ctx.Done() // routed to a replica that does not answer
				return 0, ctx.Err()
			}
			return 42, nil
		})
		if err != nil || v != 42 || time.Since(start) != 0 {
			t.Fatalf("read %d, %v after %v; want 42 at once", v, err, time.Since(start))
		}
		if n := running.Load(); n != 0 {
			t.Fatalf("%d calls of read still running after readFresh returned", n)
		}
	})
}

// While a read goes unanswered, another pair is sent after readAttempt, then after twice as long each time,
// within the overall bound; any other outcome is final.
func TestUnansweredReadsAreSentAgainWithinTheirBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		start := time.Now()
		v, err := readFresh(t.Context(), 2*time.Second, func(ctx context.Context) (int, error) {
			if calls.Add(1) <= 4 {
				<-ctx.Done()
				return 0, ctx.Err()
			}
			return 7, nil
		})
		if err != nil || v != 7 || time.Since(start) != 3*readAttempt {
			t.Fatalf("read %d, %v after %v and %d calls; want 7 after %v", v, err, time.Since(start), calls.Load(), 3*readAttempt)
		}
		start = time.Now()
		_, err = readFresh(t.Context(), time.Second, func(ctx context.Context) (int, error) {
			<-ctx.Done()
			return 0, ctx.Err()
		})
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != time.Second {
			t.Fatalf("never answered: %v after %v, want the deadline after 1s", err, time.Since(start))
		}
		boom := errors.New("stream not found")
		calls.Store(0)
		if _, err := readFresh(t.Context(), time.Second, func(context.Context) (int, error) { calls.Add(1); return 0, boom }); !errors.Is(err, boom) {
			t.Fatalf("a final error: %v", err)
		}
		if calls.Load() > 2 {
			t.Fatalf("a final error was sent again: %d calls", calls.Load())
		}
	})
}

// An answer that comes after readAttempt (busy servers, not a silent replica) is taken: the pairs sent before
// stay in flight while another is sent, and every call has returned when readFresh does.
func TestALateAnswerIsTakenWhileTheNextPairIsOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls, running atomic.Int32
		start := time.Now()
		v, err := readFresh(t.Context(), 2*time.Second, func(ctx context.Context) (int, error) {
			running.Add(1)
			defer running.Add(-1)
			if calls.Add(1) > 2 {
				<-ctx.Done()
				return 0, ctx.Err()
			}
			select {
			case <-time.After(120 * time.Millisecond):
				return 5, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		})
		if err != nil || v != 5 || time.Since(start) != 120*time.Millisecond {
			t.Fatalf("read %d, %v after %v; want 5 after 120ms", v, err, time.Since(start))
		}
		if n := calls.Load(); n != 4 {
			t.Fatalf("%d calls, want 4 (a pair at once, one more after %v)", n, readAttempt)
		}
		if n := running.Load(); n != 0 {
			t.Fatalf("%d calls of read still running after readFresh returned", n)
		}
	})
}
