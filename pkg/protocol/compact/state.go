package compact

import (
	"slices"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/game"
	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Schema names the game's integers, in the order frames carry them. Keyframes carry it, so that a frame stream
// is readable without knowing the game (tools, browsers, a relay whose games differ). It is immutable once made.
type Schema struct {
	Game    string   // the game's name, "" when unknown (a state read from an old owner's JSON tick)
	Globals []string // global field names
	Player  []string // per-player field names
	Objects []Kind   // object kinds
}

// Kind names an object kind and its fields.
type Kind struct {
	Name   string
	Fields []string
}

// SchemaOf is the names of a game's schema.
func SchemaOf(name string, s *game.Schema) *Schema {
	out := &Schema{Game: name, Globals: fieldNames(s.Globals), Player: fieldNames(s.Player)}
	for _, k := range s.Objects {
		out.Objects = append(out.Objects, Kind{Name: k.Name, Fields: fieldNames(k.Fields)})
	}
	return out
}

func fieldNames(fs []game.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// Equal reports whether s and o name the same integers.
func (s *Schema) Equal(o *Schema) bool {
	if s == o {
		return true
	}
	if s == nil || o == nil || s.Game != o.Game || !slices.Equal(s.Globals, o.Globals) || !slices.Equal(s.Player, o.Player) || len(s.Objects) != len(o.Objects) {
		return false
	}
	for i, k := range s.Objects {
		if k.Name != o.Objects[i].Name || !slices.Equal(k.Fields, o.Objects[i].Fields) {
			return false
		}
	}
	return true
}

// values is how many integers a state of this schema holds with the given players and objects.
func (s *Schema) values(players int, objects []int) int {
	n := len(s.Globals) + players*len(s.Player)
	for k, kind := range s.Objects {
		n += objects[k] * (1 + len(kind.Fields))
	}
	return n
}

// game returns the schema as a game.Schema of names (the widest ranges), as protocol.Tick carries it.
func (s *Schema) gameSchema() *game.Schema {
	wide := func(names []string) []game.Field {
		fs := make([]game.Field, len(names))
		for i, n := range names {
			fs[i] = game.Field{Name: n, Min: -game.MaxValue, Max: game.MaxValue}
		}
		return fs
	}
	gs := &game.Schema{Globals: wide(s.Globals), Player: wide(s.Player)}
	for _, k := range s.Objects {
		gs.Objects = append(gs.Objects, game.ObjectKind{Name: k.Name, Max: MaxObjects, Fields: wide(k.Fields)})
	}
	return gs
}

// Header is what a tick says about itself.
type Header struct {
	Room  string
	Owner string
	Epoch uint64
	Seq   uint64
	Time  int64 // the owner's publish time, Unix ms
}

// Roster is one player's framework members.
type Roster struct {
	ID     string
	Name   string
	Ack    uint64
	Conn   uint64
	Online bool
	Away   uint64 // the tick at which the player left; meaningful when !Online
}

// State is the whole content of one tick of a room as frames carry it: the header, the game's integers, and the
// players by slot, a small number that names a player from its first frame to its last within one stream (an
// owner's term, or a relay's reading of an old owner's JSON ticks). Slots are what deltas refer to; Player
// lists the players in id order, as ticks show them.
//
// The storage is flat and reused: copying a state (CopyFrom) and filling it again allocate nothing once it has
// grown to its room's size.
type State struct {
	Header
	Schema *Schema

	Globals []int64

	used   []bool   // by slot
	ids    []string // by slot
	roster []Roster // by slot; ID duplicates ids
	fields []int64  // by slot: fields[slot*len(Schema.Player):][:len(Schema.Player)]
	order  []int32  // used slots sorted by id

	objIDs    [][]int64 // per kind, sorted
	objFields [][]int64 // per kind: fields[i*len(kind.Fields):]
}

// Players is the number of players.
func (s *State) Players() int { return len(s.order) }

// Player returns the i-th player in id order: its roster members, its slot and its fields (not to be modified).
func (s *State) Player(i int) (Roster, int, []int64) {
	slot := int(s.order[i])
	nf := len(s.Schema.Player)
	return s.roster[slot], slot, s.fields[slot*nf : (slot+1)*nf : (slot+1)*nf]
}

// Lookup returns the player with the given id.
func (s *State) Lookup(id string) (Roster, bool) {
	i, ok := slices.BinarySearchFunc(s.order, id, func(slot int32, id string) int { return strings.Compare(s.ids[slot], id) })
	if !ok {
		return Roster{}, false
	}
	return s.roster[s.order[i]], true
}

// Objects returns the ids of kind k's objects (sorted) and their fields, len(Kind.Fields) per object.
func (s *State) Objects(k int) (ids, fields []int64) { return s.objIDs[k], s.objFields[k] }

// slots is the number of slots the state has room for (the highest used slot + 1, or more).
func (s *State) slots() int { return len(s.used) }

// reset empties s for the given header and schema.
func (s *State) reset(h Header, schema *Schema) {
	s.Header = h
	s.Schema = schema
	s.Globals = resize(s.Globals, len(schema.Globals))
	clear(s.used)
	clear(s.ids)
	clear(s.roster)
	if nf := len(schema.Player); len(s.fields) != len(s.used)*nf {
		s.fields = make([]int64, len(s.used)*nf)
	}
	s.order = s.order[:0]
	nk := len(schema.Objects)
	if cap(s.objIDs) < nk {
		s.objIDs = make([][]int64, nk)
		s.objFields = make([][]int64, nk)
	}
	s.objIDs, s.objFields = s.objIDs[:nk], s.objFields[:nk]
	for k := range s.objIDs {
		s.objIDs[k] = s.objIDs[k][:0]
		s.objFields[k] = s.objFields[k][:0]
	}
}

// grow makes room for slot.
func (s *State) grow(slot int) {
	if slot < len(s.used) {
		return
	}
	n := max(slot+1, 2*len(s.used), 8)
	nf := len(s.Schema.Player)
	s.used = slices.Grow(s.used, n-len(s.used))[:n]
	s.ids = slices.Grow(s.ids, n-len(s.ids))[:n]
	s.roster = slices.Grow(s.roster, n-len(s.roster))[:n]
	s.fields = slices.Grow(s.fields, n*nf-len(s.fields))[:n*nf]
}

// set puts a player at slot (not in order: the caller keeps order).
func (s *State) set(slot int, r Roster, fields []int64) {
	s.grow(slot)
	s.used[slot] = true
	s.ids[slot] = r.ID
	s.roster[slot] = r
	nf := len(s.Schema.Player)
	copy(s.fields[slot*nf:(slot+1)*nf], fields)
}

func (s *State) drop(slot int) {
	s.used[slot] = false
	s.ids[slot] = ""
	s.roster[slot] = Roster{}
}

// sortOrder rebuilds order from the used slots.
func (s *State) sortOrder() {
	s.order = s.order[:0]
	for slot, u := range s.used {
		if u {
			s.order = append(s.order, int32(slot))
		}
	}
	slices.SortFunc(s.order, func(a, b int32) int { return strings.Compare(s.ids[a], s.ids[b]) })
}

// CopyFrom makes s a copy of o, reusing s's storage.
func (s *State) CopyFrom(o *State) {
	s.Header = o.Header
	s.Schema = o.Schema
	s.Globals = append(s.Globals[:0], o.Globals...)
	s.used = append(s.used[:0], o.used...)
	s.ids = append(s.ids[:0], o.ids...)
	s.roster = append(s.roster[:0], o.roster...)
	s.fields = append(s.fields[:0], o.fields...)
	s.order = append(s.order[:0], o.order...)
	if cap(s.objIDs) < len(o.objIDs) {
		s.objIDs = make([][]int64, len(o.objIDs))
		s.objFields = make([][]int64, len(o.objIDs))
	}
	s.objIDs, s.objFields = s.objIDs[:len(o.objIDs)], s.objFields[:len(o.objIDs)]
	for k := range o.objIDs {
		s.objIDs[k] = append(s.objIDs[k][:0], o.objIDs[k]...)
		s.objFields[k] = append(s.objFields[k][:0], o.objFields[k]...)
	}
}

// Equal reports whether s and o hold the same tick: header, schema, and the same players with the same members
// and fields, the same globals and objects. Slots are not compared (two streams may number players differently).
func (s *State) Equal(o *State) bool {
	if s.Header != o.Header || !s.Schema.Equal(o.Schema) || !slices.Equal(s.Globals, o.Globals) || s.Players() != o.Players() {
		return false
	}
	for i := range s.order {
		ra, _, fa := s.Player(i)
		rb, _, fb := o.Player(i)
		if ra != rb || !slices.Equal(fa, fb) {
			return false
		}
	}
	for k := range s.objIDs {
		if !slices.Equal(s.objIDs[k], o.objIDs[k]) || !slices.Equal(s.objFields[k], o.objFields[k]) {
			return false
		}
	}
	return true
}

// Tick writes s into tk as a protocol 1 tick (players in id order, the game's members by the schema's names),
// reusing tk's storage. protocol.Encode of it is the tick's JSON, as an owner publishes it.
func (s *State) Tick(tk *protocol.Tick) {
	gs := tk.Schema
	if gs == nil || !sameNames(gs, s.Schema) {
		gs = s.Schema.gameSchema()
	}
	*tk = protocol.Tick{Room: s.Room, Epoch: s.Epoch, Seq: s.Seq, Owner: s.Owner, Time: s.Time, Schema: gs,
		Globals: floats(tk.Globals[:0], s.Globals), Players: tk.Players[:0], Objects: tk.Objects[:0]}
	for i := range s.order {
		r, _, f := s.Player(i)
		var p protocol.TickPlayer
		if len(tk.Players) < cap(tk.Players) {
			p = tk.Players[:len(tk.Players)+1][len(tk.Players)]
		}
		p = protocol.TickPlayer{ID: r.ID, Name: r.Name, Fields: floats(p.Fields[:0], f), Ack: r.Ack, Conn: r.Conn, Online: r.Online}
		if !r.Online {
			p.Away = r.Away
		}
		tk.Players = append(tk.Players, p)
	}
	for k, kind := range s.Schema.Objects {
		var objs []protocol.TickObject
		if k < cap(tk.Objects) {
			objs = tk.Objects[:k+1][k][:0]
		}
		ids, fs := s.objIDs[k], s.objFields[k]
		nf := len(kind.Fields)
		for i, id := range ids {
			var o protocol.TickObject
			if len(objs) < cap(objs) {
				o = objs[:len(objs)+1][len(objs)]
			}
			o = protocol.TickObject{ID: id, Fields: floats(o.Fields[:0], fs[i*nf:(i+1)*nf])}
			objs = append(objs, o)
		}
		if objs == nil {
			objs = []protocol.TickObject{}
		}
		tk.Objects = append(tk.Objects, objs)
	}
}

func sameNames(gs *game.Schema, s *Schema) bool {
	if len(gs.Globals) != len(s.Globals) || len(gs.Player) != len(s.Player) || len(gs.Objects) != len(s.Objects) {
		return false
	}
	for i, f := range gs.Globals {
		if f.Name != s.Globals[i] {
			return false
		}
	}
	for i, f := range gs.Player {
		if f.Name != s.Player[i] {
			return false
		}
	}
	for k, kind := range gs.Objects {
		if kind.Name != s.Objects[k].Name || len(kind.Fields) != len(s.Objects[k].Fields) {
			return false
		}
		for i, f := range kind.Fields {
			if f.Name != s.Objects[k].Fields[i] {
				return false
			}
		}
	}
	return true
}

func floats(dst []float64, src []int64) []float64 {
	for _, v := range src {
		dst = append(dst, float64(v))
	}
	return dst
}

func resize(s []int64, n int) []int64 {
	if cap(s) < n {
		return make([]int64, n)
	}
	s = s[:n]
	clear(s)
	return s
}
