package room

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// The batched reader is tested on a real 3-node cluster of the embedded servers the nodes run (pkg/mesh, with
// their options: routes with credentials, JetStream synced on every write), with the INPUTS stream at R3. This
// package cannot start whole nodes in its own tests (pkg/node imports it), and needs none: only the stream.

// natsCluster starts n embedded servers, clustered when n > 1, and creates INPUTS on them with n replicas
// (n ≤ 3). The servers are killed when the test ends.
func natsCluster(tb testing.TB, n int) []*mesh.Mesh {
	tb.Helper()
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testingutil.FreePort(tb)
	}
	log := slog.New(slog.DiscardHandler)
	ms := make([]*mesh.Mesh, n)
	for i := range n {
		cfg := mesh.DefaultConfig()
		cfg.Name = fmt.Sprintf("n%d", i+1)
		cfg.ClientAddr = "off"
		cfg.DataDir = filepath.Join(dir, cfg.Name)
		if n > 1 {
			cfg.ClusterAddr = fmt.Sprintf("127.0.0.1:%d", ports[i])
			cfg.RouteUser, cfg.RoutePassword = "route", hex.EncodeToString(secret)
			cfg.Replicas = n
			for j, p := range ports {
				if j != i {
					cfg.Routes = append(cfg.Routes, &url.URL{Scheme: "nats-route", Host: fmt.Sprintf("127.0.0.1:%d", p)})
				}
			}
		}
		m, err := mesh.Start(context.Background(), cfg, log)
		if err != nil {
			tb.Fatal(err)
		}
		ms[i] = m
		tb.Cleanup(m.Kill)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := ms[0].EnsureStream(ctx, wire.InputsConfig()); err != nil {
		tb.Fatal(err)
	}
	return ms
}

// storedMsg is a message of INPUTS as the test published it.
type storedMsg struct {
	seq  uint64
	data []byte
}

// fill publishes rounds rounds of one message for each of rooms, in that order (so each room's messages are
// interleaved with the others'), through m, and returns each room's messages as stored, in the order of their
// sequences, and the highest sequence, once every replica has them. The publishes are asynchronous: one that
// finds no responders (the stream's interest not yet known to m's server) is sent again 250 ms later by nats.go
// and stored after later ones, so the order of the publishes is not the order of the stream.
func fill(tb testing.TB, ms []*mesh.Mesh, m *mesh.Mesh, rounds int, rooms ...string) (map[string][]storedMsg, uint64) {
	tb.Helper()
	type pending struct {
		room string
		data []byte
		ack  jetstream.PubAckFuture
	}
	var all []pending
	for r := range rounds {
		for _, room := range rooms {
			var evs [][]byte
			for k := range 3 {
				ev, err := wire.EncodeEvent(input("p"+strconv.Itoa(k), uint64(r+1), uint8(r%16)))
				if err != nil {
					tb.Fatal(err)
				}
				evs = append(evs, ev)
			}
			data := wire.EncodeBatch(evs)
			msg, err := wire.BatchMsg(room, fmt.Sprintf("%s-%d", tb.Name(), r), data)
			if err != nil {
				tb.Fatal(err)
			}
			ack, err := m.JetStream().PublishMsgAsync(msg)
			if err != nil {
				tb.Fatal(err)
			}
			all = append(all, pending{room, data, ack})
		}
	}
	out := map[string][]storedMsg{}
	var last uint64
	for _, p := range all {
		select {
		case a := <-p.ack.Ok():
			out[p.room] = append(out[p.room], storedMsg{a.Sequence, p.data})
			last = max(last, a.Sequence)
		case err := <-p.ack.Err():
			tb.Fatalf("publish: %v", err)
		case <-time.After(30 * time.Second):
			tb.Fatal("publish: no ack")
		}
	}
	for _, msgs := range out {
		slices.SortFunc(msgs, func(x, y storedMsg) int { return cmp.Compare(x.seq, y.seq) })
	}
	waitReplicas(tb, ms, "every replica has the messages", func(st server.StreamState) bool { return st.LastSeq >= last })
	return out, last
}

// waitReplicas waits until the INPUTS replica of every server in ms satisfies ok.
func waitReplicas(tb testing.TB, ms []*mesh.Mesh, what string, ok func(server.StreamState) bool) {
	tb.Helper()
	testingutil.WaitFor(tb, 30*time.Second, what, func() bool {
		for _, m := range ms {
			st, found := inputsState(m)
			if !found || !ok(st) {
				return false
			}
		}
		return true
	})
}

func inputsState(m *mesh.Mesh) (server.StreamState, bool) {
	info, err := m.Server().Jsz(&server.JSzOptions{Account: mesh.AppAccount, Streams: true})
	if err != nil {
		return server.StreamState{}, false
	}
	for _, acc := range info.AccountDetails {
		for _, s := range acc.Streams {
			if s.Name == wire.InputsStream {
				return s.State, true
			}
		}
	}
	return server.StreamState{}, false
}

// readAll reads a room's messages at from..to through m, with a bound of d.
func readAll(tb testing.TB, m *mesh.Mesh, room string, from, to uint64, d time.Duration) ([]storedMsg, uint64, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var got []storedMsg
	next, err := readRange(ctx, m.Conn(), wire.InputsStream, wire.InputSubject(room), from, to, func(data []byte, seq uint64) {
		got = append(got, storedMsg{seq, bytes.Clone(data)})
	})
	return got, next, err
}

// sameMsgs fails the test unless got is want, message by message; when the counts differ it names the
// sequences missing and those too many.
func sameMsgs(tb testing.TB, what string, got, want []storedMsg) {
	tb.Helper()
	if len(got) != len(want) {
		count := map[uint64]int{}
		for _, m := range want {
			count[m.seq]++
		}
		for _, m := range got {
			count[m.seq]--
		}
		var missing, extra []uint64
		for seq, c := range count {
			if c > 0 {
				missing = append(missing, seq)
			} else if c < 0 {
				extra = append(extra, seq)
			}
		}
		slices.Sort(missing)
		slices.Sort(extra)
		tb.Fatalf("%s: %d messages, want %d; missing %v, too many %v", what, len(got), len(want), missing, extra)
	}
	for i := range want {
		if got[i].seq != want[i].seq || !bytes.Equal(got[i].data, want[i].data) {
			tb.Fatalf("%s: message %d is seq %d %q, want seq %d %q", what, i, got[i].seq, got[i].data, want[i].seq, want[i].data)
		}
	}
}

// A room's messages, more than one batch of them and interleaved with other rooms' messages, are read in order,
// each once, through every node; the range's upper bound is kept (the server does not bound such a request);
// an empty range asks for nothing or gets nothing; a purged prefix and deleted messages are skipped.
func TestBatchedReadsDeliverARoomsMessagesInOrderWithinTheRange(t *testing.T) {
	ms := natsCluster(t, 3)
	byRoom, last := fill(t, ms, ms[0], 2*readBatch+44, "a", "b", "c") // 556 of room a's, 1668 in all
	a := byRoom["a"]

	for _, m := range ms {
		got, next, err := readAll(t, m, "a", 1, last, 10*time.Second)
		if err != nil {
			t.Fatalf("through %s: %v", m.Name(), err)
		}
		sameMsgs(t, "all of a through "+m.Name(), got, a)
		if want := a[len(a)-1].seq + 1; next != want {
			t.Fatalf("through %s: next %d, want %d", m.Name(), next, want)
		}
	}

	// An upper bound between two of a's messages, past more than one batch: nothing above it.
	from, to := a[10].seq, a[300].seq-1
	got, next, err := readAll(t, ms[1], "a", from, to, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sameMsgs(t, "a[10:300]", got, a[10:300])
	if next != a[299].seq+1 {
		t.Fatalf("next %d after a bounded range, want %d", next, a[299].seq+1)
	}
	// A bound on one of a's messages includes it; a start between two of them begins at the next.
	got, _, err = readAll(t, ms[2], "a", a[3].seq+1, a[7].seq, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sameMsgs(t, "a[4:8]", got, a[4:8])

	// Empty ranges: only other rooms' messages in it, no message of the room at all, from past to.
	start := time.Now()
	for _, r := range []struct {
		room     string
		from, to uint64
	}{{"a", a[5].seq + 1, a[6].seq - 1}, {"nobody", 1, last}, {"a", a[9].seq, a[8].seq}, {"a", last + 1, last + 100}} {
		got, next, err := readAll(t, ms[1], r.room, r.from, r.to, 10*time.Second)
		if err != nil || len(got) != 0 || next != r.from {
			t.Fatalf("empty range %s %d..%d: %d messages, next %d, %v; want none, next %d", r.room, r.from, r.to, len(got), next, err, r.from)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("empty ranges took %v", d)
	}

	// Purge a's messages below a[100], delete a[200] and purge room b altogether (other rooms' holes).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := ms[0].JetStream().Stream(ctx, wire.InputsStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(wire.InputSubject("a")), jetstream.WithPurgeSequence(a[100].seq)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, a[200].seq); err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(wire.InputSubject("b"))); err != nil {
		t.Fatal(err)
	}
	left := uint64(len(a) - 100 - 1 + len(byRoom["c"]))
	waitReplicas(t, ms, "the purges on every replica", func(st server.StreamState) bool { return st.Msgs == left })
	want := append(append([]storedMsg(nil), a[100:200]...), a[201:]...)
	for _, m := range ms {
		got, _, err := readAll(t, m, "a", 1, last, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		sameMsgs(t, "a after the purge through "+m.Name(), got, want)
	}
	got, _, err = readAll(t, ms[2], "b", 1, last, 10*time.Second)
	if err != nil || len(got) != 0 {
		t.Fatalf("purged room b: %d messages, %v", len(got), err)
	}
}

// Direct gets are answered by any replica: a stream whose leader is gone, and one with no majority left at all,
// is still read whole through a surviving replica.
func TestBatchedReadsNeedNoStreamLeader(t *testing.T) {
	ms := natsCluster(t, 3)
	byRoom, _ := fill(t, ms, ms[0], 300, "a", "b")
	a := byRoom["a"]
	lead := -1
	for i, m := range ms {
		if m.LeadsStream(wire.InputsStream) {
			lead = i
		}
	}
	if lead < 0 {
		t.Fatal("no INPUTS leader")
	}
	ms[lead].Kill()
	var survivors []*mesh.Mesh
	for i, m := range ms {
		if i != lead {
			survivors = append(survivors, m)
		}
	}
	// At once, while the survivors elect a leader.
	got, _, err := readAll(t, survivors[0], "a", 1, a[len(a)-1].seq, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sameMsgs(t, "a without a leader", got, a)
	survivors[1].Kill()
	got, _, err = readAll(t, survivors[0], "a", 1, a[len(a)-1].seq, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sameMsgs(t, "a on the last replica", got, a)
}

// fakeReplica answers batched direct gets on $JS.API.DIRECT.GET.<stream> from msgs as a replica would, but
// behaves as script says for its n-th request (from 1): "silent" (no answer), or "one" (the first message,
// then nothing); any other request gets a whole answer. Its subscription ends with the test.
func fakeReplica(t *testing.T, nc *nats.Conn, stream, subject string, msgs []storedMsg, script map[int]string) *atomic.Int32 {
	t.Helper()
	var n atomic.Int32
	var mu sync.Mutex // the answers of one request go out together
	sub, err := nc.Subscribe(jetstream.DefaultAPIPrefix+"DIRECT.GET."+stream, func(req *nats.Msg) {
		mu.Lock()
		defer mu.Unlock()
		var r directBatchRequest
		if err := json.Unmarshal(req.Data, &r); err != nil || r.NextFor != subject || r.Batch <= 0 {
			t.Errorf("fake replica: request %q", req.Data)
			return
		}
		how := script[int(n.Add(1))]
		if how == "silent" {
			return
		}
		sent := 0
		for _, m := range msgs {
			if m.seq < r.Seq {
				continue
			}
			out := nats.NewMsg(req.Reply)
			out.Header.Set(jetstream.StreamHeader, stream)
			out.Header.Set(jetstream.SubjectHeader, subject)
			out.Header.Set(jetstream.SequenceHeader, strconv.FormatUint(m.seq, 10))
			out.Data = m.data
			_ = nc.PublishMsg(out)
			sent++
			if how == "one" {
				return
			}
			if sent == r.Batch {
				break
			}
		}
		out := nats.NewMsg(req.Reply)
		if sent == 0 {
			out.Header.Set(statusHeader, statusNotFound)
		} else {
			out.Header.Set(statusHeader, statusEOB)
		}
		_ = nc.PublishMsg(out)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return &n
}

// The first answer wins; requests unanswered for readAttempt are made again; an answer that stops in the middle
// is left, and the range goes on from the message after the last one delivered; a second answer to the same
// batch is ignored; the deadline cuts a read short with what was delivered kept.
func TestBatchedReadsRetryAndContinueAfterAPartialAnswer(t *testing.T) {
	ms := natsCluster(t, 1)
	nc := ms[0].Conn()
	var msgs []storedMsg
	for i := range 2*readBatch + 10 {
		msgs = append(msgs, storedMsg{uint64(3*i + 2), []byte(strconv.Itoa(i))})
	}
	last := msgs[len(msgs)-1].seq

	// Requests 1 and 2 (the first pair) go unanswered; 3 gets one message and then silence, while 4 gets a
	// whole answer, which comes second and is ignored; the batch after that starts after the one message.
	requests := fakeReplica(t, nc, "FAKE1", "x", msgs, map[int]string{1: "silent", 2: "silent", 3: "one"})
	var got []storedMsg
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next, err := readRange(ctx, nc, "FAKE1", "x", 1, last, func(data []byte, seq uint64) {
		got = append(got, storedMsg{seq, bytes.Clone(data)})
	})
	if err != nil {
		t.Fatal(err)
	}
	sameMsgs(t, "through a partial answer", got, msgs)
	if next != last+1 {
		t.Fatalf("next %d, want %d", next, last+1)
	}
	// Two waits of readAttempt (the first pair, the stalled answer), then whole batches.
	if d, n := time.Since(start), requests.Load(); d < 2*readAttempt || n < 4 {
		t.Fatalf("%d requests in %v; want the script's 4 and more, after at least %v", n, d, 2*readAttempt)
	}

	// A replica that gives one message and falls silent, and a deadline: the message is delivered, the read
	// ends with the deadline.
	silent := map[int]string{1: "one"}
	for i := 2; i < 200; i++ {
		silent[i] = "silent"
	}
	fakeReplica(t, nc, "FAKE3", "x", msgs, silent)
	got = nil
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	next, err = readRange(ctx, nc, "FAKE3", "x", 1, last, func(data []byte, seq uint64) {
		got = append(got, storedMsg{seq, bytes.Clone(data)})
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a read cut short: %v, want the deadline", err)
	}
	sameMsgs(t, "cut short", got, msgs[:1])
	if next != msgs[0].seq+1 {
		t.Fatalf("next %d after a read cut short, want %d", next, msgs[0].seq+1)
	}
}
