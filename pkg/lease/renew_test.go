package lease

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// stubKV is a stand-in for the three KV calls, for the lease's own bookkeeping only (the CAS semantics are
// tested against a real replicated bucket in lease_test.go).
type stubKV struct {
	mu        sync.Mutex
	update    func(ctx context.Context, rev uint64) (uint64, error)
	getValue  []byte
	getRev    uint64
	getErr    error
	getCalled int
}

func (s *stubKV) Get(context.Context, string) (jetstream.KeyValueEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.getCalled++
	if s.getErr != nil {
		return nil, s.getErr
	}
	return entry{value: s.getValue, rev: s.getRev}, nil
}
func (s *stubKV) Create(context.Context, string, []byte, ...jetstream.KVCreateOpt) (uint64, error) {
	return 1, nil
}
func (s *stubKV) Update(ctx context.Context, _ string, _ []byte, rev uint64) (uint64, error) {
	return s.update(ctx, rev)
}
func (s *stubKV) Delete(context.Context, string, ...jetstream.KVDeleteOpt) error { return nil }

type entry struct {
	jetstream.KeyValueEntry
	value []byte
	rev   uint64
}

func (e entry) Value() []byte    { return e.value }
func (e entry) Revision() uint64 { return e.rev }

func TestValidDoesNotWaitForARenewalInFlight(t *testing.T) {
	release := make(chan struct{})
	kv := &stubKV{update: func(ctx context.Context, rev uint64) (uint64, error) {
		<-release // a renewal hanging while the stream elects a leader
		return rev + 1, nil
	}}
	l, err := Acquire(context.Background(), kv, "lobby", Value{Node: "n1", Epoch: 1}, Config{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	go l.Renew(context.Background())
	time.Sleep(20 * time.Millisecond)
	done := make(chan bool)
	go func() { done <- l.Valid() }()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("fresh lease not valid")
		}
	case <-time.After(time.Second):
		t.Fatal("Valid blocked behind a renewal in flight (the owner would stop ticking)")
	}
	close(release)
}

func TestRenewAfterOwnLostReplyAdoptsTheRevisionInsteadOfStepDown(t *testing.T) {
	own, _ := json.Marshal(Value{Node: "n1", Epoch: 7})
	kv := &stubKV{getValue: own, getRev: 42}
	kv.update = func(_ context.Context, rev uint64) (uint64, error) {
		if rev == 42 {
			return 43, nil
		}
		return 0, &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant, Code: 400}
	}
	l, err := Acquire(context.Background(), kv, "lobby", Value{Node: "n1", Epoch: 7}, Config{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	before := l.Deadline()
	// Our previous renewal (revision 42) landed but its reply was lost: the CAS at revision 1 fails.
	err = l.Renew(context.Background())
	if err == nil || errors.Is(err, ErrLost) {
		t.Fatalf("renew = %v, want an unknown outcome (not lost)", err)
	}
	if l.Revision() != 42 || !l.Deadline().Equal(before) {
		t.Fatalf("revision %d, deadline moved %v: adopt the revision without extending the deadline", l.Revision(), l.Deadline().Sub(before))
	}
	if err := l.Renew(context.Background()); err != nil || l.Revision() != 43 {
		t.Fatalf("next renewal: %v at revision %d", err, l.Revision())
	}
	// Somebody else's value at the conflicting revision is a real loss.
	other, _ := json.Marshal(Value{Node: "n2", Epoch: 8})
	kv.getValue, kv.getRev = other, 50
	kv.update = func(context.Context, uint64) (uint64, error) {
		return 0, &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence, Code: 400}
	}
	if err := l.Renew(context.Background()); !errors.Is(err, ErrLost) {
		t.Fatalf("renew against another holder = %v, want ErrLost", err)
	}
}

// A renewal whose CAS fails and whose look at the key fails too (a saturated node, a stream without a leader)
// does not know that it lost: the key may hold its own late write. It retries until the deadline. Only a key
// that is gone, or held by somebody else, is a loss.
func TestRenewWhoseCASFailsAndWhoseReadFailsIsNotALoss(t *testing.T) {
	kv := &stubKV{getErr: context.DeadlineExceeded}
	kv.update = func(context.Context, uint64) (uint64, error) {
		return 0, &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence, Code: 400}
	}
	l, err := Acquire(context.Background(), kv, "lobby", Value{Node: "n1", Epoch: 7}, Config{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Renew(context.Background()); err == nil || errors.Is(err, ErrLost) {
		t.Fatalf("renew with an unreadable key = %v, want an unknown outcome", err)
	}
	kv.getErr = jetstream.ErrKeyNotFound
	if err := l.Renew(context.Background()); !errors.Is(err, ErrLost) {
		t.Fatalf("renew of a deleted key = %v, want ErrLost", err)
	}
}

func TestParseRefusesValuesNoNodeWrites(t *testing.T) {
	for _, b := range []string{
		`{"node":"n1","epoch":0}`, `{"node":"","epoch":3}`, `{"epoch":3}`, `not json`,
		`{"node":"n1","epoch":9007199254740992}`, `{"node":"n1","epoch":18446744073709551615}`,
	} {
		if _, err := Parse([]byte(b)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Parse(%s) = %v, want ErrCorrupt", b, err)
		}
	}
	if v, err := Parse([]byte(`{"node":"n1","epoch":9007199254740991,"since":1}`)); err != nil || v.Epoch != MaxEpoch {
		t.Fatalf("the largest epoch: %+v, %v", v, err)
	}
}

// stubPub is a publisher whose writes succeed at increasing sequences, counted.
type stubPub struct {
	mu     sync.Mutex
	seq    uint64
	writes int
	gate   chan struct{} // when set, every write waits for it
}

func (p *stubPub) PublishMsg(ctx context.Context, _ *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seq++
	p.writes++
	return &jetstream.PubAck{Sequence: p.seq}, nil
}

// After a pause every room of a node confirms its lease before ticking again: they share the session's
// renewals, so a thousand rooms cost one write, not a thousand.
func TestConcurrentConfirmsOfASessionShareOneRenewal(t *testing.T) {
	kv := &stubKV{getErr: jetstream.ErrKeyNotFound}
	pub := &stubPub{}
	s, err := OpenSession(context.Background(), kv, pub, "owners", "n1", Config{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var rooms []*Lease
	for i := range 100 {
		l, err := AcquireIn(context.Background(), kv, "r"+string(rune('a'+i%26))+string(rune('a'+i/26)), Value{Epoch: 1}, s)
		if err != nil {
			t.Fatal(err)
		}
		rooms = append(rooms, l)
	}
	pub.gate = make(chan struct{})
	before := pub.writes
	var wg sync.WaitGroup
	errs := make(chan error, len(rooms))
	for _, l := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- l.Confirm(context.Background())
		}()
	}
	time.Sleep(50 * time.Millisecond) // all of them waiting on the one renewal in flight
	close(pub.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("confirm: %v", err)
		}
	}
	// One write, and one more for the confirmations asked after it was sent (they need a write sent after they
	// began), and so on: a handful, not one per room.
	got := pub.writes - before
	if got < 1 || got > 3 {
		t.Fatalf("%d session writes for %d confirmations, want 1 to 3", got, len(rooms))
	}
	// A confirmation asked after the last write needs one more.
	if err := rooms[0].Confirm(context.Background()); err != nil || pub.writes-before != got+1 {
		t.Fatalf("a later confirmation: %v, writes %d after %d", err, pub.writes-before, got)
	}
}

// A node whose session was fenced (its key ends with a delete marker, which a KV read does not return) opens a
// new one at the revision the server names when the first CAS is refused.
func TestOpeningASessionOverADeleteMarkerUsesTheRevisionTheServerNames(t *testing.T) {
	kv := &stubKV{getErr: jetstream.ErrKeyNotFound}
	pub := &refusingPub{last: 61}
	s, err := OpenSession(context.Background(), kv, pub, "owners", "n1", Config{TTL: 10 * time.Second})
	if err != nil {
		t.Fatalf("open over a delete marker: %v", err)
	}
	if pub.expected != "61" || s.Revision() != 62 {
		t.Fatalf("second write expected revision %q, session at %d; want 61 and 62", pub.expected, s.Revision())
	}
}

// refusingPub refuses a write unless it expects the subject's last sequence last.
type refusingPub struct {
	last     uint64
	expected string
}

func (p *refusingPub) PublishMsg(_ context.Context, m *nats.Msg, _ ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	exp := m.Header.Get(jetstream.ExpectedLastSubjSeqHeader)
	p.expected = exp
	if exp != strconv.FormatUint(p.last, 10) {
		return nil, &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence, Description: "wrong last sequence: " + strconv.FormatUint(p.last, 10)}
	}
	p.last++
	return &jetstream.PubAck{Sequence: p.last}, nil
}
