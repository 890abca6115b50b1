package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/cluster"
)

// The lease check. A room's lease is safe because a compare-and-set on a JetStream subject (KV Update with the
// revision read before) succeeds for one writer only: the owners' fencing epochs rest on it. The suite checks
// that property under its faults with porcupine: one CAS client per node (on that node's client port, so a
// partition cuts it off with its node) keeps updating one subject of a dedicated stream, each write with a
// unique payload and the expected last sequence it read before. Every CAS is recorded with its call and return
// times and its outcome: written at sequence s, refused (wrong last sequence), or unknown (timeout, no
// leader). After the run the stream itself says which unknown writes landed, and where; porcupine then checks
// that the writes form a linearizable history of a register whose value is its last sequence: a fork (two
// writes from the same expected sequence both landing), or a write ordered against real time, is a violation.
// Reads are not part of the history: they only tell a client which sequence to expect (a stale read makes its
// CAS fail, which the history allows), and JetStream serves them from any replica, which is not linearizable
// and not what leases rely on.

const (
	linStream  = "CHAOSLIN"
	linSubject = "chaos.lin"
)

// linOp is one CAS of the history.
type linOp struct {
	client int
	id     string // the payload: unique per write
	expect uint64
	call   time.Duration
	ret    time.Duration
	result linResult
	seq    uint64 // when written
}

type linResult uint8

const (
	linWritten linResult = iota
	linRefused
	linUnknown
)

// linClients runs the CAS clients.
type linClients struct {
	mu   sync.Mutex
	ops  []linOp
	ncs  []*nats.Conn
	stop context.CancelFunc
	wg   sync.WaitGroup
	err  error // setting up
}

// startLinClients creates the stream (one replica per node) through nodes[0] and starts one client per node.
func startLinClients(ctx context.Context, s *Store, nodes []cluster.Node, secrets cluster.Secrets, seed uint64) *linClients {
	lc := &linClients{}
	cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	lc.stop = stop
	for i, n := range nodes {
		// As the admin user: the clients create their stream.
		nc, err := cluster.Connect(n, cluster.AsAdmin(secrets), "tickmesh-chaos-lin", nats.ReconnectWait(200*time.Millisecond),
			nats.RetryOnFailedConnect(true), nats.Timeout(time.Second))
		if err != nil {
			lc.err = err
			lc.close()
			return lc
		}
		lc.ncs = append(lc.ncs, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			lc.err = err
			lc.close()
			return lc
		}
		if i == 0 {
			deadline := time.Now().Add(time.Minute)
			for {
				sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err = js.CreateOrUpdateStream(sctx, jetstream.StreamConfig{Name: linStream, Subjects: []string{linSubject},
					Replicas: len(nodes), Storage: jetstream.FileStorage})
				cancel()
				if err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(time.Second)
			}
			if err != nil {
				lc.err = fmt.Errorf("create %s: %w", linStream, err)
				lc.close()
				return lc
			}
		}
		rng := rand.New(rand.NewPCG(seed, uint64(1000+i)))
		lc.wg.Add(1)
		go func() {
			defer lc.wg.Done()
			lc.run(cctx, s, i, js, rng)
		}()
	}
	return lc
}

// run is client i: read the last sequence, CAS a unique payload on it (on the last sequence it knows when the
// read gets no answer), pause 100-300 ms, again.
func (lc *linClients) run(ctx context.Context, s *Store, i int, js jetstream.JetStream, rng *rand.Rand) {
	var n int
	var st jetstream.Stream
	var known uint64 // the last sequence this client read or wrote
	for ctx.Err() == nil {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		expect := known
		var m *jetstream.RawStreamMsg
		var err error
		if st == nil {
			st, err = js.Stream(rctx, linStream)
		}
		if st != nil {
			m, err = st.GetLastMsgForSubject(rctx, linSubject)
		}
		cancel()
		switch {
		case err == nil:
			expect = m.Sequence
		case errors.Is(err, jetstream.ErrMsgNotFound):
			expect = 0
		default:
			// No answer (cut off, no leader): write anyway, expecting what this client saw last, as a lease
			// holder renewing at its revision does.
		}
		n++
		op := linOp{client: i, id: fmt.Sprintf("c%d-%d", i, n), expect: expect, call: s.Now()}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		// No retries: a retry of a publish that landed after all would be refused, and this op would be
		// recorded as refused although it took effect.
		ack, err := js.Publish(pctx, linSubject, []byte(op.id), jetstream.WithExpectLastSequencePerSubject(expect),
			jetstream.WithRetryAttempts(0))
		cancel()
		op.ret = s.Now()
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			op.result, op.seq = linWritten, ack.Sequence
			known = ack.Sequence
		case errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == 10164):
			op.result = linRefused // 10164: the same refusal, as an R3 stream words it when a race was lost
		default:
			op.result = linUnknown
		}
		lc.mu.Lock()
		lc.ops = append(lc.ops, op)
		lc.mu.Unlock()
		if sleep(ctx, time.Duration(100+rng.IntN(200))*time.Millisecond) != nil {
			return
		}
	}
}

// close stops the clients and waits for them.
func (lc *linClients) close() {
	if lc.stop != nil {
		lc.stop()
	}
	lc.wg.Wait()
	for _, nc := range lc.ncs {
		nc.Close()
	}
	lc.ncs = nil
}

// LinReport is the outcome of the lease check.
type LinReport struct {
	Ops, Written, Refused, RefusedLanded, Unknown, UnknownLanded int
	Result                                                       string // "ok", "illegal", "timeout" or why it could not run
}

// check reads the stream (through any url that answers), resolves the unknown writes and runs porcupine.
// It reports a violation for a history that is not linearizable.
func (lc *linClients) check(ctx context.Context, s *Store, nodes []cluster.Node, secrets cluster.Secrets) LinReport {
	lc.close()
	rep := LinReport{Result: "not run"}
	if lc.err != nil {
		rep.Result = "not run: " + lc.err.Error()
		return rep
	}
	landed, err := readLanded(ctx, nodes, secrets)
	if err != nil {
		rep.Result = "not run: read " + linStream + ": " + err.Error()
		return rep
	}
	lc.mu.Lock()
	ops := append([]linOp(nil), lc.ops...)
	lc.mu.Unlock()
	var history []porcupine.Operation
	for _, op := range ops {
		rep.Ops++
		seq := op.seq
		ret := int64(op.ret)
		switch op.result {
		case linWritten:
			rep.Written++
			if at, ok := landed[op.id]; !ok || at != seq {
				s.Violate(Violation{Check: "lease-cas", At: op.ret, Receiver: fmt.Sprintf("cas client %d", op.client),
					Message: fmt.Sprintf("write %s acknowledged at sequence %d is at %d in the stream (0: missing)", op.id, seq, at)})
			}
		case linRefused:
			// A refusal changes nothing. It is left out of the history: a spurious refusal (a new leader that
			// has not applied everything yet) costs a lease holder a retry, never safety. A refused write
			// that is in the stream all the same is counted, and checked like an unknown one: its writer did
			// not act on it (a lease holder would not), so it cannot fork anything, but the writes after it
			// build on it.
			rep.Refused++
			at, ok := landed[op.id]
			if !ok {
				continue
			}
			rep.RefusedLanded++
			seq = at
			ret = int64(^uint64(0) >> 1)
		case linUnknown:
			rep.Unknown++
			at, ok := landed[op.id]
			if !ok {
				continue // no effect, no observed output: no constraint
			}
			rep.UnknownLanded++
			seq = at
			ret = int64(^uint64(0) >> 1) // it may have taken effect any time after its call
		}
		history = append(history, porcupine.Operation{ClientId: op.client, Input: op.expect, Call: int64(op.call),
			Output: linOutput{seq: seq}, Return: ret})
	}
	res := porcupine.CheckOperationsTimeout(linModel, history, 2*time.Minute)
	switch res {
	case porcupine.Ok:
		rep.Result = "ok"
	case porcupine.Illegal:
		rep.Result = "illegal"
		s.Violate(Violation{Check: "lease-cas", Receiver: "cas clients",
			Message:  fmt.Sprintf("the CAS history on %s (%d operations) is not linearizable", linStream, len(history)),
			Evidence: linEvidence(ops, landed)})
	default:
		rep.Result = "timeout (porcupine could not decide in 2 min)"
	}
	return rep
}

// linOutput is a write's outcome: the sequence it landed at.
type linOutput struct {
	seq uint64
}

// linModel is a register holding the subject's last sequence; a CAS names the sequence it expects.
var linModel = porcupine.Model{
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		cur, expect, out := state.(uint64), input.(uint64), output.(linOutput)
		return cur == expect && out.seq > cur, out.seq
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("cas(%d) -> %d", input.(uint64), output.(linOutput).seq)
	},
}

// readLanded maps every payload in the stream to its sequence.
func readLanded(ctx context.Context, nodes []cluster.Node, secrets cluster.Secrets) (map[string]uint64, error) {
	var lastErr error
	for _, n := range nodes {
		nc, err := cluster.Connect(n, cluster.AsAdmin(secrets), "tickmesh-chaos-lin-read", nats.MaxReconnects(0))
		if err != nil {
			lastErr = err
			continue
		}
		landed, err := readStream(ctx, nc)
		nc.Close()
		if err == nil {
			return landed, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func readStream(ctx context.Context, nc *nats.Conn) (map[string]uint64, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := js.Stream(rctx, linStream)
	if err != nil {
		return nil, err
	}
	last := st.CachedInfo().State.LastSeq
	landed := map[string]uint64{}
	if last == 0 {
		return landed, nil
	}
	cons, err := st.OrderedConsumer(rctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, err
	}
	for {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				return nil, err
			}
			landed[string(m.Data())] = md.Sequence.Stream
			if md.Sequence.Stream >= last {
				return landed, nil
			}
		}
		if err := batch.Error(); err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, fmt.Errorf("stream read stopped before sequence %d", last)
		}
	}
}

// linEvidence lists the writes that share an expected sequence with another landed write (forks), or else the
// last 20 operations.
func linEvidence(ops []linOp, landed map[string]uint64) []string {
	byExpect := map[uint64][]string{}
	for _, op := range ops {
		if at, ok := landed[op.id]; ok {
			byExpect[op.expect] = append(byExpect[op.expect], op.id+"@"+strconv.FormatUint(at, 10))
		}
	}
	var ev []string
	for exp, ids := range byExpect {
		if len(ids) > 1 {
			ev = append(ev, fmt.Sprintf("expected %d: landed %v", exp, ids))
		}
	}
	sort.Strings(ev)
	if len(ev) == 0 {
		for _, op := range ops[max(0, len(ops)-20):] {
			ev = append(ev, fmt.Sprintf("client %d %s expect %d [%s, %s] result %d seq %d", op.client, op.id, op.expect,
				fmtDur(op.call), fmtDur(op.ret), op.result, op.seq))
		}
	}
	return ev
}
