package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tickmesh/tickmesh/internal/cluster"
)

// Kind is a kind of fault.
type Kind string

// The faults the harness injects.
const (
	KillOwner         Kind = "kill-owner"          // SIGKILL the lobby's owner, restart it after a delay
	KillRandom        Kind = "kill-random"         // SIGKILL a random node (maybe the owner), restart it after a delay
	FreezeOwner       Kind = "freeze-owner"        // SIGSTOP the owner for 2 × lease TTL, then SIGCONT
	PartitionOwner    Kind = "partition-owner"     // the owner loses both peers (nftables), then heal
	PartitionNonOwner Kind = "partition-non-owner" // a non-owner loses both peers, then heal
	PartitionOneWay   Kind = "partition-one-way"   // one node drops what comes from one peer (one-way loss), then heal
	PartitionBridge   Kind = "partition-bridge"    // a sees b, b sees c, a and c do not see each other, then heal
	RestartAll        Kind = "restart-all"         // SIGKILL every node, restart them all
)

// Kinds lists every kind, in report order.
var Kinds = []Kind{KillOwner, KillRandom, FreezeOwner, PartitionOwner, PartitionNonOwner, PartitionOneWay, PartitionBridge, RestartAll}

// PartitionKinds are the kinds -partitions draws from.
var PartitionKinds = []Kind{PartitionOwner, PartitionNonOwner, PartitionOneWay, PartitionBridge}

// ParseKind checks a kind name.
func ParseKind(s string) (Kind, error) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown fault %q (want one of %v)", s, Kinds)
}

// Plan builds the seeded, shuffled list of faults for the given counts; each partition is one of the
// PartitionKinds, drawn at random.
func Plan(rng *rand.Rand, ownerKills, randomKills, partitions, freezes, restarts int) []Kind {
	var p []Kind
	add := func(k Kind, n int) {
		for range n {
			p = append(p, k)
		}
	}
	add(KillOwner, ownerKills)
	add(KillRandom, randomKills)
	add(FreezeOwner, freezes)
	add(RestartAll, restarts)
	for range partitions {
		p = append(p, PartitionKinds[rng.IntN(len(PartitionKinds))])
	}
	rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// Fault is one injected fault and what the checkers found about it.
type Fault struct {
	N           int
	Kind        Kind
	Targets     []int // node indexes acted on
	Desc        string
	OwnerBefore int
	EpochBefore uint64
	OwnerAfter  int
	EpochAfter  uint64

	Start     time.Duration // the fault began (kill, stop, first rule)
	End       time.Duration // the fault was undone (restart, SIGCONT, heal)
	Converged time.Duration // all bots on one epoch and player set (0 = never)
	Recovered time.Duration // the healthy window began
	Checked   time.Duration // the healthy window ended: the fault's observation window is [Start-1s, Checked]

	Affected     []int  // nodes whose relay recorders are exempt from the gap budget
	BotsOnTarget []bool // per bot: connected to a target node when the fault began
	Budget       time.Duration
	TargetBudget time.Duration // for bots on a killed node (kill-random)

	Leaders map[string]string // stream → leader, as the owner saw it just before the fault

	BotGaps    []Gap // per bot: the longest stretch without an accepted tick in the window
	RelayGaps  []Gap // per node not in Affected
	Notes      []string
	Violations int
}

// Gap is the longest stretch without accepted ticks of one receiver in a fault's window.
type Gap struct {
	Receiver string
	Max      time.Duration
	From     time.Duration // start of that stretch
	Budget   time.Duration
}

func (f *Fault) String() string {
	return fmt.Sprintf("#%d %s (%s)", f.N, f.Kind, f.Desc)
}

func (f *Fault) note(format string, args ...any) {
	f.Notes = append(f.Notes, fmt.Sprintf(format, args...))
}

// budgets sets the fault's tick-gap budgets (docs/CHAOS.md).
func (f *Fault) budgets(leaseTTL time.Duration) {
	switch f.Kind {
	case KillOwner:
		f.Budget, f.TargetBudget = 3*time.Second, 3*time.Second
	case KillRandom:
		f.Budget, f.TargetBudget = 3*time.Second, 8*time.Second
	case FreezeOwner:
		f.Budget = 2*leaseTTL + 5*time.Second
		f.TargetBudget = f.Budget
	case RestartAll:
		f.Budget, f.TargetBudget = 60*time.Second, 60*time.Second
	default: // partitions
		f.Budget, f.TargetBudget = 12*time.Second, 12*time.Second
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// inject performs f (its Kind, OwnerBefore set) on the cluster: it returns once the fault has been undone
// (End set). The targets and durations are drawn from rng.
func (h *Harness) inject(ctx context.Context, f *Fault, rng *rand.Rand) error {
	c, nt := h.Cluster, h.Net
	n := c.Len()
	owner := f.OwnerBefore
	others := func(x int) []int {
		var o []int
		for i := range n {
			if i != x {
				o = append(o, i)
			}
		}
		return o
	}
	name := func(i int) string { return c.Node(i).Name }
	restartDelay := func() time.Duration { return 2*time.Second + time.Duration(rng.Int64N(int64(3*time.Second))) }
	hold := h.cfg.LeaseTTL + time.Duration(rng.Int64N(int64(h.cfg.LeaseTTL/2)+1))

	// act begins the fault, holds it for d and ends it; Start and End are set around that.
	act := func(begin func() error, d time.Duration, end func() error) error {
		f.Start = h.Store.Now()
		if err := begin(); err != nil {
			return err
		}
		err := sleep(ctx, d)
		if eerr := end(); eerr != nil {
			return eerr
		}
		f.End = h.Store.Now()
		return err
	}
	partition := func(apply func() error) error {
		return act(func() error {
			if err := apply(); err != nil {
				_ = nt.Heal(context.WithoutCancel(ctx))
				return err
			}
			f.note("rules: %s", strings.Join(nt.Rules(), "; "))
			return nil
		}, hold, func() error {
			f.note("packets dropped: %s", strings.ReplaceAll(strings.TrimSpace(nt.Counters(context.WithoutCancel(ctx))), "\n", "; "))
			return nt.Heal(context.WithoutCancel(ctx))
		})
	}

	switch f.Kind {
	case KillOwner, KillRandom:
		t := owner
		if f.Kind == KillRandom {
			t = rng.IntN(n)
		}
		d := restartDelay()
		f.Targets, f.Affected = []int{t}, []int{t}
		f.Desc = fmt.Sprintf("SIGKILL %s (owner %s), restart after %s", name(t), name(owner), fmtDur(d))
		h.beforeKill(ctx, t)
		return act(func() error { return c.Kill(t) }, d, func() error { return c.Start(t) })

	case FreezeOwner:
		d := 2 * h.cfg.LeaseTTL
		f.Targets, f.Affected = []int{owner}, []int{owner}
		f.Desc = fmt.Sprintf("SIGSTOP owner %s for %s, then SIGCONT", name(owner), fmtDur(d))
		return act(func() error { return c.Freeze(owner) }, d, func() error { return c.Thaw(owner) })

	case PartitionOwner, PartitionNonOwner:
		x := owner
		if f.Kind == PartitionNonOwner {
			o := others(owner)
			x = o[rng.IntN(len(o))]
		}
		f.Targets, f.Affected = []int{x}, []int{x}
		f.Desc = fmt.Sprintf("isolate %s (owner %s) from both peers for %s", name(x), name(owner), fmtDur(hold))
		return partition(func() error {
			for _, p := range others(x) {
				if err := nt.Cut(ctx, x, p); err != nil {
					return err
				}
			}
			return nil
		})

	case PartitionOneWay:
		a := rng.IntN(n)
		o := others(a)
		b := o[rng.IntN(len(o))]
		f.Targets, f.Affected = []int{a, b}, []int{a, b}
		f.Desc = fmt.Sprintf("%s drops every packet from %s (one way; owner %s) for %s", name(a), name(b), name(owner), fmtDur(hold))
		return partition(func() error { return nt.Drop(ctx, a, b, In) })

	case PartitionBridge:
		mid := rng.IntN(n)
		ends := others(mid)
		f.Targets, f.Affected = ends, ends
		f.Desc = fmt.Sprintf("bridge: %s and %s both see %s but not each other (owner %s) for %s",
			name(ends[0]), name(ends[1]), name(mid), name(owner), fmtDur(hold))
		return partition(func() error { return nt.Cut(ctx, ends[0], ends[1]) })

	case RestartAll:
		d := time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))
		order := rng.Perm(n)
		f.Targets = order
		f.Desc = fmt.Sprintf("SIGKILL every node (order %s), restart all after %s", names(c, order), fmtDur(d))
		for _, i := range order {
			h.beforeKill(ctx, i)
		}
		each := func(do func(i int) error) func() error {
			return func() error {
				for _, i := range order {
					if err := do(i); err != nil {
						return err
					}
				}
				return nil
			}
		}
		return act(each(c.Kill), d, each(c.Start))
	}
	return fmt.Errorf("unknown fault kind %q", f.Kind)
}

func names(c *cluster.Cluster, idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, c.Node(i).Name)
	}
	return strings.Join(s, ",")
}
