package failbench

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
	"github.com/tickmesh/tickmesh/internal/procfs"
	"github.com/tickmesh/tickmesh/internal/stats"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Fault names, in the order they run.
const (
	faultKillOwner        = "kill-owner"
	faultTermOwner        = "term-owner"
	faultKillOwnersLeader = "kill-owners-leader"
	faultKillInputsLeader = "kill-inputs-leader"
	faultStopOwner        = "stop-owner"
	faultCutOwner         = "cut-owner"
	faultLoadOwner        = "load-owner"
)

// FaultOrder is every fault, in the order a run injects them.
var FaultOrder = []string{faultKillOwner, faultTermOwner, faultKillOwnersLeader, faultKillInputsLeader, faultStopOwner,
	faultCutOwner, faultLoadOwner}

// Streams whose leaders the leader faults kill.
var (
	streamOwners = wire.KVStream(wire.OwnersBucket)
	streamInputs = wire.InputsStream
)

// Timing of the procedure.
const (
	windowBefore   = time.Second      // the gap window starts this long before the fault
	windowAfter    = 2 * time.Second  // and ends this long after recovery
	stableFor      = 2 * time.Second  // the owner must be the same everywhere this long before a fault
	stableTimeout  = 90 * time.Second // give up waiting for a stable cluster
	placementWait  = 10 * time.Second // wait this long for the owner to move stream leaders off its node
	leaderWait     = 10 * time.Second // wait this long for a stream leader other than the owner
	botLead        = 3 * time.Second  // the bot runs this long before a fault
	latencyWindow  = 10 * time.Second // input latency is measured over this long after a fault
	baselineWindow = 30 * time.Second // and over this long without a fault
	thawWatch      = 3 * time.Second  // watch this long after SIGCONT
	cutHold        = 3 * time.Second  // cut-owner keeps the partition this long after the others took over
	readyTimeout   = 90 * time.Second
	restartTimeout = 90 * time.Second
)

// errNoRecovery marks a repetition that did not recover within the recovery timeout.
var errNoRecovery = errors.New("no recovery")

// goal is what a fault must achieve; zero fields are not goals.
type goal struct {
	GapP99     time.Duration
	LatencyP99 time.Duration
	NoTakeover bool // the owner must keep its room (load-owner)
}

// goalFor is the goal for a fault.
func goalFor(fault string, tickPeriod time.Duration) goal {
	switch fault {
	case faultKillOwner:
		return goal{GapP99: time.Second}
	case faultTermOwner:
		return goal{GapP99: 100 * time.Millisecond}
	case faultKillOwnersLeader:
		return goal{GapP99: 1500 * time.Millisecond}
	case faultKillInputsLeader:
		return goal{GapP99: 1500 * time.Millisecond, LatencyP99: tickPeriod + 15*time.Millisecond}
	case faultStopOwner, faultCutOwner:
		return goal{GapP99: time.Second}
	case faultLoadOwner:
		return goal{NoTakeover: true}
	}
	return goal{}
}

// bench runs the faults against a cluster.
type bench struct {
	o     Config
	c     *cluster.Cluster
	links *cluster.Links // the route links the nodes dial (nil without -link-port)
	rng   *rand.Rand     // -seed: random moments, load-owner's pauses
	rec   *recorder
	obs   map[string]*observer
	track atomic.Pointer[string]
	input input // the bot's inputs, for the room's game
	out   io.Writer
	logf  func(format string, args ...any)
	notes []string // unplanned events, for the report
	load  loadRange
}

// stableState is the cluster before a fault.
type stableState struct {
	owner  string
	epoch  uint64
	placed bool // the owner leads none of the placed streams
}

// waitStable waits until every node runs and is ready, every node names the same room owner and epoch for
// stableFor, every observer receives ticks of that epoch, and (up to placementWait) the owner leads none of the
// placed streams. A node that exited on its own is restarted and reported.
func (b *bench) waitStable(ctx context.Context) (stableState, error) {
	var st stableState
	deadline := time.Now().Add(stableTimeout)
	var since time.Time
	var cur stableState
	for {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("cluster not stable after %v (owner %q epoch %d)", stableTimeout, cur.owner, cur.epoch)
		}
		for i, name := range b.c.Names() {
			if !b.c.Running(i) {
				note := fmt.Sprintf("%s exited on its own (%v; last log line: %s); restarted it", name, b.c.ExitErr(i), lastLine(b.c.LogPath(i)))
				b.logf("UNPLANNED: %s", note)
				b.notes = append(b.notes, note)
				if err := b.c.Start(i); err != nil {
					return st, err
				}
			}
		}
		ok, owner, epoch := b.agreed(ctx)
		switch {
		case !ok:
			since = time.Time{}
		case since.IsZero() || owner != cur.owner || epoch != cur.epoch:
			cur.owner, cur.epoch, since = owner, epoch, time.Now()
		case time.Since(since) >= stableFor:
			st.owner, st.epoch = owner, epoch
			st.placed = b.waitPlacement(ctx, owner)
			return st, nil
		}
		cluster.Sleep(ctx, 200*time.Millisecond)
	}
}

// agreed reports whether all nodes are ready, agree on the room's owner and epoch, and all observers got a
// tick of that epoch in the last half second.
func (b *bench) agreed(ctx context.Context) (bool, string, uint64) {
	var owner string
	var epoch uint64
	for i, name := range b.c.Names() {
		if !b.ready(ctx, name) {
			return false, "", 0
		}
		o, e, err := b.roomOwner(ctx, name)
		if err != nil || o == "" || (i > 0 && (o != owner || e != epoch)) {
			return false, "", 0
		}
		owner, epoch = o, e
	}
	for _, n := range b.c.Names() {
		if !b.obs[n].Attached() {
			return false, "", 0
		}
		t, ok := b.rec.last(n)
		if !ok || t.Epoch != epoch || time.Since(t.At) > 500*time.Millisecond {
			return false, "", 0
		}
	}
	return true, owner, epoch
}

// waitPlacement waits up to placementWait until owner leads none of the placed streams.
func (b *bench) waitPlacement(ctx context.Context, owner string) bool {
	deadline := time.Now().Add(placementWait)
	for {
		clear := true
		for _, s := range wire.PlacedStreams {
			l, err := b.leader(ctx, s, owner)
			if err != nil || l == "" || l == owner {
				clear = false
				break
			}
		}
		if clear {
			return true
		}
		if time.Now().After(deadline) || !cluster.Sleep(ctx, 250*time.Millisecond) {
			b.logf("owner %s still leads a placed stream after %v", owner, placementWait)
			return false
		}
	}
}

// leader asks the nodes (preferring any but avoid) for a stream's leader.
func (b *bench) leader(ctx context.Context, stream string, avoid ...string) (string, error) {
	var last error
	for _, n := range append(b.others(avoid...), avoid...) {
		if !b.c.Running(b.i(n)) {
			continue
		}
		l, err := cluster.StreamLeader(ctx, b.obs[n].JetStream(), stream)
		if err == nil {
			return l, nil
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("no node to ask")
	}
	return "", last
}

// fencedOf reads the fenced-ticks counters of nodes and returns them by node.
func (b *bench) fencedOf(ctx context.Context, nodes []string) map[string]float64 {
	out := map[string]float64{}
	for _, n := range nodes {
		m, err := b.metrics(ctx, n)
		if err != nil {
			b.logf("read metrics of %s: %v", n, err)
			out[n] = -1
			continue
		}
		out[n] = m[b.series(fencedMetric)]
	}
	return out
}

// fencedDelta sums after − before over the nodes read both times.
func fencedDelta(before, after map[string]float64) int {
	d := 0.0
	for n, a := range after {
		if bv, ok := before[n]; ok && bv >= 0 && a >= 0 {
			d += a - bv
		}
	}
	return int(d)
}

// waitRecovery waits until every node in nodes has accepted a tick at or after from that satisfies ok, and
// returns the time the last of them did.
func (b *bench) waitRecovery(ctx context.Context, nodes []string, from time.Time, until time.Time, ok func(tickRec) bool) (time.Time, error) {
	for {
		var latest time.Time
		all := true
		for _, n := range nodes {
			t, found := b.rec.firstAfter(n, from, ok)
			if !found {
				all = false
				break
			}
			if t.At.After(latest) {
				latest = t.At
			}
		}
		if all {
			return latest, nil
		}
		if time.Now().After(until) {
			return time.Time{}, errNoRecovery
		}
		if !cluster.Sleep(ctx, 10*time.Millisecond) {
			return time.Time{}, ctx.Err()
		}
	}
}

// gapOver returns the largest gap over nodes in [from, to], and on which node.
func (b *bench) gapOver(nodes []string, from, to time.Time) (time.Duration, string) {
	var gap time.Duration
	var at string
	for _, n := range nodes {
		if g := stats.Longest(stats.Offsets(b.rec.tickTimes(n), from), 0, to.Sub(from)).Len(); g > gap || at == "" {
			gap, at = g, n
		}
	}
	return gap, at
}

// logStretches logs every observer's tick-free stretches of [from, to] longer than minLen.
func (b *bench) logStretches(what string, from, to time.Time, minLen time.Duration) {
	for _, n := range b.c.Names() {
		for _, g := range stats.Longer(stats.Offsets(b.rec.tickTimes(n), from), 0, to.Sub(from), minLen) {
			b.logf("  %sno tick at %s observer from %s to %s (%s)", what, n, from.Add(g.From).Format("15:04:05.000"),
				from.Add(g.To).Format("15:04:05.000"), ms(g.Len()))
		}
	}
}

// restart starts a killed node again (after it exited) and waits until the whole cluster is ready.
func (b *bench) restart(ctx context.Context, name string) error {
	i := b.i(name)
	if !b.c.WaitExit(ctx, i, 12*time.Second) {
		b.logf("%s did not exit; SIGKILL", name)
		_ = b.c.Signal(i, syscall.SIGKILL)
		b.c.WaitExit(ctx, i, 5*time.Second)
	}
	b.logf("%s exited: %v", name, b.c.ExitErr(i))
	if err := b.c.Start(i); err != nil {
		return err
	}
	return b.c.WaitReady(ctx, restartTimeout, nil)
}

// runFault runs one fault reps times.
func (b *bench) runFault(ctx context.Context, fault string, reps int) faultResult {
	res := faultResult{Name: fault, Goal: goalFor(fault, b.o.tickPeriod())}
	for i := 1; i <= reps && ctx.Err() == nil; i++ {
		var st stableState
		var err error
		if b.o.Random {
			st, err = b.waitRunning(ctx)
		} else {
			st, err = b.waitStable(ctx)
		}
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			b.logf("%s #%d: %v", fault, i, err)
			return res
		}
		if !st.placed {
			res.Unplaced++
		}
		b.rec.trim(time.Now().Add(-time.Minute))
		b.logf("%s #%d: stable: owner %s epoch %d (placement settled: %v)", fault, i, st.owner, st.epoch, st.placed)
		var r repResult
		b.load.add(procfs.LoadAvg())
		stopSampler := b.sampleOwners(ctx)
		switch fault {
		case faultKillOwner:
			r, err = b.ownerFault(ctx, st, syscall.SIGKILL)
		case faultTermOwner:
			r, err = b.ownerFault(ctx, st, syscall.SIGTERM)
		case faultStopOwner:
			r, err = b.stopOwner(ctx, st)
		case faultKillOwnersLeader:
			r, err = b.leaderFault(ctx, st, streamOwners, false)
		case faultKillInputsLeader:
			r, err = b.leaderFault(ctx, st, streamInputs, true)
		case faultCutOwner:
			r, err = b.cutOwner(ctx, st)
		case faultLoadOwner:
			r, err = b.loadOwner(ctx, st)
		}
		stopSampler()
		if err != nil {
			res.Errors = append(res.Errors, err.Error())
			b.logf("%s #%d: %v", fault, i, err)
			return res
		}
		if r.Skipped {
			res.Skipped++
			b.logf("%s #%d: skipped: %s", fault, i, r.Note)
			continue
		}
		res.Reps = append(res.Reps, r)
		b.logf("%s #%d: gap %v on %s, recovered %v, stale published %d, fenced %d, stale accepted %d%s",
			fault, i, ms(r.Gap), r.GapNode, r.Recovered, r.StalePublished, r.Fenced, r.StaleAccepted, noteSuffix(r))
		fmt.Fprintf(b.out, "%s %-18s #%-2d gap %7s  stale pub %d  fenced %d  stale acc %d%s\n",
			time.Now().Format("15:04:05"), fault, i, ms(r.Gap), r.StalePublished, r.Fenced, r.StaleAccepted, noteSuffix(r))
	}
	return res
}

func noteSuffix(r repResult) string {
	s := ""
	if !r.Recovered {
		s += "  NO RECOVERY"
	}
	if len(r.Latency) > 0 || r.Unapplied > 0 {
		l := summarize(r.Latency)
		s += fmt.Sprintf("  input p50 %s p99 %s unapplied %d", ms(l.P50), ms(l.P99), r.Unapplied)
	}
	if r.Note != "" {
		s += "  (" + r.Note + ")"
	}
	return s
}

// sampleOwners logs, every 500 ms until the returned function is called, each running node's published-tick
// counter and owned gauge: evidence of whether an owner kept publishing while observers saw no ticks.
func (b *bench) sampleOwners(ctx context.Context) (stop func()) {
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for cluster.Sleep(sctx, 500*time.Millisecond) {
			line := "metrics:"
			for i, name := range b.c.Names() {
				if b.c.Frozen(i) || !b.c.Running(i) {
					line += fmt.Sprintf(" %s=down", name)
					continue
				}
				m, err := b.metrics(sctx, name)
				if err != nil {
					line += fmt.Sprintf(" %s=?", name)
					continue
				}
				line += fmt.Sprintf(" %s(owned=%g ticks=%g pauses=%g renew_errors=%g)", name, m[b.series(ownedMetric)],
					m[b.series(ticksMetric)], m[b.series(pausesMetric)], m[b.series(renewErrorsMetric)])
			}
			line += " | observers:"
			for _, n := range b.c.Names() {
				line += fmt.Sprintf(" %s(%s)", n, b.obs[n].Stats())
			}
			b.logf("%s", line)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// ownerFault sends sig to the owner and measures until every other node has a tick of a newer epoch.
func (b *bench) ownerFault(ctx context.Context, st stableState, sig syscall.Signal) (repResult, error) {
	var r repResult
	survivors := b.others(st.owner)
	before := b.fencedOf(ctx, survivors)
	t0 := time.Now()
	if err := b.c.Signal(b.i(st.owner), sig); err != nil {
		return r, err
	}
	rec, err := b.waitRecovery(ctx, survivors, t0, t0.Add(b.o.RecoveryTimeout), func(t tickRec) bool { return t.Epoch > st.epoch })
	if err != nil && ctx.Err() != nil {
		return r, ctx.Err()
	}
	r.Recovered = err == nil
	end := rec.Add(windowAfter)
	if !r.Recovered {
		end = time.Now()
	}
	sleepUntil(ctx, end)
	b.finish(ctx, &r, survivors, before, t0, end)
	if r.Recovered {
		r.Note = fmt.Sprintf("new epoch everywhere after %s", ms(rec.Sub(t0)))
	}
	return r, b.restart(ctx, st.owner)
}

// stopOwner freezes the owner for twice the lease TTL, thaws it and watches for stale ticks.
func (b *bench) stopOwner(ctx context.Context, st stableState) (repResult, error) {
	var r repResult
	survivors := b.others(st.owner)
	all := b.c.Names()
	before := b.fencedOf(ctx, all)
	p := b.i(st.owner)
	t0 := time.Now()
	if err := b.c.Freeze(p); err != nil {
		return r, err
	}
	sleepUntil(ctx, t0.Add(2*b.o.effectiveLeaseTTL()))
	if err := b.c.Thaw(p); err != nil {
		return r, err
	}
	thawed := time.Now()
	rec, err := b.waitRecovery(ctx, survivors, t0, thawed.Add(b.o.RecoveryTimeout), func(t tickRec) bool { return t.Epoch > st.epoch })
	if err != nil && ctx.Err() != nil {
		return r, ctx.Err()
	}
	r.Recovered = err == nil
	end := thawed.Add(thawWatch)
	if r.Recovered {
		end = later(end, rec.Add(windowAfter))
		r.Note = fmt.Sprintf("new epoch everywhere after %s", ms(rec.Sub(t0)))
	}
	sleepUntil(ctx, end)
	b.finish(ctx, &r, survivors, before, t0, end)
	return r, nil
}

// leaderFault kills the stream's leader while it is not the owner and measures the owner's ticks through the
// election; with bot, it also measures input → applied latency through the third node.
func (b *bench) leaderFault(ctx context.Context, st stableState, stream string, withBot bool) (repResult, error) {
	var r repResult
	target, err := b.leaderNot(ctx, stream, st.owner)
	if err != nil {
		r.Skipped, r.Note = true, err.Error()
		return r, nil
	}
	third := b.others(target, st.owner)[0]
	also := b.alsoLed(ctx, target, stream)
	if len(also) > 0 && b.o.Isolate {
		// The nodes put every leader they move on the same peer; move the others to the third node so that
		// this fault measures the loss of one stream's leader only.
		for _, s := range also {
			b.moveLeader(ctx, s, third)
		}
		cluster.Sleep(ctx, stableFor)
		// The nodes' own placement keeps the placed streams' leaders together, off the owner, and may undo the
		// isolation: the fault then kills whichever node leads the stream now, with every other leader it holds
		// (the repetition's note names them).
		if target, err = b.leaderNot(ctx, stream, st.owner); err != nil {
			r.Skipped, r.Note = true, err.Error()
			return r, nil
		}
		third = b.others(target, st.owner)[0]
		also = b.alsoLed(ctx, target, stream)
	}
	r.AlsoLed = strings.Join(also, "+")
	b.logf("%s leader is %s (also leads: %v); owner %s", stream, target, also, st.owner)
	survivors := b.others(target)
	before := b.fencedOf(ctx, survivors)
	var bt *bot
	var via string
	if withBot {
		via = third
		bt = b.startBot(ctx, via)
		cluster.Sleep(ctx, botLead)
	}
	t0 := time.Now()
	if err := b.c.Signal(b.i(target), syscall.SIGKILL); err != nil {
		if bt != nil {
			bt.stop()
		}
		return r, err
	}
	until := t0.Add(b.o.RecoveryTimeout)
	var elected time.Time
	var newLeader string
	for elected.IsZero() && time.Now().Before(until) && ctx.Err() == nil {
		if l, err := b.leader(ctx, stream, target); err == nil && l != "" && l != target {
			elected, newLeader = time.Now(), l
			break
		}
		cluster.Sleep(ctx, 50*time.Millisecond)
	}
	var rec time.Time
	if !elected.IsZero() {
		rec, err = b.waitRecovery(ctx, survivors, elected, until, func(tickRec) bool { return true })
		r.Recovered = err == nil
	}
	end := time.Now()
	if r.Recovered {
		end = rec.Add(windowAfter)
	}
	if withBot {
		end = later(end, t0.Add(latencyWindow+time.Second))
		sleepUntil(ctx, t0.Add(latencyWindow))
		pubs, ackFailed := bt.stop()
		sleepUntil(ctx, end)
		r.Latency, r.Unapplied = b.measureInputs(pubsIn(pubs, t0, t0.Add(latencyWindow)), via, t0, goalFor(faultKillInputsLeader, b.o.tickPeriod()).LatencyP99)
		r.AckFailed = ackFailed
		b.track.Store(nil)
	}
	sleepUntil(ctx, end)
	b.finish(ctx, &r, survivors, before, t0, end)
	if own, ep := b.ownerNow(ctx, survivors); ep != st.epoch {
		r.OwnerChanged = true
		r.Note = fmt.Sprintf("owner changed %s/%d → %s/%d; ", st.owner, st.epoch, own, ep)
	}
	if elected.IsZero() {
		r.Note += fmt.Sprintf("no new %s leader within %v", stream, b.o.RecoveryTimeout)
	} else {
		r.Election = elected.Sub(t0)
		r.Note += fmt.Sprintf("%s leader %s → %s after %s", stream, target, newLeader, ms(r.Election))
		if r.AlsoLed != "" {
			r.Note += "; the killed node also led " + r.AlsoLed
		}
	}
	return r, b.restart(ctx, target)
}

// alsoLed lists the placed streams other than stream that node leads.
func (b *bench) alsoLed(ctx context.Context, node, stream string) []string {
	var out []string
	for _, s := range wire.PlacedStreams {
		if l, err := b.leader(ctx, s, node); s != stream && err == nil && l == node {
			out = append(out, s)
		}
	}
	return out
}

// moveLeader asks the stream's leader to step down in favour of to, and waits up to 5 s for it.
func (b *bench) moveLeader(ctx context.Context, stream, to string) {
	if err := cluster.MoveStreamLeader(ctx, b.obs[to].Conn(), stream, to); err != nil {
		b.logf("move leader of %s to %s: %v", stream, to, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && cluster.Sleep(ctx, 100*time.Millisecond) {
		if l, err := b.leader(ctx, stream); err == nil && l == to {
			b.logf("moved leader of %s to %s", stream, to)
			return
		}
	}
	b.logf("leader of %s did not move to %s", stream, to)
}

// leaderNot returns the stream's leader once it is not avoid, waiting up to leaderWait.
func (b *bench) leaderNot(ctx context.Context, stream, avoid string) (string, error) {
	deadline := time.Now().Add(leaderWait)
	last := ""
	for {
		l, err := b.leader(ctx, stream, avoid)
		if err == nil && l != "" && l != avoid {
			return l, nil
		}
		last = l
		if time.Now().After(deadline) || !cluster.Sleep(ctx, 250*time.Millisecond) {
			return "", fmt.Errorf("the leader of %s stayed %q (the owner is %s) for %v", stream, last, avoid, leaderWait)
		}
	}
}

// ownerNow is the room's owner and epoch according to the first of nodes that answers.
func (b *bench) ownerNow(ctx context.Context, nodes []string) (string, uint64) {
	for _, n := range nodes {
		if o, e, err := b.roomOwner(ctx, n); err == nil {
			return o, e
		}
	}
	return "", 0
}

// finish fills in the gap over gapNodes and the stale counts over all observers for [t0 − windowBefore, end],
// and the fenced-ticks delta of the nodes in before.
func (b *bench) finish(ctx context.Context, r *repResult, gapNodes []string, before map[string]float64, t0, end time.Time) {
	from := t0.Add(-windowBefore)
	r.Gap, r.GapNode = b.gapOver(gapNodes, from, end)
	b.logStretches("", from, end, 4*b.o.tickPeriod())
	r.StalePublished, r.StaleAccepted = b.rec.staleCounts(from, end)
	keys := make([]string, 0, len(before))
	for n := range before {
		keys = append(keys, n)
	}
	slices.Sort(keys)
	r.Fenced = fencedDelta(before, b.fencedOf(ctx, keys))
}

// startBot starts a bot publishing through node via, tracking its player in every observer's ticks.
func (b *bench) startBot(ctx context.Context, via string) *bot {
	var raw [8]byte
	_, _ = crand.Read(raw[:])
	player := "fb" + hex.EncodeToString(raw[:])
	b.track.Store(&player)
	b.logf("bot %s publishes through %s", player, via)
	return startBot(ctx, b.obs[via].JetStream(), b.o.Room, b.input, player, b.o.tickPeriod())
}

// baseline measures input → applied latency through a non-owner node without a fault.
func (b *bench) baseline(ctx context.Context) (latencyResult, error) {
	res := latencyResult{Name: "baseline (no fault, 30 s)", Goal: b.o.tickPeriod() + 15*time.Millisecond}
	st, err := b.waitStable(ctx)
	if err != nil {
		return res, err
	}
	via := b.others(st.owner)[0]
	bt := b.startBot(ctx, via)
	cluster.Sleep(ctx, time.Second)
	t0 := time.Now()
	cluster.Sleep(ctx, baselineWindow)
	pubs, ackFailed := bt.stop()
	cluster.Sleep(ctx, time.Second)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	b.logStretches("baseline: ", t0, t0.Add(baselineWindow), 2*b.o.tickPeriod())
	res.Latency, res.Unapplied = b.measureInputs(pubsIn(pubs, t0, t0.Add(baselineWindow)), via, t0, res.Goal)
	b.track.Store(nil)
	res.AckFailed = ackFailed
	res.Runs = 1
	return res, nil
}

// measureInputs computes the input latencies of pubs from the ticks via's observer accepted since t0, and logs
// the inputs slower than goal and those never applied.
func (b *bench) measureInputs(pubs []publish, via string, t0 time.Time, goal time.Duration) ([]time.Duration, int) {
	ticks := b.rec.acks(via, t0)
	for i, d := range applyDelays(pubs, ticks) {
		switch {
		case d < 0:
			b.logf("  input seq %d published %s: never applied in a tick at %s", pubs[i].Seq, pubs[i].At.Format("15:04:05.000"), via)
		case d > goal:
			b.logf("  input seq %d published %s: applied after %s", pubs[i].Seq, pubs[i].At.Format("15:04:05.000"), ms(d))
		}
	}
	return inputLatencies(pubs, ticks)
}

// pubsIn returns the publishes issued in [from, to).
func pubsIn(pubs []publish, from, to time.Time) []publish {
	var out []publish
	for _, p := range pubs {
		if !p.At.Before(from) && p.At.Before(to) {
			out = append(out, p)
		}
	}
	return out
}

// tickingFor reports whether node's observer received ticks over the last d with no stretch longer than four
// tick periods, its last one included.
func (b *bench) tickingFor(node string, d time.Duration) bool {
	from := time.Now().Add(-d)
	return stats.Longest(stats.Offsets(b.rec.tickTimes(node), from), 0, d).Len() <= 4*b.o.tickPeriod()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// waitRunning is -random's start of a repetition: every node runs and is ready and every observer has received
// ticks without a gap for the gap window's lead (windowBefore: a node restarted by the previous repetition is
// back, and its own start lies outside the window), then a random wait of up to -random-max, as a user's next
// fault comes. It does not wait for the owner to
// be agreed on or for the stream leaders to be placed: it records whether the owner led a placed stream when the
// fault came (placed false), and the owner and epoch it reads then.
func (b *bench) waitRunning(ctx context.Context) (stableState, error) {
	var st stableState
	deadline := time.Now().Add(stableTimeout)
	for {
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		if time.Now().After(deadline) {
			return st, fmt.Errorf("cluster not running again after %v", stableTimeout)
		}
		running := true
		for i, name := range b.c.Names() {
			if !b.c.Running(i) {
				return st, fmt.Errorf("%s is not running", name)
			}
			if !b.ready(ctx, name) || !b.obs[name].Attached() {
				running = false
				break
			}
			if !b.tickingFor(name, windowBefore) {
				running = false
				break
			}
		}
		if running {
			break
		}
		cluster.Sleep(ctx, 50*time.Millisecond)
	}
	wait := time.Duration(0)
	if b.o.RandomMax > 0 {
		wait = time.Duration(b.rng.Int64N(int64(b.o.RandomMax)))
	}
	cluster.Sleep(ctx, wait)
	owner, epoch := b.ownerNow(ctx, b.c.Names())
	if owner == "" {
		return st, fmt.Errorf("no owner of the room known %v after the cluster ran again", wait)
	}
	st.owner, st.epoch, st.placed = owner, epoch, true
	for _, s := range wire.PlacedStreams {
		if l, err := b.leader(ctx, s, owner); err == nil && l == owner {
			st.placed = false
		}
	}
	b.logf("random moment: %v after the cluster ran again; owner %s epoch %d leads a placed stream: %v", wait, owner, epoch, !st.placed)
	return st, nil
}

// cutOwner partitions the owner from its peers with the route links (nothing is closed: its routes stall, as on
// a real network), measures until every other node has a tick of a newer epoch, keeps the partition cutHold
// more, heals it and watches for stale ticks as the old owner rejoins.
func (b *bench) cutOwner(ctx context.Context, st stableState) (repResult, error) {
	var r repResult
	if b.links == nil {
		return r, errors.New("cut-owner needs route links (-link-port)")
	}
	survivors := b.others(st.owner)
	before := b.fencedOf(ctx, survivors)
	t0 := time.Now()
	b.links.Cut(map[string]bool{st.owner: true})
	rec, err := b.waitRecovery(ctx, survivors, t0, t0.Add(b.o.RecoveryTimeout), func(t tickRec) bool { return t.Epoch > st.epoch })
	if err != nil && ctx.Err() != nil {
		b.links.Cut(map[string]bool{})
		return r, ctx.Err()
	}
	r.Recovered = err == nil
	if r.Recovered {
		r.Note = fmt.Sprintf("new epoch on the majority after %s", ms(rec.Sub(t0)))
		sleepUntil(ctx, rec.Add(cutHold))
	}
	b.links.Cut(map[string]bool{})
	healed := time.Now()
	end := healed.Add(thawWatch)
	if r.Recovered {
		end = later(end, rec.Add(windowAfter))
	}
	sleepUntil(ctx, end)
	b.finish(ctx, &r, survivors, before, t0, end)
	return r, b.c.WaitReady(ctx, restartTimeout, nil)
}

// loadOwner keeps every core busy with other processes for -load-for, pauses the owner's process for 100-300 ms
// every 1-2 s (SIGSTOP and SIGCONT: a whole-process stall, as a long GC pause or a descheduled VM is), and counts
// the room's epochs newer than st's that any observer saw: takeovers, which must not happen. The gap is the
// longest tick-free stretch over all nodes, for information.
func (b *bench) loadOwner(ctx context.Context, st stableState) (repResult, error) {
	var r repResult
	all := b.c.Names()
	before := b.fencedOf(ctx, all)
	stop, err := startBurners(runtime.NumCPU())
	if err != nil {
		return r, err
	}
	defer stop()
	p := b.i(st.owner)
	t0 := time.Now()
	end := t0.Add(b.o.LoadFor)
	pauses := 0
	for ctx.Err() == nil && time.Now().Before(end) {
		wait := time.Second + time.Duration(b.rng.Int64N(int64(time.Second)))
		if !cluster.Sleep(ctx, min(wait, time.Until(end))) || !time.Now().Before(end) {
			break
		}
		pause := 100*time.Millisecond + time.Duration(b.rng.Int64N(int64(200*time.Millisecond)+1))
		if err := b.c.Freeze(p); err != nil {
			return r, err
		}
		time.Sleep(pause) // not cancellable: the owner is always thawed
		if err := b.c.Thaw(p); err != nil {
			return r, err
		}
		pauses++
	}
	stop()
	r.Recovered = true
	epochs := map[uint64]bool{}
	for _, n := range all {
		for _, t := range b.rec.ticksBetween(n, t0, time.Now()) {
			if t.Epoch > st.epoch {
				epochs[t.Epoch] = true
			}
		}
	}
	if owner, epoch := b.ownerNow(ctx, all); owner != st.owner || epoch != st.epoch {
		epochs[epoch] = true
	}
	r.Takeovers = len(epochs)
	r.OwnerChanged = r.Takeovers > 0
	r.Note = fmt.Sprintf("%d pauses of the owner over %v", pauses, b.o.LoadFor)
	b.finish(ctx, &r, all, before, t0, time.Now())
	return r, nil
}

// startBurners starts n processes that keep a core busy each (this program, re-run as a busy loop), and returns
// the function that kills them and waits for them.
func startBurners(n int) (stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var cmds []*exec.Cmd
	stop = func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		cmds = nil
	}
	for range n {
		c := exec.Command(self)
		c.Env = append(os.Environ(), BurnEnv+"=1")
		if err := c.Start(); err != nil {
			stop()
			return nil, fmt.Errorf("start a busy process: %w", err)
		}
		cmds = append(cmds, c)
	}
	return stop, nil
}

// BurnEnv set to 1 makes failbench's program a busy loop (load-owner's other work) instead of the benchmark: its
// main calls Burn.
const BurnEnv = "TICKMESH_FAILBENCH_BURN"

// Burn spins until the process is killed.
func Burn() {
	x := uint64(1)
	for {
		for range 1 << 20 {
			x = x*6364136223846793005 + 1442695040888963407
		}
		if x == 0 {
			os.Exit(0)
		}
	}
}
