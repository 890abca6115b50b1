package protocol

import (
	"fmt"
	"math"
	"strconv"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// decodeTick decodes a tick frame (valid JSON, an object) leniently, as a client must: the framework's members
// by name, every other number member as a game global, every other array of objects with integer ids as a game
// object list; other members are ignored. The players' game fields are their number members other than the
// roster's; every player must have the same ones (the first player's order is the schema's).
func decodeTick(data []byte) (*Tick, *DecodeError) {
	t := &Tick{Schema: &game.Schema{}}
	var buf [16]member
	seenPlayers := false
	for _, m := range objectMembers(trimSpace(data), buf[:0]) {
		var derr *DecodeError
		switch name := string(m.name); name {
		case "type":
		case "room":
			t.Room, derr = parseString(name, m.val)
		case "owner":
			t.Owner, derr = parseString(name, m.val)
		case "epoch":
			t.Epoch, derr = parseUint(name, m.val, 0, math.MaxUint64)
		case "seq":
			t.Seq, derr = parseUint(name, m.val, 0, math.MaxUint64)
		case "time":
			t.Time, derr = parseInt(name, m.val)
		case "players":
			seenPlayers = true
			derr = decodeTickPlayers(t, m.val)
		default:
			switch {
			case isNumber(m.val):
				var v float64
				if v, derr = parseFloat(name, m.val); derr == nil {
					t.Schema.Globals = append(t.Schema.Globals, wideField(name))
					t.Globals = append(t.Globals, v)
				}
			case m.val[0] == '[':
				if kind, objs, ok := decodeObjects(name, m.val); ok {
					t.Schema.Objects = append(t.Schema.Objects, kind)
					t.Objects = append(t.Objects, objs)
				}
			}
		}
		if derr != nil {
			return nil, derr
		}
	}
	if !seenPlayers {
		return nil, missingField("players")
	}
	return t, nil
}

// wideField is a field known by name only: its range is the widest a View allows.
func wideField(name string) game.Field {
	return game.Field{Name: name, Min: -game.MaxValue, Max: game.MaxValue}
}

func parseInt(name string, v []byte) (int64, *DecodeError) {
	if !isNumber(v) {
		return 0, badField(name, "must be an integer")
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, badField(name, "must be an integer")
	}
	return n, nil
}

// elements calls fn with each element of a valid JSON array.
func elements(arr []byte, fn func(v []byte) *DecodeError) *DecodeError {
	i := skipSpace(arr, 1)
	if arr[i] == ']' {
		return nil
	}
	for {
		end := valueEnd(arr, i)
		if derr := fn(arr[i:end]); derr != nil {
			return derr
		}
		i = skipSpace(arr, end)
		if arr[i] == ']' {
			return nil
		}
		i = skipSpace(arr, i+1) // ','
	}
}

func decodeTickPlayers(t *Tick, v []byte) *DecodeError {
	if v[0] != '[' {
		return badField("players", "must be an array")
	}
	var names []string // the first player's game fields
	first := true
	return elements(v, func(pv []byte) *DecodeError {
		if pv[0] != '{' {
			return badField("players", "must be an array of objects")
		}
		var p TickPlayer
		var fields []float64
		var fnames []string
		seenID := false
		var buf [16]member
		for _, m := range objectMembers(pv, buf[:0]) {
			var derr *DecodeError
			switch name := string(m.name); name {
			case "id":
				p.ID, derr = parseString("players.id", m.val)
				seenID = true
			case "name":
				p.Name, derr = parseString("players.name", m.val)
			case "ack":
				p.Ack, derr = parseUint("players.ack", m.val, 0, math.MaxUint64)
			case "conn":
				p.Conn, derr = parseUint("players.conn", m.val, 0, math.MaxUint64)
			case "away":
				p.Away, derr = parseUint("players.away", m.val, 0, math.MaxUint64)
			case "online":
				p.Online, derr = parseBool("players.online", m.val)
			default:
				if isNumber(m.val) {
					var f float64
					if f, derr = parseFloat("players."+name, m.val); derr == nil {
						fnames = append(fnames, name)
						fields = append(fields, f)
					}
				}
			}
			if derr != nil {
				return derr
			}
		}
		if !seenID {
			return missingField("players.id")
		}
		if first {
			first = false
			names = fnames
			for _, n := range names {
				t.Schema.Player = append(t.Schema.Player, wideField(n))
			}
			p.Fields = fields
		} else {
			if len(fnames) != len(names) {
				return badField("players", "player "+strconv.Quote(p.ID)+" has other game fields than the first player")
			}
			p.Fields = make([]float64, len(names))
			for i, n := range fnames {
				j := indexOf(names, n)
				if j < 0 {
					return badField("players", "player "+strconv.Quote(p.ID)+" has a field "+strconv.Quote(n)+" the first player has not")
				}
				p.Fields[j] = fields[i]
			}
		}
		t.Players = append(t.Players, p)
		return nil
	})
}

// decodeObjects reads an array of objects, each with an integer id and number fields (the first object's are
// the kind's); ok is false for any other array, which a client ignores.
func decodeObjects(name string, v []byte) (game.ObjectKind, []TickObject, bool) {
	kind := game.ObjectKind{Name: name, Max: game.MaxObjects}
	var objs []TickObject
	first := true
	bad := elements(v, func(ov []byte) *DecodeError {
		if ov[0] != '{' {
			return badField(name, "")
		}
		o := TickObject{}
		var fnames []string
		var fields []float64
		seenID := false
		for _, m := range objectMembers(ov, nil) {
			switch n := string(m.name); {
			case n == "id":
				id, err := strconv.ParseInt(string(m.val), 10, 64)
				if err != nil {
					return badField(name, "")
				}
				o.ID, seenID = id, true
			case isNumber(m.val):
				f, derr := parseFloat(n, m.val)
				if derr != nil {
					return derr
				}
				fnames = append(fnames, n)
				fields = append(fields, f)
			}
		}
		if !seenID {
			return badField(name, "")
		}
		if first {
			first = false
			for _, n := range fnames {
				kind.Fields = append(kind.Fields, wideField(n))
			}
			o.Fields = fields
		} else {
			if len(fnames) != len(kind.Fields) {
				return badField(name, "")
			}
			o.Fields = make([]float64, len(fnames))
			for i, n := range fnames {
				j := -1
				for k, f := range kind.Fields {
					if f.Name == n {
						j = k
					}
				}
				if j < 0 {
					return badField(name, "")
				}
				o.Fields[j] = fields[i]
			}
		}
		objs = append(objs, o)
		return nil
	})
	if bad != nil {
		return kind, nil, false
	}
	if objs == nil {
		objs = []TickObject{}
	}
	return kind, objs, true
}

func indexOf(names []string, n string) int {
	for i, x := range names {
		if x == n {
			return i
		}
	}
	return -1
}

// View returns the game's state in t as a View of the game with schema s, matching members by name: every
// global, player field and object list of s must be in t, with integer values; members of t that s does not
// declare are an error too (the tick is of another game).
func (t *Tick) View(s *game.Schema) (*game.View, error) {
	ts := t.Schema
	if ts == nil {
		ts = &game.Schema{}
	}
	toInt := func(what string, f float64) (int64, error) {
		if f != math.Trunc(f) || math.Abs(f) > game.MaxValue {
			return 0, fmt.Errorf("protocol: tick %s: %v is not an integer of at most 2^53-1", what, f)
		}
		return int64(f), nil
	}
	if len(ts.Globals) != len(s.Globals) || len(ts.Objects) != len(s.Objects) || (len(t.Players) > 0 && len(ts.Player) != len(s.Player)) {
		return nil, fmt.Errorf("protocol: the tick's game members are not the game's")
	}
	v := &game.View{}
	v.Reset(s)
	for i, f := range s.Globals {
		j := fieldIndex(ts.Globals, f.Name)
		if j < 0 {
			return nil, fmt.Errorf("protocol: tick has no global %s", f.Name)
		}
		n, err := toInt(f.Name, t.Globals[j])
		if err != nil {
			return nil, err
		}
		v.Globals[i] = n
	}
	idx := make([]int, len(s.Player))
	for i, f := range s.Player {
		if idx[i] = fieldIndex(ts.Player, f.Name); idx[i] < 0 && len(t.Players) > 0 {
			return nil, fmt.Errorf("protocol: tick players have no field %s", f.Name)
		}
	}
	for _, p := range t.Players {
		vals := v.AddPlayer(p.ID, len(s.Player))
		for i, f := range s.Player {
			n, err := toInt("player "+p.ID+" "+f.Name, p.Fields[idx[i]])
			if err != nil {
				return nil, err
			}
			vals[i] = n
		}
	}
	for k, kind := range s.Objects {
		tk := -1
		for j, o := range ts.Objects {
			if o.Name == kind.Name {
				tk = j
			}
		}
		if tk < 0 {
			return nil, fmt.Errorf("protocol: tick has no object list %s", kind.Name)
		}
		fidx := make([]int, len(kind.Fields))
		for i, f := range kind.Fields {
			if fidx[i] = fieldIndex(ts.Objects[tk].Fields, f.Name); fidx[i] < 0 && len(t.Objects[tk]) > 0 {
				return nil, fmt.Errorf("protocol: tick %s have no field %s", kind.Name, f.Name)
			}
		}
		for _, o := range t.Objects[tk] {
			vals := v.AddObject(k, o.ID, len(kind.Fields))
			for i, f := range kind.Fields {
				n, err := toInt(kind.Name+" "+f.Name, o.Fields[fidx[i]])
				if err != nil {
					return nil, err
				}
				vals[i] = n
			}
		}
	}
	return v, nil
}

func fieldIndex(fs []game.Field, name string) int {
	for i, f := range fs {
		if f.Name == name {
			return i
		}
	}
	return -1
}
