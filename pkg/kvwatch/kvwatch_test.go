package kvwatch

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The fakes stand in for the watcher's channel only: when a real watcher stalls is measured against a real
// cluster in pkg/node (TestMembershipKeepsTheLiveNodesWhenTheNodeServingItsWatcherDies).

type entry struct {
	key string
	rev uint64
	op  jetstream.KeyValueOp
}

func (e entry) Bucket() string                  { return "b" }
func (e entry) Key() string                     { return e.key }
func (e entry) Value() []byte                   { return nil }
func (e entry) Revision() uint64                { return e.rev }
func (e entry) Created() time.Time              { return time.Time{} }
func (e entry) Delta() uint64                   { return 0 }
func (e entry) Operation() jetstream.KeyValueOp { return e.op }

type watcher struct {
	ch      chan jetstream.KeyValueEntry
	hang    chan struct{} // Stop waits for it to close, as a real Stop waits for the JetStream API; nil: no wait
	stopped atomic.Bool
}

func (w *watcher) Updates() <-chan jetstream.KeyValueEntry { return w.ch }

func (w *watcher) Stop() error {
	if w.hang != nil {
		<-w.hang
	}
	w.stopped.Store(true)
	return nil
}

// bucket hands out watchers; failures makes the next WatchAll calls fail; hang, when set, is every new
// watcher's.
type bucket struct {
	mu       sync.Mutex
	watchers []*watcher
	failures int
	hang     chan struct{}
}

func (b *bucket) WatchAll(context.Context, ...jetstream.WatchOpt) (jetstream.KeyWatcher, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures > 0 {
		b.failures--
		return nil, errors.New("no responders")
	}
	w := &watcher{ch: make(chan jetstream.KeyValueEntry, 16), hang: b.hang}
	b.watchers = append(b.watchers, w)
	return w, nil
}

func (b *bucket) started() []*watcher {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.watchers)
}

// run starts Follow in the bubble and returns what it applied (keys, "<end>" for nil) and a stop function that
// waits for it.
func run(t *testing.T, b *bucket, cfg Config) (applied func() []string, restarts func() []error, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var mu sync.Mutex
	var got []string
	var why []error
	cfg.OnRestart = func(reason error, _ time.Duration) {
		mu.Lock()
		why = append(why, reason)
		mu.Unlock()
	}
	done := make(chan error)
	go func() {
		done <- Follow(ctx, b, cfg, func(e jetstream.KeyValueEntry) {
			mu.Lock()
			defer mu.Unlock()
			if e == nil {
				got = append(got, "<end>")
				return
			}
			got = append(got, e.Key())
		})
	}()
	applied = func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }
	restarts = func() []error { mu.Lock(); defer mu.Unlock(); return slices.Clone(why) }
	stop = func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Follow: %v", err)
		}
	}
	return applied, restarts, stop
}

func TestAQuietWatcherIsRestartedOnlyWhileUpdatesAreDue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &bucket{}
		var dueMu sync.Mutex
		due := false
		applied, restarts, stop := run(t, b, Config{Stall: 2 * time.Second, Due: func() bool {
			dueMu.Lock()
			defer dueMu.Unlock()
			return due
		}})
		synctest.Wait()
		w := b.started()[0]
		w.ch <- entry{key: "lobby", rev: 1, op: jetstream.KeyValuePut}
		w.ch <- nil

		// Nothing due: a quiet watcher is left alone however long.
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(b.started()); n != 1 {
			t.Fatalf("%d watchers started while nothing was due, want 1", n)
		}

		// Updates due: the quiet watcher is stopped and another starts after Stall.
		dueMu.Lock()
		due = true
		dueMu.Unlock()
		time.Sleep(2*time.Second + time.Millisecond)
		synctest.Wait()
		ws := b.started()
		if len(ws) != 2 || !ws[0].stopped.Load() {
			t.Fatalf("watchers %d (first stopped %v), want the first stopped and a second", len(ws), ws[0].stopped.Load())
		}
		if r := restarts(); len(r) != 1 || !errors.Is(r[0], ErrStalled) {
			t.Fatalf("restarts %v, want one ErrStalled", r)
		}
		// An active watcher is not restarted.
		for i := range 10 {
			ws[1].ch <- entry{key: "lobby", rev: uint64(2 + i), op: jetstream.KeyValuePut}
			time.Sleep(time.Second)
		}
		synctest.Wait()
		if n := len(b.started()); n != 2 {
			t.Fatalf("%d watchers after steady updates, want 2", n)
		}
		stop()
		if !b.started()[1].stopped.Load() {
			t.Fatal("the last watcher was not stopped")
		}
		if got := applied(); len(got) != 12 || got[0] != "lobby" || got[1] != "<end>" {
			t.Fatalf("applied %v", got)
		}
	})
}

// Stopping a stalled watcher can wait seconds for the JetStream API; the next watcher starts at once all the
// same, and Follow returns only once every Stop has.
func TestTheNextWatcherDoesNotWaitForTheStalledOneToStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &bucket{hang: make(chan struct{})}
		_, restarts, stop := run(t, b, Config{Stall: time.Second})
		synctest.Wait()
		b.started()[0].ch <- nil
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		ws := b.started()
		if len(ws) != 2 || ws[0].stopped.Load() {
			t.Fatalf("%d watchers (first stopped: %v), want a second one while the first is still stopping", len(ws), ws[0].stopped.Load())
		}
		if r := restarts(); len(r) != 1 || !errors.Is(r[0], ErrStalled) {
			t.Fatalf("restarts %v, want one ErrStalled", r)
		}
		ws[1].ch <- entry{key: "lobby", rev: 1, op: jetstream.KeyValuePut}
		returned := make(chan struct{})
		go func() {
			stop()
			close(returned)
		}()
		synctest.Wait()
		select {
		case <-returned:
			t.Fatal("Follow returned while a watcher was still stopping")
		default:
		}
		close(b.hang)
		<-returned
		for i, w := range b.started() {
			if !w.stopped.Load() {
				t.Errorf("watcher %d not stopped", i)
			}
		}
	})
}

func TestAWatcherThatFailsToStartOrClosesIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &bucket{failures: 3}
		_, restarts, stop := run(t, b, Config{Stall: time.Hour, Retry: time.Second})
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if n := len(b.started()); n != 0 {
			t.Fatalf("%d watchers after 2.5 s with retries 1 s apart and 3 failures, want 0", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		ws := b.started()
		if len(ws) != 1 {
			t.Fatalf("%d watchers after the failures, want 1", len(ws))
		}
		ws[0].ch <- nil
		close(ws[0].ch)
		time.Sleep(time.Second + time.Millisecond)
		synctest.Wait()
		if n := len(b.started()); n != 2 {
			t.Fatalf("%d watchers after the first closed, want 2", n)
		}
		if r := restarts(); len(r) != 1 || !errors.Is(r[0], ErrClosed) {
			t.Fatalf("restarts %v, want one ErrClosed (failed starts are not restarts)", r)
		}
		stop()
	})
}

func TestEachReplayReportsTheKeysTheBucketHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &bucket{}
		var mu sync.Mutex
		var syncs []map[string]bool
		_, _, stop := run(t, b, Config{Stall: time.Second, Resync: func(present map[string]bool) {
			mu.Lock()
			syncs = append(syncs, present)
			mu.Unlock()
		}})
		synctest.Wait()
		w := b.started()[0]
		w.ch <- entry{key: "a", rev: 1, op: jetstream.KeyValuePut}
		w.ch <- entry{key: "b", rev: 2, op: jetstream.KeyValueDelete}
		w.ch <- nil
		w.ch <- entry{key: "c", rev: 3, op: jetstream.KeyValuePut} // live, after the replay
		time.Sleep(1500 * time.Millisecond)                        // stalls: a second watcher replays
		synctest.Wait()
		w2 := b.started()[1]
		w2.ch <- entry{key: "c", rev: 3, op: jetstream.KeyValuePut}
		w2.ch <- nil
		synctest.Wait()
		stop()
		mu.Lock()
		defer mu.Unlock()
		want := []map[string]bool{{"a": true, "b": false}, {"c": true}}
		if len(syncs) != 2 || !maps.Equal(syncs[0], want[0]) || !maps.Equal(syncs[1], want[1]) {
			t.Fatalf("resyncs %v, want %v", syncs, want)
		}
	})
}

func TestConfigNeedsAStall(t *testing.T) {
	if err := (Config{}).Validate(); err == nil {
		t.Fatal("a zero stall validated")
	}
	if err := Follow(t.Context(), &bucket{}, Config{Stall: time.Second, Retry: -1}, func(jetstream.KeyValueEntry) {}); err == nil {
		t.Fatal("Follow accepted a negative retry")
	}
}
