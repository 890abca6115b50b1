package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A Session is a node's lease on its own key of the leases bucket: the one write the node renews every
// RenewInterval, whatever the number of rooms it holds. A room lease held under a session (Value.Session names
// it) is written once, when it is acquired, and stays valid exactly as long as the session: its deadline is the
// session's, and it is lost when the session is. So a node pays a constant number of replicated writes per
// renewal period, and an idle room costs no write at all.
//
// Contract, on top of the package's:
//   - A session key is SessionKey(node) = "node.<name>" (room keys have no dot). Its value names the node and a
//     random session id; every write is a CAS on the revision held, with a per-message TTL of the lease TTL (the
//     bucket's LimitMarkerTTL allows it), so the key of a node that stops renewing expires by itself.
//   - Another node ends a silent session by deleting its key at the revision it saw (FenceSession): a CAS, which
//     fails if the session renewed meanwhile. The session's next renewal then fails (ErrLost), and its rooms are
//     free to be taken over, by CAS on their own keys.
//   - Room leases of a session that is gone (key absent, or holding another id) are held by nobody.
type Session struct {
	kv  KV
	pub Publisher
	sub string // the key's subject ($KV.<bucket>.<key>)
	key string
	val SessionValue
	cfg Config

	renewMu   sync.Mutex    // serialises renewals and Close (held across the round trip)
	mu        sync.Mutex    // guards the fields below; never held across I/O
	rev       uint64        // guarded by mu
	deadline  time.Time     // guarded by mu
	confirmed time.Time     // guarded by mu: send time of the latest successful write
	lost      chan struct{} // closed when the session is lost or closed
	lostErr   error         // guarded by mu: why
}

// SessionValue is what a session key holds.
type SessionValue struct {
	Node    string `json:"node"`
	Session string `json:"session"` // random, unique to this session
	Since   int64  `json:"since"`   // start, Unix ms, informational
}

// Publisher publishes a JetStream message (jetstream.JetStream does).
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// sessionPrefix starts every session key; room names cannot contain its dot.
const sessionPrefix = "node."

// SessionKey is the key of node's session.
func SessionKey(node string) string { return sessionPrefix + node }

// SessionNode returns the node whose session key is key, if it is one.
func SessionNode(key string) (string, bool) {
	node, ok := strings.CutPrefix(key, sessionPrefix)
	return node, ok && node != ""
}

// ParseSession decodes a session value.
func ParseSession(b []byte) (SessionValue, error) {
	var v SessionValue
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("decode session value: %w: %v", ErrCorrupt, err)
	}
	if v.Node == "" || v.Session == "" {
		return v, fmt.Errorf("decode session value: %w: node or session missing in %.100q", ErrCorrupt, b)
	}
	return v, nil
}

// OpenSession starts a session of node in the bucket whose key-value handle is kv: it creates the session key,
// or replaces by CAS the one a previous run of this node left (which no longer guards anything: its rooms are
// taken over or reclaimed).
func OpenSession(ctx context.Context, kv KV, pub Publisher, bucket, node string, cfg Config) (*Session, error) {
	cfg = cfg.withDefaults()
	id, err := randomID()
	if err != nil {
		return nil, err
	}
	key := SessionKey(node)
	s := &Session{
		kv: kv, pub: pub, sub: "$KV." + bucket + "." + key, key: key, cfg: cfg, lost: make(chan struct{}),
		val: SessionValue{Node: node, Session: id, Since: cfg.Now().UnixMilli()},
	}
	var prev uint64
	switch e, err := kv.Get(ctx, key); {
	case err == nil, errors.Is(err, jetstream.ErrKeyDeleted) && e != nil:
		prev = e.Revision()
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
	default:
		return nil, fmt.Errorf("open session %s: read the key: %w", key, err)
	}
	err = s.write(ctx, prev)
	if last, ok := wrongLastSequence(err); ok && last != prev {
		// The key's last revision is not the one read: a delete marker (a fence, an expiry), which a KV read
		// does not return, or a lagging replica answered the read. The key is this node's own: take it over at
		// the revision the server named.
		err = s.write(ctx, last)
	}
	if err != nil {
		if IsTaken(err) {
			return nil, fmt.Errorf("open session %s: %w (%v)", key, ErrTaken, err)
		}
		return nil, fmt.Errorf("open session %s: %w", key, err)
	}
	return s, nil
}

// wrongLastSequence reads the subject's actual last sequence from a refused expected-last-sequence publish
// ("wrong last sequence: N", error 10071).
func wrongLastSequence(err error) (uint64, bool) {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence {
		return 0, false
	}
	_, n, ok := strings.Cut(apiErr.Description, "wrong last sequence: ")
	if !ok {
		return 0, false
	}
	v, perr := strconv.ParseUint(strings.TrimSpace(n), 10, 64)
	return v, perr == nil
}

func randomID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// write stores the session's value by CAS on prev, with the lease TTL, and on success takes the new revision and
// extends the deadline from the send time.
func (s *Session) write(ctx context.Context, prev uint64) error {
	b, _ := json.Marshal(s.val)
	m := nats.NewMsg(s.sub)
	m.Data = b
	m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(prev, 10))
	m.Header.Set(jetstream.MsgTTLHeader, s.cfg.TTL.String())
	sent := s.cfg.Now()
	ack, err := s.pub.PublishMsg(ctx, m)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.rev = ack.Sequence
	if d := sent.Add(s.cfg.TTL - s.cfg.Margin); d.After(s.deadline) {
		s.deadline = d
	}
	if sent.After(s.confirmed) {
		s.confirmed = sent
	}
	s.mu.Unlock()
	return nil
}

// ID is the session's random id, which the room leases held under it carry.
func (s *Session) ID() string { return s.val.Session }

// Node is the session's node.
func (s *Session) Node() string { return s.val.Node }

// Key is the session's key.
func (s *Session) Key() string { return s.key }

// Revision is the KV revision of the session's last successful write.
func (s *Session) Revision() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev
}

// Confirmed is the send time of the session's latest successful write.
func (s *Session) Confirmed() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.confirmed
}

// Deadline is when the session may have run out anywhere, by the local monotonic clock (zero once lost).
func (s *Session) Deadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lostErr != nil {
		return time.Time{}
	}
	return s.deadline
}

// Valid reports whether the session is neither lost nor past its deadline.
func (s *Session) Valid() bool { return s.cfg.Now().Before(s.Deadline()) }

// Done is closed when the session is lost (Err says why) or closed.
func (s *Session) Done() <-chan struct{} { return s.lost }

// Err is why the session ended, nil while it has not.
func (s *Session) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lostErr
}

func (s *Session) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lostErr == nil {
		s.lostErr = err
		close(s.lost)
	}
}

// Abandon ends the session here, with cause, without touching its key: a session past its deadline guards
// nothing any more, and its node starts a new one.
func (s *Session) Abandon(cause error) { s.end(cause) }

// Renew extends the session by CAS on the revision held. ErrLost means the session is over (fenced or expired):
// every room lease held under it is lost. Any other error is an unknown outcome to retry until the deadline. A
// renewal whose reply was lost but which was written makes the next CAS fail against our own value: the key is
// read, and our own value's revision adopted (without extending the deadline), as Lease.Renew does.
func (s *Session) Renew(ctx context.Context) error {
	s.renewMu.Lock()
	defer s.renewMu.Unlock()
	return s.renewLocked(ctx)
}

func (s *Session) renewLocked(ctx context.Context) error {
	if err := s.Err(); err != nil {
		return err
	}
	err := s.write(ctx, s.Revision())
	if err == nil {
		return nil
	}
	if !IsTaken(err) {
		return fmt.Errorf("renew session %s: %w", s.key, err)
	}
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readTimeout)
	cur, gerr := s.kv.Get(gctx, s.key)
	cancel()
	switch {
	case gerr == nil:
		if v, perr := ParseSession(cur.Value()); perr == nil && v == s.val {
			s.mu.Lock()
			s.rev = max(s.rev, cur.Revision())
			s.mu.Unlock()
			return fmt.Errorf("renew session %s: an earlier renewal was written after all; retrying at revision %d", s.key, cur.Revision())
		}
	case !errors.Is(gerr, jetstream.ErrKeyNotFound) && !errors.Is(gerr, jetstream.ErrKeyDeleted):
		return fmt.Errorf("renew session %s: revision moved and the key could not be read: %w", s.key, gerr)
	}
	lost := fmt.Errorf("renew session %s: %w (%v)", s.key, ErrLost, err)
	s.end(lost)
	return lost
}

// Confirm returns nil once a write of the session sent at or after after has succeeded, renewing if none has:
// an owner that was paused, or out of contact, confirms this way that its session (and so every room lease
// held under it) was not taken from it meanwhile. Concurrent callers share one renewal.
func (s *Session) Confirm(ctx context.Context, after time.Time) error {
	s.renewMu.Lock()
	defer s.renewMu.Unlock()
	if err := s.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	done := !s.confirmed.Before(after)
	s.mu.Unlock()
	if done {
		return nil
	}
	return s.renewLocked(ctx)
}

// Close ends the session: it deletes the key at the held revision (its rooms should be released first).
func (s *Session) Close(ctx context.Context) error {
	s.renewMu.Lock()
	defer s.renewMu.Unlock()
	rev := s.Revision()
	s.end(ErrReleased)
	if err := s.kv.Delete(ctx, s.key, jetstream.LastRevision(rev)); err != nil && !IsTaken(err) {
		return fmt.Errorf("close session %s: %w", s.key, err)
	}
	return nil
}

// FenceSession ends node's session, last seen at revision rev, by deleting its key at that revision: it fails
// with ErrTaken if the session renewed since (or is already gone).
func FenceSession(ctx context.Context, kv KV, node string, rev uint64) error {
	if err := kv.Delete(ctx, SessionKey(node), jetstream.LastRevision(rev)); err != nil {
		if IsTaken(err) {
			return fmt.Errorf("fence session of %s: %w (%v)", node, ErrTaken, err)
		}
		return fmt.Errorf("fence session of %s: %w", node, err)
	}
	return nil
}
