package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/setting"
)

// ownersStatus is a bucket status with a TTL; the other methods are not used.
type ownersStatus struct {
	jetstream.KeyValueStatus
	ttl time.Duration
}

func (s ownersStatus) TTL() time.Duration { return s.ttl }

// statusReader answers Status with ttl, except that its first `silent` requests get no answer at all (a stream
// without a leader yet): they return only when their context ends.
type statusReader struct {
	silent int32
	calls  atomic.Int32
	ttl    time.Duration
}

func (r *statusReader) Status(ctx context.Context) (jetstream.KeyValueStatus, error) {
	if r.calls.Add(1) <= r.silent {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return ownersStatus{ttl: r.ttl}, nil
}

func TestTheLeaseTTLCheckRetriesAStatusRequestNobodyAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), setupTimeout)
		defer cancel()
		r := &statusReader{silent: 2, ttl: 10 * time.Second}
		start := time.Now()
		if err := checkLeaseTTL(ctx, r, 10*time.Second); err != nil {
			t.Fatalf("check: %v", err)
		}
		if took := time.Since(start); took >= setupTimeout/2 || r.calls.Load() != 3 {
			t.Fatalf("answered after %v and %d requests, want 3 requests of at most %v each", took, r.calls.Load(), statusTimeout)
		}
	})
}

func TestTheLeaseTTLCheckRefusesAnotherTTLThanTheBuckets(t *testing.T) {
	err := checkLeaseTTL(t.Context(), &statusReader{ttl: 10 * time.Second}, 2*time.Second)
	var ce *setting.Error
	if !errors.As(err, &ce) || ce.Setting != "-lease-ttl" {
		t.Fatalf("err = %v, want a -lease-ttl config error", err)
	}
}
