// Package lease implements a fenced lease on one key of a JetStream KV bucket: the building block of room
// ownership.
//
// Contract:
//   - Acquire only by compare-and-swap: Create when the key is absent, or Takeover with the revision of the
//     holder being replaced. Renew by CAS on the revision held. Release deletes the key at the held revision.
//   - Every holder has an epoch chosen by the caller, strictly above every epoch used before for the key; it is
//     kept in the value (JSON readable with `nats kv get`), so fencing never depends on KV revisions alone.
//   - A local deadline on the monotonic clock, counted from when the last successful renewal was *sent*, tells
//     the holder when its lease may have run out anywhere: Valid must be checked before every externally visible
//     action, and Hold cancels the holder's work at the deadline.
//   - Errors are classified: ErrTaken/ErrLost (somebody else holds the key: stop now) versus anything else
//     (unknown outcome: timeout, no responders, no quorum: retry until the deadline).
//
// The package owns one goroutine per Hold call (the holder's work function), which Hold waits for before
// returning.
package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

var (
	// ErrTaken means an acquisition lost its compare-and-swap: another node holds the key.
	ErrTaken = errors.New("lease taken")
	// ErrLost means a renewal found that the key no longer carries our revision: step down now.
	ErrLost = errors.New("lease lost")
	// ErrExpired means the local deadline passed without a successful renewal.
	ErrExpired = errors.New("lease deadline passed")
	// ErrNoQuorum means this node stopped seeing a majority of the cluster.
	ErrNoQuorum = errors.New("no quorum reachable")
	// ErrReleased is the cause given to the holder's work when the lease is given up on purpose.
	ErrReleased = errors.New("lease released")
)

// KV is the part of a JetStream key-value bucket a lease needs.
type KV interface {
	Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error)
	Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error)
	Update(ctx context.Context, key string, value []byte, revision uint64) (uint64, error)
	Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
}

// Value is what a lease key holds.
type Value struct {
	Node    string `json:"node"`
	Epoch   uint64 `json:"epoch"`
	Since   int64  `json:"since"`             // acquisition time, Unix ms, informational
	Session string `json:"session,omitempty"` // the holder's session id (Session) when held under one
}

// MaxEpoch is the largest epoch a lease may carry: 2^53-1, the largest integer a JavaScript number holds exactly
// (epochs reach browsers in every tick). A value above it is corrupt, never the result of counting.
const MaxEpoch = 1<<53 - 1

// ErrCorrupt is returned by Parse for a value that is not a lease: it did not decode, or its node or epoch is
// missing or out of range.
var ErrCorrupt = errors.New("corrupt lease value")

// Parse decodes a lease value.
func Parse(b []byte) (Value, error) {
	var v Value
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode lease value: %w: %v", ErrCorrupt, err)
	}
	if v.Node == "" || v.Epoch == 0 || v.Epoch > MaxEpoch {
		return v, fmt.Errorf("decode lease value: %w: node or epoch missing or out of range in %.100q", ErrCorrupt, b)
	}
	return v, nil
}

// Config of leases.
type Config struct {
	TTL           time.Duration    // the bucket's TTL: a key not renewed for this long expires
	RenewInterval time.Duration    // time between renewals; default 250 ms
	Margin        time.Duration    // subtracted from TTL for the local deadline; default TTL/10
	Now           func() time.Time // monotonic clock; default time.Now
}

func (c Config) withDefaults() Config {
	if c.RenewInterval <= 0 {
		c.RenewInterval = 250 * time.Millisecond
	}
	if c.Margin <= 0 {
		c.Margin = c.TTL / 10
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate checks the relations between the settings.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.TTL < time.Second || c.TTL%time.Second != 0:
		return fmt.Errorf("lease TTL %v: want whole seconds, at least 1s", c.TTL)
	case c.Margin >= c.TTL:
		return fmt.Errorf("lease margin %v must be below the TTL %v", c.Margin, c.TTL)
	case c.RenewInterval*2 > c.TTL-c.Margin:
		return fmt.Errorf("renew interval %v leaves fewer than two renewals per lease (TTL %v, margin %v)", c.RenewInterval, c.TTL, c.Margin)
	}
	return nil
}

// readTimeout bounds the read with which a renewal whose CAS failed looks for its own late write.
const readTimeout = time.Second

// Lease is a held lease: renewed by itself (per-key renewals), or held under its node's Session, which it then
// lives and dies with.
type Lease struct {
	kv   KV
	key  string
	val  Value
	cfg  Config
	sess *Session // nil: renewed by itself

	renewMu  sync.Mutex // serialises renewals and release (held across the KV round trip)
	mu       sync.Mutex // guards rev and deadline (never held across I/O, so Valid never waits)
	rev      uint64
	deadline time.Time   // of a lease renewed by itself
	handed   atomic.Bool // HandOver succeeded: the lease is somebody else's
}

// IsTaken reports whether err says that the key is held by someone else: KV "key exists" (10071), its
// replicated-stream twin 10164 that errors.Is(err, ErrKeyExists) does not match, or a revision mismatch.
func IsTaken(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return true
		}
	}
	return false
}

// Acquire creates key with val if it is absent.
func Acquire(ctx context.Context, kv KV, key string, val Value, cfg Config) (*Lease, error) {
	cfg = cfg.withDefaults()
	b, err := json.Marshal(val)
	if err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	sent := cfg.Now()
	rev, err := kv.Create(ctx, key, b)
	if err != nil {
		if IsTaken(err) {
			return nil, fmt.Errorf("acquire lease %s: %w (%v)", key, ErrTaken, err)
		}
		return nil, fmt.Errorf("acquire lease %s: %w", key, err)
	}
	return &Lease{kv: kv, key: key, val: val, cfg: cfg, rev: rev, deadline: sent.Add(cfg.TTL - cfg.Margin)}, nil
}

// Takeover replaces the holder whose value is at revision prev (a holder that is unreachable): a CAS, so it
// fails with ErrTaken if that holder renewed or somebody else took over first. The replaced holder's next
// renewal fails with ErrLost; until it notices, fencing by epoch keeps its output out.
func Takeover(ctx context.Context, kv KV, key string, val Value, prev uint64, cfg Config) (*Lease, error) {
	cfg = cfg.withDefaults()
	b, err := json.Marshal(val)
	if err != nil {
		return nil, fmt.Errorf("take over lease %s: %w", key, err)
	}
	sent := cfg.Now()
	rev, err := kv.Update(ctx, key, b, prev)
	if err != nil {
		if IsTaken(err) {
			return nil, fmt.Errorf("take over lease %s: %w (%v)", key, ErrTaken, err)
		}
		return nil, fmt.Errorf("take over lease %s: %w", key, err)
	}
	return &Lease{kv: kv, key: key, val: val, cfg: cfg, rev: rev, deadline: sent.Add(cfg.TTL - cfg.Margin)}, nil
}

// AcquireIn creates key for the node of sess, under sess, if it is absent. The lease is valid as long as the
// session.
func AcquireIn(ctx context.Context, kv KV, key string, val Value, sess *Session) (*Lease, error) {
	val.Node, val.Session = sess.Node(), sess.ID()
	l, err := Acquire(ctx, kv, key, val, sess.cfg)
	if err != nil {
		return nil, err
	}
	l.sess = sess
	return l, nil
}

// TakeoverIn replaces the holder at revision prev by the node of sess, under sess (see Takeover).
func TakeoverIn(ctx context.Context, kv KV, key string, val Value, prev uint64, sess *Session) (*Lease, error) {
	val.Node, val.Session = sess.Node(), sess.ID()
	l, err := Takeover(ctx, kv, key, val, prev, sess.cfg)
	if err != nil {
		return nil, err
	}
	l.sess = sess
	return l, nil
}

// Adopt takes up a lease that another node wrote for sess (a handoff): val, at revision rev, must name sess.
// Nothing is written: the lease is sess's as soon as the key says so.
func Adopt(kv KV, key string, val Value, rev uint64, sess *Session) (*Lease, error) {
	if val.Node != sess.Node() || val.Session != sess.ID() {
		return nil, fmt.Errorf("adopt lease %s: %w: it names %s/%s, not this session", key, ErrTaken, val.Node, val.Session)
	}
	return &Lease{kv: kv, key: key, val: val, cfg: sess.cfg, sess: sess, rev: rev}, nil
}

// HandOver gives the lease to the node of another session: it rewrites the key, by CAS on the revision held,
// with val (which names that node, its session and a higher epoch). The holder must have stopped acting first.
// On success this lease is over; ErrTaken means it was lost anyway.
func (l *Lease) HandOver(ctx context.Context, val Value) error {
	l.renewMu.Lock()
	defer l.renewMu.Unlock()
	l.mu.Lock()
	rev := l.rev
	l.deadline = time.Time{}
	l.mu.Unlock()
	b, err := json.Marshal(val)
	if err != nil {
		return fmt.Errorf("hand over lease %s: %w", l.key, err)
	}
	if _, err := l.kv.Update(ctx, l.key, b, rev); err != nil {
		if IsTaken(err) {
			return fmt.Errorf("hand over lease %s: %w (%v)", l.key, ErrTaken, err)
		}
		return fmt.Errorf("hand over lease %s: %w", l.key, err)
	}
	l.handed.Store(true)
	return nil
}

// Key is the leased key.
func (l *Lease) Key() string { return l.key }

// Value is the value written by this holder.
func (l *Lease) Value() Value { return l.val }

// Epoch is this holder's fencing epoch.
func (l *Lease) Epoch() uint64 { return l.val.Epoch }

// Revision is the KV revision of the last successful write.
func (l *Lease) Revision() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev
}

// Deadline is when the lease may have run out anywhere, by the local monotonic clock: its session's, for a lease
// held under one.
func (l *Lease) Deadline() time.Time {
	if l.sess != nil {
		if l.handed.Load() {
			return time.Time{}
		}
		return l.sess.Deadline()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.deadline
}

// Session is the session the lease is held under, nil for a lease renewed by itself.
func (l *Lease) Session() *Session { return l.sess }

// Confirm returns nil once the lease is known to have been held after the call began: a renewal of the lease,
// or of its session (shared with the session's other leases: see Session.Confirm). Errors are Renew's.
func (l *Lease) Confirm(ctx context.Context) error {
	if l.sess != nil {
		if l.handed.Load() {
			return fmt.Errorf("confirm lease %s: %w: handed over", l.key, ErrLost)
		}
		return l.sess.Confirm(ctx, l.cfg.Now())
	}
	return l.Renew(ctx)
}

// Valid reports whether the local deadline is still ahead.
func (l *Lease) Valid() bool {
	return l.cfg.Now().Before(l.Deadline())
}

// Renew extends the lease by CAS on the held revision. ErrLost means step down now; any other error is an
// unknown outcome to retry until the deadline.
//
// A renewal whose reply was lost may still have been written: the next CAS then fails although the key holds our
// own value. Renew tells the two apart by reading the key: when it holds our value (node and epoch, which no
// other holder shares) it adopts that revision and returns an unknown-outcome error without extending the
// deadline, so the next renewal succeeds. A stale read can only make us retry with a revision that fails again;
// the deadline, extended only by a successful CAS, still bounds how long we act.
func (l *Lease) Renew(ctx context.Context) error {
	if l.sess != nil {
		return l.Confirm(ctx)
	}
	l.renewMu.Lock()
	defer l.renewMu.Unlock()
	b, _ := json.Marshal(l.val)
	l.mu.Lock()
	rev := l.rev
	l.mu.Unlock()
	sent := l.cfg.Now()
	newRev, err := l.kv.Update(ctx, l.key, b, rev)
	if err != nil {
		if IsTaken(err) {
			// The renewal's context may be spent by now (a slow Update): the read gets its own.
			gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
			cur, gerr := l.kv.Get(gctx, l.key)
			cancel()
			switch {
			case gerr == nil:
				if v, perr := Parse(cur.Value()); perr == nil && v.Node == l.val.Node && v.Epoch == l.val.Epoch {
					l.mu.Lock()
					if cur.Revision() > l.rev {
						l.rev = cur.Revision()
					}
					l.mu.Unlock()
					return fmt.Errorf("renew lease %s: an earlier renewal was written after all; retrying at revision %d", l.key, cur.Revision())
				}
			case !errors.Is(gerr, jetstream.ErrKeyNotFound) && !errors.Is(gerr, jetstream.ErrKeyDeleted):
				// Unknown: the key may well hold our own late write. The deadline bounds how long we retry.
				return fmt.Errorf("renew lease %s: revision moved and the key could not be read: %w", l.key, gerr)
			}
			return fmt.Errorf("renew lease %s: %w (%v)", l.key, ErrLost, err)
		}
		return fmt.Errorf("renew lease %s: %w", l.key, err)
	}
	l.mu.Lock()
	l.rev = newRev
	if d := sent.Add(l.cfg.TTL - l.cfg.Margin); d.After(l.deadline) {
		l.deadline = d
	}
	l.mu.Unlock()
	return nil
}

// Release deletes the key at the held revision, so the next holder can start at once. It does nothing to a key
// that somebody else already holds.
func (l *Lease) Release(ctx context.Context) error {
	l.renewMu.Lock()
	defer l.renewMu.Unlock()
	if l.handed.Load() {
		return nil
	}
	l.mu.Lock()
	l.deadline = time.Time{}
	rev := l.rev
	l.mu.Unlock()
	if err := l.kv.Delete(ctx, l.key, jetstream.LastRevision(rev)); err != nil {
		if IsTaken(err) {
			return nil
		}
		return fmt.Errorf("release lease %s: %w", l.key, err)
	}
	return nil
}

// HoldConfig tunes Hold.
type HoldConfig struct {
	// Quorum reports whether this node still reaches a majority of the cluster. When it has been false for
	// QuorumGrace, the work is cancelled with ErrNoQuorum: a node cut off on the minority side stops even
	// though it cannot learn that it lost the lease.
	Quorum      func() bool
	QuorumGrace time.Duration
	// OnRenew, when set, is called after every renewal attempt with its outcome and latency (for metrics).
	OnRenew func(err error, took time.Duration)
	// BeforeRenew, when set, is called before every renewal; fault injection uses it to stall renewals the way
	// a frozen process would.
	BeforeRenew func()
}

// Hold renews the lease every RenewInterval while work runs under a context that is cancelled, with the reason
// as its cause, when: a renewal reports ErrLost; the local deadline passes (renewals kept failing with unknown
// outcomes, e.g. no stream leader); quorum has been lost for QuorumGrace; or ctx ends. Hold waits for work to
// return and returns the cause (nil when work returned by itself with ctx still live).
//
// A lease held under a session is not renewed here (the session's owner renews the session): Hold cancels the
// work when the session is lost, and at the session's deadline.
func (l *Lease) Hold(ctx context.Context, hc HoldConfig, work func(ctx context.Context) error) error {
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- work(wctx) }()
	var sessionLost <-chan struct{}
	if l.sess != nil {
		sessionLost = l.sess.Done()
	}

	renew := time.NewTicker(l.cfg.RenewInterval)
	defer renew.Stop()
	deadline := time.NewTimer(time.Until(l.Deadline()))
	defer deadline.Stop()
	var noQuorumSince time.Time

	stop := func(cause error) error {
		cancel(cause)
		<-done
		return cause
	}
	for {
		select {
		case err := <-done:
			if c := context.Cause(wctx); c != nil && !errors.Is(c, context.Canceled) {
				return c
			}
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		case <-ctx.Done():
			return stop(context.Cause(ctx))
		case <-sessionLost:
			return stop(fmt.Errorf("lease %s: %w", l.key, l.sess.Err()))
		case <-deadline.C:
			if !l.Valid() {
				return stop(ErrExpired)
			}
			deadline.Reset(time.Until(l.Deadline()))
		case <-renew.C:
			if hc.Quorum != nil {
				if hc.Quorum() {
					noQuorumSince = time.Time{}
				} else if noQuorumSince.IsZero() {
					noQuorumSince = l.cfg.Now()
				}
				if !noQuorumSince.IsZero() && l.cfg.Now().Sub(noQuorumSince) >= hc.QuorumGrace {
					return stop(ErrNoQuorum)
				}
			}
			if l.sess != nil {
				deadline.Reset(time.Until(l.Deadline())) // the session's renewals move it
				continue
			}
			if hc.BeforeRenew != nil {
				hc.BeforeRenew()
			}
			rctx, rcancel := context.WithTimeout(ctx, l.cfg.RenewInterval*2)
			start := l.cfg.Now()
			err := l.Renew(rctx)
			rcancel()
			if hc.OnRenew != nil {
				hc.OnRenew(err, l.cfg.Now().Sub(start))
			}
			if errors.Is(err, ErrLost) {
				return stop(err)
			}
			if err == nil {
				deadline.Reset(time.Until(l.Deadline()))
			}
		}
	}
}
