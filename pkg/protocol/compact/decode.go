package compact

import (
	"slices"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Decoder keeps the state a stream of frames describes: a keyframe replaces it, a delta changes it when its base
// is the state's tick. A frame that does not decode leaves the state as it was. A relay keeps one per room, a
// tool one per stream. Not safe for concurrent use.
type Decoder struct {
	cur, next   State
	valid       bool
	schema      *Schema // the last keyframe's schema, reused while keyframes repeat it
	schemaBytes []byte  // its encoding

	mark    []uint32 // by slot: the frame (gen) that made or changed the slot's player
	gen     uint32
	mask    []byte
	removed []bool
	ids     []int64
	fields  []int64
}

// Valid reports whether the decoder has a state (a keyframe was applied).
func (d *Decoder) Valid() bool { return d.valid }

// State is the current state, nil before the first keyframe. It is the decoder's: valid until the next Apply
// or Reset, not to be modified.
func (d *Decoder) State() *State {
	if !d.valid {
		return nil
	}
	return &d.cur
}

// Reset forgets the state: the next frame must be a keyframe.
func (d *Decoder) Reset() { d.valid = false }

// Info is what a frame's first bytes say.
type Info struct {
	Kind  byte
	Epoch uint64
	Seq   uint64
	Base  uint64 // a delta's base tick (Seq minus its distance); Seq for a keyframe
}

// Peek reads the kind, position and base of the frame at the start of data.
func Peek(data []byte) (Info, error) {
	r := reader{b: data}
	info := Info{Kind: r.byte()}
	if r.err == nil && info.Kind != Keyframe && info.Kind != Delta {
		return Info{}, malformed("unknown frame kind %#x", info.Kind)
	}
	info.Epoch = r.counter("epoch")
	info.Seq = r.counter("seq")
	info.Base = info.Seq
	if info.Kind == Delta {
		gap := r.uvarint()
		if r.err == nil && (gap < 1 || gap > info.Seq) {
			r.fail("base %d ticks before %d", gap, info.Seq)
		}
		info.Base = info.Seq - gap
	}
	if r.err == nil && info.Epoch < 1 {
		r.fail("epoch 0")
	}
	return info, r.err
}

// Apply applies one frame (all of frame: trailing bytes are malformed). A delta whose base is not the current
// state is ErrBase; anything malformed is ErrMalformed. Either way the state is unchanged.
func (d *Decoder) Apply(frame []byte) error {
	info, err := Peek(frame)
	if err != nil {
		return err
	}
	if info.Kind == Delta && (!d.valid || info.Epoch != d.cur.Epoch || info.Base != d.cur.Seq) {
		return ErrBase
	}
	r := reader{b: frame}
	d.gen++
	if info.Kind == Keyframe {
		d.keyframe(&r)
	} else {
		d.delta(&r)
	}
	if r.err == nil && r.i != len(r.b) {
		r.fail("%d bytes after the frame", len(r.b)-r.i)
	}
	if r.err != nil {
		return r.err
	}
	d.cur, d.next = d.next, d.cur
	d.valid = true
	return nil
}

func (d *Decoder) markSlot(slot int) {
	if slot >= len(d.mark) {
		d.mark = slices.Grow(d.mark, slot+1-len(d.mark))[:max(slot+1, len(d.mark))]
	}
	d.mark[slot] = d.gen
}

func (d *Decoder) marked(slot int) bool { return slot < len(d.mark) && d.mark[slot] == d.gen }

func (d *Decoder) keyframe(r *reader) {
	r.byte()
	h := Header{Epoch: r.counter("epoch"), Seq: r.counter("seq")}
	h.Time = int64(r.counter("time"))
	h.Room = r.str("room")
	h.Owner = r.str("owner")
	if r.err == nil && !protocol.ValidRoom(h.Room) {
		r.fail("room %q", h.Room)
	}
	sc := d.readSchema(r)
	if r.err != nil {
		return
	}
	s := &d.next
	s.reset(h, sc)
	for i := range s.Globals {
		s.Globals[i] = r.value("global")
	}
	nf := len(sc.Player)
	n := r.count("players", MaxSlots, 7+nf)
	prev := -1
	for range n {
		slot := d.slot(r, prev)
		prev = slot
		if r.err != nil {
			return
		}
		s.grow(slot)
		s.used[slot] = true
		d.readRoster(r, &s.roster[slot], true)
		s.ids[slot] = s.roster[slot].ID
		for i := range nf {
			s.fields[slot*nf+i] = r.value("player field")
		}
	}
	objs := make([]int, 0, 8)
	for k, kind := range sc.Objects {
		nf := len(kind.Fields)
		n := r.count("objects", MaxObjects, 1+nf)
		var id int64 = -1
		for i := range n {
			gap := r.counter("object id")
			if i == 0 {
				id = int64(gap)
			} else {
				id += int64(gap) + 1
			}
			if id > game.MaxValue {
				r.fail("object id %d", id)
			}
			if r.err != nil {
				return
			}
			s.objIDs[k] = append(s.objIDs[k], id)
			for range nf {
				s.objFields[k] = append(s.objFields[k], r.value("object field"))
			}
		}
		objs = append(objs, n)
	}
	if r.err != nil {
		return
	}
	d.finish(r, s, objs)
}

// finish sorts the players, refuses the same id twice, and checks the size.
func (d *Decoder) finish(r *reader, s *State, objs []int) {
	s.sortOrder()
	for i := 1; i < len(s.order); i++ {
		if s.ids[s.order[i-1]] == s.ids[s.order[i]] {
			r.fail("player %q twice", s.ids[s.order[i]])
			return
		}
	}
	if s.Schema.values(len(s.order), objs) > MaxValues {
		r.fail("more than %d integers", MaxValues)
	}
}

func (d *Decoder) readSchema(r *reader) *Schema {
	// A keyframe usually repeats the previous one's schema: compare the bytes before making strings.
	if d.schema != nil && len(d.schemaBytes) <= r.left() && string(r.b[r.i:r.i+len(d.schemaBytes)]) == string(d.schemaBytes) {
		r.i += len(d.schemaBytes)
		return d.schema
	}
	names := func(what string) []string {
		n := r.count(what, MaxNames, 2)
		out := make([]string, 0, n)
		for range n {
			out = append(out, r.name(what))
		}
		if r.err == nil && hasDuplicate(out) {
			r.fail("%s: a name twice", what)
		}
		return out
	}
	sc := &Schema{Game: r.str("game")}
	if r.err == nil && sc.Game != "" && !game.ValidGameName(sc.Game) {
		r.fail("game %q", sc.Game)
	}
	sc.Globals = names("globals")
	sc.Player = names("player fields")
	nk := r.count("object kinds", MaxNames, 2)
	top := append([]string(nil), sc.Globals...)
	for range nk {
		k := Kind{Name: r.name("object kind")}
		k.Fields = names("object fields")
		sc.Objects = append(sc.Objects, k)
		top = append(top, k.Name)
	}
	if r.err == nil && hasDuplicate(top) {
		r.fail("a global and an object kind share a name")
	}
	if r.err != nil {
		return nil
	}
	d.schema, d.schemaBytes = sc, appendSchema(d.schemaBytes[:0], sc)
	return sc
}

// appendSchema appends the schema's part of a keyframe.
func appendSchema(b []byte, sc *Schema) []byte {
	b = appendString(b, sc.Game)
	b = appendNames(b, sc.Globals)
	b = appendNames(b, sc.Player)
	b = appendUvarint(b, uint64(len(sc.Objects)))
	for _, k := range sc.Objects {
		b = appendString(b, k.Name)
		b = appendNames(b, k.Fields)
	}
	return b
}

func hasDuplicate(names []string) bool {
	for i := range names {
		for j := range i {
			if names[i] == names[j] {
				return true
			}
		}
	}
	return false
}

// slot reads a slot as its gap from the previous one of the list.
func (d *Decoder) slot(r *reader, prev int) int {
	gap := r.uvarint()
	if r.err != nil {
		return 0
	}
	if gap >= MaxSlots || prev+1+int(gap) >= MaxSlots {
		r.fail("slot beyond %d", MaxSlots)
		return 0
	}
	return prev + 1 + int(gap)
}

func (d *Decoder) readRoster(r *reader, p *Roster, withID bool) {
	if withID {
		p.ID = r.id()
		p.Ack = r.counter("ack")
	}
	p.Name = r.str("name")
	p.Conn = r.counter("conn")
	switch online := r.byte(); online {
	case 1:
		p.Online, p.Away = true, 0
	case 0:
		p.Online = false
		p.Away = r.counter("away")
	default:
		r.fail("online byte %d", online)
	}
}

func (d *Decoder) delta(r *reader) {
	cur, s := &d.cur, &d.next
	s.CopyFrom(cur)
	r.byte()
	r.counter("epoch")
	s.Seq = r.counter("seq")
	r.uvarint()
	s.Time = r.plus("time", cur.Time)
	if r.err == nil && s.Time < 0 {
		r.fail("time %d", s.Time)
	}
	flags := r.byte()
	if r.err == nil && flags&^secAll != 0 {
		r.fail("sections %#x", flags)
	}
	sc := s.Schema
	nf := len(sc.Player)
	if flags&secGlobals != 0 {
		d.mask = r.mask(len(sc.Globals), d.mask)
		d.nonZero(r, "globals")
		for i := range s.Globals {
			if r.err == nil && bit(d.mask, i) {
				s.Globals[i] = r.plus("global", s.Globals[i])
			}
		}
	}
	membership := false
	if flags&secLeft != 0 {
		n := r.count("left", MaxSlots, 1)
		d.nonZeroCount(r, n, "left")
		prev := -1
		for range n {
			slot := d.slot(r, prev)
			prev = slot
			if r.err == nil && (slot >= s.slots() || !s.used[slot]) {
				r.fail("slot %d left but holds nobody", slot)
			}
			if r.err != nil {
				return
			}
			s.drop(slot)
			membership = true
		}
	}
	if flags&secJoined != 0 {
		n := r.count("joined", MaxSlots, 7+nf)
		d.nonZeroCount(r, n, "joined")
		prev := -1
		for range n {
			slot := d.slot(r, prev)
			prev = slot
			if r.err == nil && slot < s.slots() && s.used[slot] {
				r.fail("slot %d joined but holds a player", slot)
			}
			if r.err != nil {
				return
			}
			s.grow(slot)
			s.used[slot] = true
			d.readRoster(r, &s.roster[slot], true)
			s.ids[slot] = s.roster[slot].ID
			for i := range nf {
				s.fields[slot*nf+i] = r.value("player field")
			}
			d.markSlot(slot)
			membership = true
		}
	}
	stays := func(slot int) bool { return slot < s.slots() && s.used[slot] && !d.marked(slot) }
	if flags&secRoster != 0 {
		n := r.count("roster", MaxSlots, 3)
		d.nonZeroCount(r, n, "roster")
		prev := -1
		for range n {
			slot := d.slot(r, prev)
			prev = slot
			if r.err == nil && !stays(slot) {
				r.fail("roster change of slot %d, which holds no player from before", slot)
			}
			if r.err != nil {
				return
			}
			d.readRoster(r, &s.roster[slot], false)
		}
	}
	if flags&secPlayers != 0 {
		n := r.count("players", MaxSlots, 2)
		d.nonZeroCount(r, n, "players")
		prev := -1
		for range n {
			slot := d.slot(r, prev)
			prev = slot
			if r.err == nil && !stays(slot) {
				r.fail("change of slot %d, which holds no player from before", slot)
			}
			d.mask = r.mask(1+nf, d.mask)
			d.nonZero(r, "player")
			if r.err != nil {
				return
			}
			if bit(d.mask, 0) {
				ack := r.plus("ack", int64(s.roster[slot].Ack))
				if r.err == nil && ack < 0 {
					r.fail("ack %d", ack)
				}
				s.roster[slot].Ack = uint64(ack)
			}
			f := s.fields[slot*nf : (slot+1)*nf]
			for i := range f {
				if r.err == nil && bit(d.mask, i+1) {
					f[i] = r.plus("player field", f[i])
				}
			}
		}
	}
	objs := make([]int, len(sc.Objects))
	for k := range sc.Objects {
		objs[k] = len(s.objIDs[k])
	}
	if flags&secObjects != 0 {
		nk := len(sc.Objects)
		d.mask = r.mask(nk, d.mask)
		d.nonZero(r, "object kinds")
		kinds := append([]byte(nil), d.mask...)
		for k := range nk {
			if r.err == nil && bit(kinds, k) {
				d.kindDelta(r, s, k)
				objs[k] = len(s.objIDs[k])
			}
		}
	}
	if r.err != nil {
		return
	}
	if membership {
		d.finish(r, s, objs)
	} else if sc.values(len(s.order), objs) > MaxValues {
		r.fail("more than %d integers", MaxValues)
	}
}

// nonZero refuses an all-zero mask: an encoder leaves out what did not change, so each frame has one spelling.
func (d *Decoder) nonZero(r *reader, what string) {
	if r.err != nil {
		return
	}
	for _, c := range d.mask {
		if c != 0 {
			return
		}
	}
	r.fail("%s: an empty change", what)
}

func (d *Decoder) nonZeroCount(r *reader, n int, what string) {
	if r.err == nil && n == 0 {
		r.fail("%s: an empty section", what)
	}
}

func (d *Decoder) kindDelta(r *reader, s *State, k int) {
	nf := len(s.Schema.Objects[k].Fields)
	ids, fs := s.objIDs[k], s.objFields[k]
	parts := r.byte()
	if r.err == nil && (parts == 0 || parts&^objAll != 0) {
		r.fail("object parts %#x", parts)
	}
	if parts&objChanged != 0 {
		n := r.count("changed objects", len(ids), 2)
		d.nonZeroCount(r, n, "changed objects")
		prev := -1
		for range n {
			i := prev + 1 + int(min(r.uvarint(), uint64(len(ids))))
			prev = i
			if r.err == nil && i >= len(ids) {
				r.fail("changed object %d of %d", i, len(ids))
			}
			d.mask = r.mask(nf, d.mask)
			d.nonZero(r, "object")
			if r.err != nil {
				return
			}
			f := fs[i*nf : (i+1)*nf]
			for j := range f {
				if r.err == nil && bit(d.mask, j) {
					f[j] = r.plus("object field", f[j])
				}
			}
		}
	}
	d.removed = slices.Grow(d.removed[:0], len(ids))[:len(ids)]
	clear(d.removed)
	kept := len(ids)
	if parts&objRemoved != 0 {
		n := r.count("removed objects", len(ids), 1)
		d.nonZeroCount(r, n, "removed objects")
		prev := -1
		for range n {
			i := prev + 1 + int(min(r.uvarint(), uint64(len(ids))))
			prev = i
			if r.err == nil && i >= len(ids) {
				r.fail("removed object %d of %d", i, len(ids))
			}
			if r.err != nil {
				return
			}
			d.removed[i] = true
			kept--
		}
	}
	// The new list: the objects kept and those added, merged by id.
	d.ids, d.fields = d.ids[:0], d.fields[:0]
	i := 0
	keep := func(upTo int64, inclusive bool) {
		for ; i < len(ids) && (ids[i] < upTo || inclusive && ids[i] == upTo); i++ {
			if !d.removed[i] {
				d.ids = append(d.ids, ids[i])
				d.fields = append(d.fields, fs[i*nf:(i+1)*nf]...)
			}
		}
	}
	if parts&objAdded != 0 {
		n := r.count("added objects", MaxObjects-kept, 1+nf)
		d.nonZeroCount(r, n, "added objects")
		var id int64 = -1
		for range n {
			id += int64(r.counter("object id")) + 1
			if r.err == nil && id > game.MaxValue {
				r.fail("object id %d", id)
			}
			if r.err != nil {
				return
			}
			keep(id, false)
			if i < len(ids) && ids[i] == id && !d.removed[i] {
				r.fail("object %d added twice", id)
				return
			}
			d.ids = append(d.ids, id)
			for range nf {
				d.fields = append(d.fields, r.value("object field"))
			}
		}
	}
	keep(game.MaxValue, true)
	s.objIDs[k] = append(s.objIDs[k][:0], d.ids...)
	s.objFields[k] = append(s.objFields[k][:0], d.fields...)
}
