package compact

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Encoder turns the successive full states of one room, as one owner makes them, into keyframes and deltas. It
// numbers the players with slots (the lowest free slot for a newcomer, kept while the player stays) and keeps
// the last committed state, the base of the next delta. Owners use one per term; a relay reading an old owner's
// JSON ticks uses one to serve protocol 2 from them.
//
// The cycle per tick is Fill (or FillTick), then AppendDelta and/or AppendKeyframe, then Commit once the frame
// is on its way. A tick not committed (its publish failed) leaves the base where it was: the next delta is
// relative to the last committed tick, and says so. An Encoder is not safe for concurrent use.
type Encoder struct {
	slots map[string]slotGen // id → slot, and the fill that last saw the player
	free  []int32            // free slots below next, sorted
	next  int32              // slots at and above next were never used
	gen   uint32             // the current fill

	cur, base State
	hasBase   bool
	buf       []int64 // FillTick's scratch fields
}

type slotGen struct {
	slot int32
	gen  uint32
}

// Errors of filling.
var (
	// ErrTooLarge: the state exceeds a limit of the format (MaxSlots players, MaxObjects objects of a kind,
	// MaxNames fields, MaxValues integers).
	ErrTooLarge = errors.New("compact: state beyond the format's limits")
	// ErrShape: the state does not have its schema's shape (a missing field, an unsorted list, a value out of
	// range).
	ErrShape = errors.New("compact: state does not match its schema")
)

// NewEncoder returns an encoder with no base: its first frame must be a keyframe.
func NewEncoder() *Encoder { return &Encoder{slots: map[string]slotGen{}} }

// Reset forgets the base and every slot: the next tick starts a new stream (a new term).
func (e *Encoder) Reset() {
	clear(e.slots)
	e.free = e.free[:0]
	e.next = 0
	e.hasBase = false
}

// HasBase reports whether a committed tick exists, so that AppendDelta can be used.
func (e *Encoder) HasBase() bool { return e.hasBase }

// Base is the last committed state (nil before the first commit). It must not be modified.
func (e *Encoder) Base() *State {
	if !e.hasBase {
		return nil
	}
	return &e.base
}

// Current is the state of the last Fill. It must not be modified.
func (e *Encoder) Current() *State { return &e.cur }

// Fill makes the current state: the header, the players of roster (sorted by id, each with its fields in
// v.Players at the same index) and the game's View v, whose names schema gives.
func (e *Encoder) Fill(h Header, schema *Schema, roster []Roster, v *game.View) error {
	if err := checkSchema(schema); err != nil {
		return err
	}
	if len(v.Globals) != len(schema.Globals) || len(v.Players) != len(roster) || len(v.Objects) != len(schema.Objects) {
		return fmt.Errorf("%w: %d globals, %d players for %d in the roster, %d object lists", ErrShape, len(v.Globals), len(v.Players), len(roster), len(v.Objects))
	}
	e.begin(h, schema)
	copy(e.cur.Globals, v.Globals)
	for i, r := range roster {
		if !game.ValidPlayerID(r.ID) || (i > 0 && roster[i-1].ID >= r.ID) {
			return fmt.Errorf("%w: player %d: id %q malformed or not sorted", ErrShape, i, r.ID)
		}
		if v.Players[i].ID != r.ID || len(v.Players[i].Fields) != len(schema.Player) {
			return fmt.Errorf("%w: player %d is %q in the roster and %q with %d fields in the view", ErrShape, i, r.ID, v.Players[i].ID, len(v.Players[i].Fields))
		}
		if err := e.player(r, v.Players[i].Fields); err != nil {
			return err
		}
	}
	for k, kind := range schema.Objects {
		l := v.Objects[k]
		if len(l) > MaxObjects {
			return fmt.Errorf("%w: %d objects of %s", ErrTooLarge, len(l), kind.Name)
		}
		for i, o := range l {
			if len(o.Fields) != len(kind.Fields) || o.ID < 0 || o.ID > game.MaxValue || (i > 0 && l[i-1].ID >= o.ID) {
				return fmt.Errorf("%w: %s %d", ErrShape, kind.Name, o.ID)
			}
			e.cur.objIDs[k] = append(e.cur.objIDs[k], o.ID)
			e.cur.objFields[k] = append(e.cur.objFields[k], o.Fields...)
		}
	}
	return e.end()
}

// FillTick makes the current state from a protocol 1 tick (an old owner's JSON), with the tick's own names as
// the schema: a relay serves protocol 2 from the ticks of owners that publish only JSON.
func (e *Encoder) FillTick(tk *protocol.Tick, schema *Schema) error {
	if tk.Epoch < 1 || tk.Epoch > game.MaxValue || tk.Seq > game.MaxValue || tk.Time < 0 || tk.Time > game.MaxValue {
		return fmt.Errorf("%w: tick %d/%d at %d", ErrShape, tk.Epoch, tk.Seq, tk.Time)
	}
	if err := checkSchema(schema); err != nil {
		return err
	}
	gs := tk.Schema
	if gs == nil {
		gs = &game.Schema{}
	}
	if !sameNames(gs, schema) || len(tk.Globals) != len(schema.Globals) || len(tk.Objects) != len(schema.Objects) {
		return fmt.Errorf("%w: the tick's members are not the schema's", ErrShape)
	}
	e.begin(Header{Room: tk.Room, Owner: tk.Owner, Epoch: tk.Epoch, Seq: tk.Seq, Time: tk.Time}, schema)
	ints := func(dst []int64, src []float64) ([]int64, error) {
		for _, f := range src {
			if f != math.Trunc(f) || math.Abs(f) > game.MaxValue {
				return nil, fmt.Errorf("%w: %v is not an integer within ±2^53-1", ErrShape, f)
			}
			dst = append(dst, int64(f))
		}
		return dst, nil
	}
	var err error
	if e.buf, err = ints(e.buf[:0], tk.Globals); err != nil {
		return err
	}
	copy(e.cur.Globals, e.buf)
	for i := range tk.Players {
		p := &tk.Players[i]
		if !game.ValidPlayerID(p.ID) || len(p.Fields) != len(schema.Player) || (i > 0 && tk.Players[i-1].ID >= p.ID) ||
			p.Ack > game.MaxValue || p.Conn > game.MaxValue || p.Away > game.MaxValue || len(p.Name) > MaxString {
			return fmt.Errorf("%w: player %q", ErrShape, p.ID)
		}
		if e.buf, err = ints(e.buf[:0], p.Fields); err != nil {
			return err
		}
		r := Roster{ID: p.ID, Name: p.Name, Ack: p.Ack, Conn: p.Conn, Online: p.Online}
		if !p.Online {
			r.Away = p.Away
		}
		if err := e.player(r, e.buf); err != nil {
			return err
		}
	}
	for k, kind := range schema.Objects {
		l := tk.Objects[k]
		if len(l) > MaxObjects {
			return fmt.Errorf("%w: %d objects of %s", ErrTooLarge, len(l), kind.Name)
		}
		for i, o := range l {
			if len(o.Fields) != len(kind.Fields) || o.ID < 0 || o.ID > game.MaxValue || (i > 0 && l[i-1].ID >= o.ID) {
				return fmt.Errorf("%w: %s %d", ErrShape, kind.Name, o.ID)
			}
			e.cur.objIDs[k] = append(e.cur.objIDs[k], o.ID)
			if e.cur.objFields[k], err = ints(e.cur.objFields[k], o.Fields); err != nil {
				return err
			}
		}
	}
	return e.end()
}

// SchemaOfTick is the schema of names a protocol 1 tick carries, for FillTick.
func SchemaOfTick(tk *protocol.Tick) *Schema {
	if tk.Schema == nil {
		return &Schema{}
	}
	return SchemaOf("", tk.Schema)
}

func checkSchema(s *Schema) error {
	if len(s.Globals) > MaxNames || len(s.Player) > MaxNames || len(s.Objects) > MaxNames || len(s.Game) > MaxString {
		return fmt.Errorf("%w: schema has too many names", ErrTooLarge)
	}
	for _, k := range s.Objects {
		if len(k.Fields) > MaxNames {
			return fmt.Errorf("%w: object kind %s has too many fields", ErrTooLarge, k.Name)
		}
	}
	return nil
}

func (e *Encoder) begin(h Header, schema *Schema) {
	if e.hasBase && !e.base.Schema.Equal(schema) {
		// Another game (or other names): a new stream, whose first frame is a keyframe.
		e.Reset()
	}
	e.gen++
	e.cur.reset(h, schema)
}

// player puts the next player (in id order) of the current fill at its slot.
func (e *Encoder) player(r Roster, fields []int64) error {
	if len(r.Name) > MaxString || r.Ack > game.MaxValue || r.Conn > game.MaxValue || r.Away > game.MaxValue {
		return fmt.Errorf("%w: player %q", ErrShape, r.ID)
	}
	for _, f := range fields {
		if f < -game.MaxValue || f > game.MaxValue {
			return fmt.Errorf("%w: player %q: %d out of ±2^53-1", ErrShape, r.ID, f)
		}
	}
	sg, ok := e.slots[r.ID]
	if !ok {
		if len(e.free) > 0 {
			sg.slot = e.free[0]
			e.free = e.free[1:]
		} else {
			if e.next >= MaxSlots {
				return fmt.Errorf("%w: more than %d players", ErrTooLarge, MaxSlots)
			}
			sg.slot = e.next
			e.next++
		}
	}
	sg.gen = e.gen
	e.slots[r.ID] = sg
	if !r.Online {
		r.Away = min(r.Away, game.MaxValue)
	} else {
		r.Away = 0
	}
	e.cur.set(int(sg.slot), r, fields)
	e.cur.order = append(e.cur.order, sg.slot)
	return nil
}

// end frees the slots of the players this fill did not see, and checks the size.
func (e *Encoder) end() error {
	if len(e.slots) > len(e.cur.order) {
		for id, sg := range e.slots {
			if sg.gen != e.gen {
				delete(e.slots, id)
				i, _ := slices.BinarySearch(e.free, sg.slot)
				e.free = slices.Insert(e.free, i, sg.slot)
			}
		}
	}
	objs := make([]int, 0, 8)
	for k := range e.cur.objIDs {
		objs = append(objs, len(e.cur.objIDs[k]))
	}
	if e.cur.Schema.values(len(e.cur.order), objs) > MaxValues {
		return fmt.Errorf("%w: more than %d integers", ErrTooLarge, MaxValues)
	}
	if e.cur.Epoch < 1 || e.cur.Epoch > game.MaxValue || e.cur.Seq > game.MaxValue || e.cur.Time < 0 || e.cur.Time > game.MaxValue {
		return fmt.Errorf("%w: tick %d/%d at %d", ErrShape, e.cur.Epoch, e.cur.Seq, e.cur.Time)
	}
	return nil
}

// Commit makes the current state the base of the next delta.
func (e *Encoder) Commit() {
	e.base.CopyFrom(&e.cur)
	e.hasBase = true
}

// CanDelta reports whether the current state can be sent as a delta: there is a base, of the same epoch and
// room, before the current tick, with the same schema.
func (e *Encoder) CanDelta() bool {
	return e.hasBase && e.base.Epoch == e.cur.Epoch && e.base.Room == e.cur.Room && e.base.Owner == e.cur.Owner &&
		e.base.Seq < e.cur.Seq && e.base.Schema.Equal(e.cur.Schema)
}

// AppendKeyframe appends the current state's keyframe to b.
func (e *Encoder) AppendKeyframe(b []byte) []byte { return AppendKeyframe(b, &e.cur) }

// AppendDelta appends the delta from the base to the current state to b. It panics unless CanDelta.
func (e *Encoder) AppendDelta(b []byte) []byte {
	if !e.CanDelta() {
		panic("compact: AppendDelta without a base to delta from")
	}
	return appendDelta(b, &e.base, &e.cur)
}

// AppendKeyframe appends the keyframe of s to b: everything, players in slot order.
func AppendKeyframe(b []byte, s *State) []byte {
	sc := s.Schema
	b = append(b, Keyframe)
	b = appendUvarint(b, s.Epoch)
	b = appendUvarint(b, s.Seq)
	b = appendUvarint(b, uint64(s.Time))
	b = appendString(b, s.Room)
	b = appendString(b, s.Owner)
	b = appendSchema(b, sc)
	for _, v := range s.Globals {
		b = appendZigzag(b, v)
	}
	b = appendUvarint(b, uint64(len(s.order)))
	nf := len(sc.Player)
	prev := -1
	for slot, u := range s.used {
		if !u {
			continue
		}
		b = appendUvarint(b, uint64(slot-prev-1))
		prev = slot
		b = appendRoster(b, &s.roster[slot], true)
		for _, v := range s.fields[slot*nf : (slot+1)*nf] {
			b = appendZigzag(b, v)
		}
	}
	for k, kind := range sc.Objects {
		ids, fs := s.objIDs[k], s.objFields[k]
		nf := len(kind.Fields)
		b = appendUvarint(b, uint64(len(ids)))
		for i, id := range ids {
			if i == 0 {
				b = appendUvarint(b, uint64(id))
			} else {
				b = appendUvarint(b, uint64(id-ids[i-1]-1))
			}
			for _, v := range fs[i*nf : (i+1)*nf] {
				b = appendZigzag(b, v)
			}
		}
	}
	return b
}

func appendNames(b []byte, names []string) []byte {
	b = appendUvarint(b, uint64(len(names)))
	for _, n := range names {
		b = appendString(b, n)
	}
	return b
}

// appendRoster appends a player's framework members: with its id (a newcomer, a keyframe's player) or without
// (a change of an existing player).
func appendRoster(b []byte, r *Roster, withID bool) []byte {
	if withID {
		b = appendID(b, r.ID)
		b = appendUvarint(b, r.Ack)
	}
	b = appendString(b, r.Name)
	b = appendUvarint(b, r.Conn)
	if r.Online {
		return append(b, 1)
	}
	b = append(b, 0)
	return appendUvarint(b, r.Away)
}

// Delta sections: bits of the byte after the header, in the order the sections follow it.
const (
	secGlobals = 1 << iota
	secLeft
	secJoined
	secRoster
	secPlayers
	secObjects
	secAll = 1<<iota - 1
)

// Object list parts: bits of the byte that starts a changed kind's entry.
const (
	objChanged = 1 << iota
	objRemoved
	objAdded
	objAll = 1<<iota - 1
)

func appendDelta(b []byte, base, cur *State) []byte {
	sc := cur.Schema
	b = append(b, Delta)
	b = appendUvarint(b, cur.Epoch)
	b = appendUvarint(b, cur.Seq)
	b = appendUvarint(b, cur.Seq-base.Seq)
	b = appendZigzag(b, cur.Time-base.Time)
	flagsAt := len(b)
	b = append(b, 0)
	var flags byte

	if !slices.Equal(base.Globals, cur.Globals) {
		flags |= secGlobals
		b = appendChanges(b, base.Globals, cur.Globals)
	}

	n := max(len(base.used), len(cur.used))
	usedIn := func(s *State, slot int) bool { return slot < len(s.used) && s.used[slot] }
	same := func(slot int) bool { return usedIn(base, slot) && usedIn(cur, slot) && base.ids[slot] == cur.ids[slot] }

	// Left: slots whose player is gone (or replaced by another player in the same slot).
	count := 0
	for slot := 0; slot < n; slot++ {
		if usedIn(base, slot) && !same(slot) {
			count++
		}
	}
	if count > 0 {
		flags |= secLeft
		b = appendUvarint(b, uint64(count))
		prev := -1
		for slot := 0; slot < n; slot++ {
			if usedIn(base, slot) && !same(slot) {
				b = appendUvarint(b, uint64(slot-prev-1))
				prev = slot
			}
		}
	}
	// Joined: slots with a new player, in full.
	nf := len(sc.Player)
	count = 0
	for slot := 0; slot < n; slot++ {
		if usedIn(cur, slot) && !same(slot) {
			count++
		}
	}
	if count > 0 {
		flags |= secJoined
		b = appendUvarint(b, uint64(count))
		prev := -1
		for slot := 0; slot < n; slot++ {
			if usedIn(cur, slot) && !same(slot) {
				b = appendUvarint(b, uint64(slot-prev-1))
				prev = slot
				b = appendRoster(b, &cur.roster[slot], true)
				for _, v := range cur.fields[slot*nf : (slot+1)*nf] {
					b = appendZigzag(b, v)
				}
			}
		}
	}
	// Roster: the rarely changing members (name, conn, online, away) of players who stay, in full when any
	// changed.
	rosterChanged := func(slot int) bool {
		x, y := &base.roster[slot], &cur.roster[slot]
		return x.Name != y.Name || x.Conn != y.Conn || x.Online != y.Online || x.Away != y.Away
	}
	count = 0
	for slot := 0; slot < n; slot++ {
		if same(slot) && rosterChanged(slot) {
			count++
		}
	}
	if count > 0 {
		flags |= secRoster
		b = appendUvarint(b, uint64(count))
		prev := -1
		for slot := 0; slot < n; slot++ {
			if same(slot) && rosterChanged(slot) {
				b = appendUvarint(b, uint64(slot-prev-1))
				prev = slot
				b = appendRoster(b, &cur.roster[slot], false)
			}
		}
	}
	// Players: ack and fields of players who stay, by a mask of what changed and the differences.
	playerChanged := func(slot int) bool {
		return base.roster[slot].Ack != cur.roster[slot].Ack ||
			!slices.Equal(base.fields[slot*nf:(slot+1)*nf], cur.fields[slot*nf:(slot+1)*nf])
	}
	count = 0
	for slot := 0; slot < n; slot++ {
		if same(slot) && playerChanged(slot) {
			count++
		}
	}
	if count > 0 {
		flags |= secPlayers
		b = appendUvarint(b, uint64(count))
		prev := -1
		nb := (nf + 1 + 7) / 8
		for slot := 0; slot < n; slot++ {
			if !same(slot) || !playerChanged(slot) {
				continue
			}
			b = appendUvarint(b, uint64(slot-prev-1))
			prev = slot
			maskAt := len(b)
			for range nb {
				b = append(b, 0)
			}
			oa, ca := base.roster[slot].Ack, cur.roster[slot].Ack
			if oa != ca {
				b[maskAt] |= 1
				b = appendZigzag(b, int64(ca)-int64(oa))
			}
			of, cf := base.fields[slot*nf:(slot+1)*nf], cur.fields[slot*nf:(slot+1)*nf]
			for i := range cf {
				if of[i] != cf[i] {
					j := i + 1
					b[maskAt+j>>3] |= 1 << (j & 7)
					b = appendZigzag(b, cf[i]-of[i])
				}
			}
		}
	}
	// Objects: per kind, by a mask of the kinds that changed.
	if objectsChanged(base, cur) {
		flags |= secObjects
		nk := len(sc.Objects)
		maskAt := len(b)
		for range (nk + 7) / 8 {
			b = append(b, 0)
		}
		for k := range nk {
			if slices.Equal(base.objIDs[k], cur.objIDs[k]) && slices.Equal(base.objFields[k], cur.objFields[k]) {
				continue
			}
			b[maskAt+k>>3] |= 1 << (k & 7)
			b = appendKindDelta(b, len(sc.Objects[k].Fields), base.objIDs[k], base.objFields[k], cur.objIDs[k], cur.objFields[k])
		}
	}
	b[flagsAt] = flags
	return b
}

func objectsChanged(base, cur *State) bool {
	for k := range cur.objIDs {
		if !slices.Equal(base.objIDs[k], cur.objIDs[k]) || !slices.Equal(base.objFields[k], cur.objFields[k]) {
			return true
		}
	}
	return false
}

// appendChanges appends the mask of the values that differ and their differences.
func appendChanges(b []byte, old, cur []int64) []byte {
	maskAt := len(b)
	for range (len(cur) + 7) / 8 {
		b = append(b, 0)
	}
	for i := range cur {
		if old[i] != cur[i] {
			b[maskAt+i>>3] |= 1 << (i & 7)
			b = appendZigzag(b, cur[i]-old[i])
		}
	}
	return b
}

// appendKindDelta appends one object kind's changes: a byte of the parts present, then the objects that stay
// and changed (by their index in the base list, with a mask and the differences), those removed (by index),
// and those added (by id, in full).
func appendKindDelta(b []byte, nf int, oids, ofs, cids, cfs []int64) []byte {
	partsAt := len(b)
	b = append(b, 0)
	var parts byte
	// Walk both sorted lists once per part; object lists are small (a kind's Max).
	var changed, removed, added int
	walk := func(fn func(oi, ci int)) {
		oi, ci := 0, 0
		for oi < len(oids) || ci < len(cids) {
			switch {
			case ci >= len(cids) || (oi < len(oids) && oids[oi] < cids[ci]):
				fn(oi, -1)
				oi++
			case oi >= len(oids) || cids[ci] < oids[oi]:
				fn(-1, ci)
				ci++
			default:
				fn(oi, ci)
				oi++
				ci++
			}
		}
	}
	differs := func(oi, ci int) bool { return !slices.Equal(ofs[oi*nf:(oi+1)*nf], cfs[ci*nf:(ci+1)*nf]) }
	walk(func(oi, ci int) {
		switch {
		case ci < 0:
			removed++
		case oi < 0:
			added++
		case differs(oi, ci):
			changed++
		}
	})
	if changed > 0 {
		parts |= objChanged
		b = appendUvarint(b, uint64(changed))
		prev := -1
		walk(func(oi, ci int) {
			if oi >= 0 && ci >= 0 && differs(oi, ci) {
				b = appendUvarint(b, uint64(oi-prev-1))
				prev = oi
				b = appendChanges(b, ofs[oi*nf:(oi+1)*nf], cfs[ci*nf:(ci+1)*nf])
			}
		})
	}
	if removed > 0 {
		parts |= objRemoved
		b = appendUvarint(b, uint64(removed))
		prev := -1
		walk(func(oi, ci int) {
			if ci < 0 {
				b = appendUvarint(b, uint64(oi-prev-1))
				prev = oi
			}
		})
	}
	if added > 0 {
		parts |= objAdded
		b = appendUvarint(b, uint64(added))
		prev := int64(-1)
		walk(func(oi, ci int) {
			if oi < 0 {
				b = appendUvarint(b, uint64(cids[ci]-prev-1))
				prev = cids[ci]
				for _, v := range cfs[ci*nf : (ci+1)*nf] {
					b = appendZigzag(b, v)
				}
			}
		})
	}
	b[partsAt] = parts
	return b
}
