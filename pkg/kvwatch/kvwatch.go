// Package kvwatch follows every key of a JetStream KV bucket and keeps following it through the loss of the
// server that feeds the watcher.
//
// A KV watcher is an ordered push consumer with one replica, placed by JetStream on a random server of the
// bucket's stream. When that server dies, the watcher goes quiet; nats.go notices only after two missed idle
// heartbeats of 5 s, so 10-20 s later. A caller that knows updates are due (every node writes a heartbeat each
// second; an owned room's lease is renewed four times a second) tells Follow so, and Follow restarts a watcher
// that has been quiet for Config.Stall while updates were due.
//
// A restarted watcher replays the current value of every key: callers must treat a replayed entry (same
// revision) as no news. A key deleted while no watcher ran may not be replayed at all, so after each replay
// Follow tells Config.Resync which keys the bucket holds, for the caller to forget the others.
//
// Follow runs in its caller's goroutine. It stops every watcher it starts; a watcher it gives up on is stopped by
// a goroutine of its own, which Follow waits for before it returns: stopping a watcher deletes its consumer
// through the JetStream API, which answers nothing for up to its 5 s timeout while the meta leader is being
// elected (as when this node has just been thawed or healed), and the next watcher must not wait for that.
package kvwatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the part of a KV bucket Follow needs.
type Bucket interface {
	WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// Config of Follow.
type Config struct {
	// Stall is how long a watcher may deliver nothing while Due reports updates due before it is restarted.
	Stall time.Duration
	// Due reports whether updates are expected now; nil means always. It is called when the watcher has been
	// quiet for Stall.
	Due func() bool
	// Retry is the wait after a watcher fails to start or ends; default 250 ms.
	Retry time.Duration
	// Resync, when set, gets the keys of each watcher's replay (the bucket's current keys), mapped to whether
	// their last operation is a put, just before apply gets the nil that ends the replay.
	Resync func(present map[string]bool)
	// OnRestart is told why a watcher that had delivered entries was given up (ErrStalled or ErrClosed), and how
	// long it had been quiet; nil ignores it. Called from Follow's goroutine.
	OnRestart func(reason error, quiet time.Duration)
}

var (
	// ErrStalled means the watcher delivered nothing for Config.Stall while updates were due.
	ErrStalled = errors.New("watcher stalled")
	// ErrClosed means the watcher's update channel closed.
	ErrClosed = errors.New("watcher closed")
)

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Stall <= 0 {
		return fmt.Errorf("stall %v: want a positive duration", c.Stall)
	}
	if c.Retry < 0 {
		return fmt.Errorf("retry %v: want 0 (default) or more", c.Retry)
	}
	return nil
}

// Follow calls apply for every entry of the bucket, in order, until ctx ends, starting a new watcher whenever
// the current one fails to start, closes or stalls. apply gets nil at the end of each watcher's replay of the
// current values.
func Follow(ctx context.Context, b Bucket, cfg Config, apply func(jetstream.KeyValueEntry)) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("follow bucket: %w", err)
	}
	if cfg.Retry == 0 {
		cfg.Retry = 250 * time.Millisecond
	}
	var stopping sync.WaitGroup
	defer stopping.Wait()
	for ctx.Err() == nil {
		delivered, quiet, err := followOnce(ctx, b, cfg, apply, &stopping)
		if err != nil && delivered && cfg.OnRestart != nil {
			cfg.OnRestart(err, quiet)
		}
		if err == nil || errors.Is(err, ErrStalled) {
			continue // ctx ended, or a stalled watcher: start the next one at once
		}
		select {
		case <-ctx.Done():
		case <-time.After(cfg.Retry):
		}
	}
	return nil
}

// followOnce runs one watcher until ctx ends (nil error), it closes or it stalls; then it leaves the watcher to
// be stopped by a goroutine that stopping counts.
func followOnce(ctx context.Context, b Bucket, cfg Config, apply func(jetstream.KeyValueEntry), stopping *sync.WaitGroup) (delivered bool, quiet time.Duration, err error) {
	w, err := b.WatchAll(ctx)
	if err != nil {
		return false, 0, fmt.Errorf("start watcher: %w", err)
	}
	defer func() {
		stopping.Add(1)
		go func() {
			defer stopping.Done()
			_ = w.Stop()
		}()
	}()
	stall := time.NewTimer(cfg.Stall)
	defer stall.Stop()
	last := time.Now()
	present := map[string]bool{} // keys of the replay; nil once it ended
	for {
		select {
		case <-ctx.Done():
			return delivered, 0, nil
		case <-stall.C:
			if cfg.Due != nil && !cfg.Due() {
				stall.Reset(cfg.Stall)
				continue
			}
			return delivered, time.Since(last), ErrStalled
		case e, ok := <-w.Updates():
			if !ok {
				return delivered, time.Since(last), ErrClosed
			}
			delivered = true
			last = time.Now()
			stall.Reset(cfg.Stall)
			switch {
			case e != nil && present != nil:
				present[e.Key()] = e.Operation() == jetstream.KeyValuePut
			case e == nil && present != nil:
				if cfg.Resync != nil {
					cfg.Resync(present)
				}
				present = nil
			}
			apply(e)
		}
	}
}
