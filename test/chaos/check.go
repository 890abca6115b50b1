package chaos

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tickmesh/tickmesh/internal/stats"
)

// The streaming checks run as observations arrive (record.go): (a) and (b) per receiver, one owner per
// epoch, one content per position, headers matching bodies, and the session check (a welcomed bot's join
// shows in the game). The checks here run after each fault, on what
// the store holds: (c) inputs, (e) tick gaps; (d) convergence is watched live by the suite.

// gapIn returns the longest stretch of [from, to] without an accepted tick in ticks (sorted by time).
func gapIn(ticks []TickObs, from, to time.Duration) Gap {
	var at []time.Duration
	for _, t := range ticks {
		if t.Accepted {
			at = append(at, t.At)
		}
	}
	g := stats.Longest(at, from, to)
	return Gap{From: g.From, Max: g.Len()}
}

// checkGaps is check (e): in [Start-1s, Checked], no bot, and no recorder on a node the fault did not act on,
// goes without an accepted tick for longer than the fault's budget.
func (h *Harness) checkGaps(f *Fault) {
	s := h.Store
	s.mu.Lock()
	defer s.mu.Unlock()
	from, to := f.Start-time.Second, f.Checked
	for i, b := range s.bots {
		budget := f.Budget
		if f.BotsOnTarget[i] {
			budget = f.TargetBudget
		}
		g := gapIn(b.Ticks, from, to)
		g.Receiver, g.Budget = b.Name, budget
		f.BotGaps = append(f.BotGaps, g)
		if g.Max > budget {
			ev := []string{fmt.Sprintf("window %s..%s; on a target node at the start: %v", fmtDur(from), fmtDur(to), f.BotsOnTarget[i])}
			for _, c := range b.Conns {
				if c.End != 0 && c.End < g.From-time.Second || c.Dial > g.From+g.Max+time.Second {
					continue
				}
				ev = append(ev, fmt.Sprintf("connection %d to %s: dial %s, welcome %s, end %s (%s)", c.N, s.nodeNames[c.Node], fmtDur(c.Dial), fmtDur(c.Welcome), fmtDur(c.End), c.EndReason))
			}
			ev = append(ev, ticksAround(s, b.Ticks, g.From, g.From+g.Max)...)
			s.violateLocked(Violation{Check: "e-tick-gap", Fault: f.N, At: g.From, Receiver: b.Name,
				Message:  fmt.Sprintf("no tick for %s from %s (budget %s for %s)", fmtDur(g.Max), fmtDur(g.From), fmtDur(budget), f.Kind),
				Evidence: ev})
		}
	}
	for i, r := range s.relays {
		if slices.Contains(f.Affected, i) {
			continue
		}
		g := gapIn(r.Ticks, from, to)
		g.Receiver, g.Budget = r.Name, f.Budget
		f.RelayGaps = append(f.RelayGaps, g)
		if g.Max > f.Budget {
			s.violateLocked(Violation{Check: "e-tick-gap", Fault: f.N, At: g.From, Receiver: r.Name,
				Message:  fmt.Sprintf("no accepted tick for %s from %s (budget %s for %s; the fault did not act on this node)", fmtDur(g.Max), fmtDur(g.From), fmtDur(f.Budget), f.Kind),
				Evidence: ticksAround(s, r.Ticks, g.From, g.From+g.Max)})
		}
	}
}

// ticksAround describes the two ticks before from and after to.
func ticksAround(s *Store, ticks []TickObs, from, to time.Duration) []string {
	i := sort.Search(len(ticks), func(i int) bool { return ticks[i].At >= from })
	j := sort.Search(len(ticks), func(i int) bool { return ticks[i].At > to })
	var out []string
	add := func(t TickObs) {
		out = append(out, fmt.Sprintf("t=%s tick=(%d,%d) owner=%s via=%s conn=%d accepted=%v ack=%d", fmtDur(t.At), t.Pos.Epoch, t.Pos.Seq, s.name(t.Owner), s.name(t.Node), t.Conn, t.Accepted, t.Ack))
	}
	for k := max(0, i-2); k < i; k++ {
		add(ticks[k])
	}
	if j-i > 6 {
		for k := i; k < i+3; k++ {
			add(ticks[k])
		}
		out = append(out, fmt.Sprintf("... %d more ...", j-i-6))
		i = j - 3
	}
	for k := i; k < min(len(ticks), j+2); k++ {
		add(ticks[k])
	}
	return out
}

// checkDurableInputs is the second half of check (c): an input a bot sent more than 2 s before the fault (on
// a connection that still delivered a tick afterwards, so the node did read it) must be applied in the first
// tick after recovery: the first tick of a new epoch, or, when the epoch did not change, the first after the
// fault ended.
func (h *Harness) checkDurableInputs(f *Fault) {
	s := h.Store
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := f.Start - 2*time.Second
	for _, b := range s.bots {
		var sent *InputObs
		for k := len(b.Inputs) - 1; k >= 0 && sent == nil; k-- {
			in := &b.Inputs[k]
			if in.At > cutoff {
				continue
			}
			j := sort.Search(len(b.Ticks), func(i int) bool { return b.Ticks[i].At > in.At })
			for ; j < len(b.Ticks) && b.Ticks[j].At < f.Start; j++ {
				if b.Ticks[j].Conn == in.Conn {
					sent = in
					break
				}
			}
			if in.At < cutoff-10*time.Second {
				break
			}
		}
		if sent == nil {
			continue
		}
		var first *TickObs
		newEpoch := f.EpochAfter > f.EpochBefore
		for j := sort.Search(len(b.Ticks), func(i int) bool { return b.Ticks[i].At > f.Start }); j < len(b.Ticks); j++ {
			t := &b.Ticks[j]
			if !t.Accepted {
				continue
			}
			if (newEpoch && t.Pos.Epoch > f.EpochBefore) || (!newEpoch && t.At > f.End) {
				first = t
				break
			}
		}
		if first == nil {
			continue // no tick at all: check (e) reports it
		}
		if first.Ack < sent.Seq {
			kind := "input"
			if sent.Join {
				kind = "join"
			}
			s.violateLocked(Violation{Check: "c-durable-input", Fault: f.N, At: first.At, Receiver: b.Name,
				Message: fmt.Sprintf("%s seq %d sent at %s (%s before the fault) missing from the first tick after recovery (%d,%d) by %s: ack %d",
					kind, sent.Seq, fmtDur(sent.At), fmtDur(f.Start-sent.At), first.Pos.Epoch, first.Pos.Seq, s.name(first.Owner), first.Ack),
				Evidence: append([]string{fmt.Sprintf("sent on connection %d to %s", sent.Conn, s.name(sent.Node))}, ticksAround(s, b.Ticks, f.Start-time.Second, first.At)...)})
		}
	}
}

// Regression is a player's ack going backwards between two ticks (in (epoch, seq) order) that bots accepted:
// inputs that a tick had shown applied were missing later.
type Regression struct {
	Bot       string
	From, To  Pos    // the tick with the higher ack, the first tick with the lower one
	FromOwner string //
	ToOwner   string //
	FromAck   uint64
	ToAck     uint64
	SeenAt    time.Duration // when To was first received by anyone
	Fault     int           // the fault in progress (0: none)
	Lost      []InputObs    // the inputs in (ToAck, FromAck]
	// Durable: some lost input was sent ≥ 2 s before the fault (or no fault was in progress). Before acks meant
	// durable, a drop that lost only inputs sent later (Durable false) was excused as "applied, not durable yet";
	// now every drop is a violation, and those are counted apart: the figure must be 0.
	Durable    bool
	Violation  bool
	Explainers string
}

func (r Regression) String() string {
	var l []string
	for _, in := range r.Lost {
		k := "input"
		if in.Join {
			k = "join"
		}
		l = append(l, fmt.Sprintf("%s %d sent %s conn %d", k, in.Seq, fmtDur(in.At), in.Conn))
	}
	return fmt.Sprintf("%s: ack %d at (%d,%d) by %s → ack %d at (%d,%d) by %s, first seen %s; lost %v",
		r.Bot, r.FromAck, r.From.Epoch, r.From.Seq, r.FromOwner, r.ToAck, r.To.Epoch, r.To.Seq, r.ToOwner, fmtDur(r.SeenAt), l)
}

type regKey struct {
	bot int
	pos Pos
}

// checkAckRegressions is the first half of check (c): over every tick position some bot accepted, in
// (epoch, seq) order, each player's ack never goes down. A drop means inputs shown acknowledged were lost; an
// ack means applied and stored in INPUTS (docs/PROTOCOL.md), so every drop is a violation. Each is also
// classified (Durable) by whether a lost input was sent ≥ 2 s before the fault in progress, which is what the
// suite excused while acks meant applied only. Found drops are remembered, so running it again reports only new
// ones.
func (h *Harness) checkAckRegressions(cur *Fault) {
	s := h.Store
	s.mu.Lock()
	defer s.mu.Unlock()
	type entry struct {
		pos Pos
		pi  *posInfo
	}
	var all []entry
	for p, pi := range s.positions {
		if pi.delivered {
			all = append(all, entry{p, pi})
		}
	}
	sort.Slice(all, func(i, j int) bool { return less(all[i].pos, all[j].pos) })
	if h.regSeen == nil {
		h.regSeen = map[regKey]bool{}
	}
	for bi, b := range s.bots {
		var prevAck uint64
		var prev entry
		for _, e := range all {
			a := e.pi.acks[bi]
			if a == 0 {
				continue
			}
			if a < prevAck && !h.regSeen[regKey{bi, e.pos}] {
				h.regSeen[regKey{bi, e.pos}] = true
				r := Regression{Bot: b.Name, From: prev.pos, To: e.pos, FromOwner: prev.pi.owner, ToOwner: e.pi.owner,
					FromAck: prevAck, ToAck: a, SeenAt: e.pi.first}
				for _, in := range b.Inputs {
					if in.Seq > a && in.Seq <= prevAck {
						r.Lost = append(r.Lost, in)
					}
				}
				var fr *Fault
				for _, f := range h.faults {
					if f.Start != 0 && f.Start <= r.SeenAt && (f.Checked == 0 || r.SeenAt <= f.Checked+10*time.Second) {
						fr = f
					}
				}
				if fr == nil {
					r.Durable = true
					r.Explainers = "no fault in progress"
				} else {
					r.Fault = fr.N
					for _, in := range r.Lost {
						if in.At <= fr.Start-2*time.Second {
							r.Durable = true
						}
					}
					if len(r.Lost) == 0 {
						r.Durable = true // an ack the bot never sent: cannot be explained by timing
						r.Explainers = "no sent input in the lost range"
					}
				}
				r.Violation = true
				h.regs = append(h.regs, r)
				if r.Violation {
					s.violateLocked(Violation{Check: "c-lost-input", Fault: r.Fault, At: r.SeenAt, Receiver: b.Name,
						Message: fmt.Sprintf("ack went back from %d to %d", r.FromAck, r.ToAck), Evidence: []string{r.String()}})
				}
			}
			prevAck, prev = a, e
		}
	}
}

func maxGap(gs []Gap) time.Duration {
	var m time.Duration
	for _, g := range gs {
		m = max(m, g.Max)
	}
	return m
}

func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	if d < 0 {
		return "-" + fmtDur(-d)
	}
	if d < time.Second {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
