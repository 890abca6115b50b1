package compact

// Follower reads a stream of frames only as far as a client that does not look at the game needs: each tick's
// position and time, and one player's ack (a load generator's thousands of clients, which measure delivery and
// input latency). It keeps a few integers instead of the room's state, and reads a delta only up to its players
// section, so it checks the frames' structure no further than that: a Decoder is what checks a frame whole.
// Not safe for concurrent use.
type Follower struct {
	player string

	valid           bool
	epoch           uint64
	seq             uint64
	time            int64
	room            string
	globals, fields int // the schema's counts
	slot            int // the player's slot, -1 when the state has no such player
	ack             uint64
}

// NewFollower follows the ack of player.
func NewFollower(player string) *Follower { return &Follower{player: player, slot: -1} }

// SetPlayer changes the player followed; its ack is known again from the next keyframe.
func (f *Follower) SetPlayer(player string) {
	if player != f.player {
		f.player, f.slot = player, -1
		f.valid = false
	}
}

// Player is the player followed.
func (f *Follower) Player() string { return f.player }

// Valid reports whether a keyframe was applied: deltas can follow.
func (f *Follower) Valid() bool { return f.valid }

// Reset forgets the stream: the next frame must be a keyframe.
func (f *Follower) Reset() { f.valid = false }

// Tick is the position and time (Unix ms) of the last frame applied, and its room.
func (f *Follower) Tick() (room string, epoch, seq uint64, time int64) {
	return f.room, f.epoch, f.seq, f.time
}

// Ack is the followed player's ack, and whether the tick has the player.
func (f *Follower) Ack() (uint64, bool) {
	if f.slot < 0 {
		return 0, false
	}
	return f.ack, true
}

// Apply reads a frame; a delta whose base is not the last tick is ErrBase, as for a Decoder. A refused frame
// leaves the follower as it was.
func (f *Follower) Apply(frame []byte) error {
	info, err := Peek(frame)
	if err != nil {
		return err
	}
	if info.Kind == Delta && (!f.valid || info.Epoch != f.epoch || info.Base != f.seq) {
		return ErrBase
	}
	next := *f
	r := reader{b: frame}
	if info.Kind == Keyframe {
		next.keyframe(&r)
	} else {
		next.delta(&r)
	}
	if r.err != nil {
		return r.err
	}
	next.valid = true
	*f = next
	return nil
}

func (f *Follower) keyframe(r *reader) {
	r.byte()
	f.epoch, f.seq, f.time = r.counter("epoch"), r.counter("seq"), int64(r.counter("time"))
	f.room = r.str("room")
	r.str("owner")
	r.str("game")
	count := func(what string) int {
		n := r.count(what, MaxNames, 2)
		for range n {
			r.str(what)
		}
		return n
	}
	f.globals = count("globals")
	f.fields = count("player fields")
	for range r.count("object kinds", MaxNames, 2) {
		r.str("object kind")
		count("object fields")
	}
	for range f.globals {
		r.uvarint()
	}
	f.slot = -1
	prev := -1
	for range r.count("players", MaxSlots, 7+f.fields) {
		prev += 1 + int(min(r.uvarint(), MaxSlots))
		f.entry(r, prev, true)
	}
}

// entry reads a player's entry of a keyframe or a delta's joined section at slot.
func (f *Follower) entry(r *reader, slot int, withFields bool) {
	id := r.id()
	ack := r.counter("ack")
	r.str("name")
	r.uvarint()
	if r.byte() == 0 {
		r.uvarint()
	}
	if withFields {
		for range f.fields {
			r.uvarint()
		}
	}
	if r.err == nil && id == f.player {
		f.slot, f.ack = slot, ack
	}
}

func (f *Follower) delta(r *reader) {
	r.byte()
	r.counter("epoch")
	f.seq = r.counter("seq")
	r.uvarint()
	f.time = r.plus("time", f.time)
	flags := r.byte()
	var mask []byte
	if flags&secGlobals != 0 {
		mask = r.mask(f.globals, mask)
		if r.err != nil {
			return
		}
		for i := range f.globals {
			if bit(mask, i) {
				r.uvarint()
			}
		}
	}
	if flags&secLeft != 0 {
		prev := -1
		for range r.count("left", MaxSlots, 1) {
			prev += 1 + int(min(r.uvarint(), MaxSlots))
			if prev == f.slot {
				f.slot = -1
			}
		}
	}
	if flags&secJoined != 0 {
		prev := -1
		for range r.count("joined", MaxSlots, 7+f.fields) {
			prev += 1 + int(min(r.uvarint(), MaxSlots))
			f.entry(r, prev, true)
		}
	}
	if flags&secRoster != 0 {
		for range r.count("roster", MaxSlots, 3) {
			r.uvarint()
			r.str("name")
			r.uvarint()
			if r.byte() == 0 {
				r.uvarint()
			}
		}
	}
	if flags&secPlayers != 0 {
		prev := -1
		for range r.count("players", MaxSlots, 2) {
			prev += 1 + int(min(r.uvarint(), MaxSlots))
			mask = r.mask(1+f.fields, mask)
			if r.err != nil {
				return
			}
			if bit(mask, 0) {
				ack := r.plus("ack", int64(f.ack))
				if prev == f.slot {
					f.ack = uint64(max(ack, 0))
				}
			}
			for i := range f.fields {
				if bit(mask, i+1) {
					r.uvarint()
				}
			}
		}
	}
	// The objects section is not read: nothing here needs it.
}
