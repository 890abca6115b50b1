package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// A setup request that a fresh cluster does not answer (a stream without a leader yet) gets statusTimeout per
// attempt, not the whole setup time, and is sent again.
func TestSetupRetriesARequestNobodyAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
		defer cancel()
		var calls atomic.Int32
		start := time.Now()
		err := retrying(ctx, statusTimeout, func(ctx context.Context) error {
			if calls.Add(1) <= 2 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
		if err != nil {
			t.Fatalf("retrying: %v", err)
		}
		if took := time.Since(start); took >= setupTimeout/2 || calls.Load() != 3 {
			t.Fatalf("answered after %v and %d requests, want 3 requests of at most %v each", took, calls.Load(), statusTimeout)
		}
	})
}

func TestSetupGivesUpWithTheLastErrorWhenItsTimeEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		boom := errors.New("stream not found")
		if err := retrying(ctx, statusTimeout, func(context.Context) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("retrying = %v, want the last error", err)
		}
	})
}
