package room

import (
	"hash/fnv"
	"time"
)

// tickPhase is the offset of a room's ticks within the tick period, derived from its name so that every owner
// of the room agrees on it. Rooms tick at different moments of the period instead of together: a node that
// relays many rooms then writes one room's fan-out at a time instead of all of them in one burst, and a node
// that owns many rooms steps them one after another.
func tickPhase(room string, period time.Duration) time.Duration {
	if period <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte("tickmesh-phase:" + room))
	return time.Duration(h.Sum64() % uint64(period))
}

// nextTick is the room's first tick slot more than half a period after now. The slots are the instants whose
// Unix time is phase modulo period. Half a period, and not "after now", so that a timer that fires a little
// early by the wall clock (timers run on the monotonic clock) does not tick twice in the same slot, and one
// that fires late keeps the next slot when it is still half a period away.
func nextTick(now time.Time, period, phase time.Duration) time.Time {
	from := now.Add(period / 2).UnixNano()
	p, ph := int64(period), int64(phase)
	off := (from - ph) % p
	if off < 0 {
		off += p
	}
	slot := from - off + p
	return now.Add(time.Duration(slot - now.UnixNano()))
}
