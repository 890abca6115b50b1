package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// The encoding of a room (the "state" of a snapshot) is one JSON object: the framework's members and the game's
// View, laid out like a protocol 1 tick (docs/PROTOCOL.md) with the snapshot's extra members:
//
//	{"game":"collect","seed":7,"tick":1200,                       framework
//	 "width":1000,"height":1000,"round":1,"ends":2400,             the game's globals, in schema order
//	 "players":[{"id":"p1","name":"alice",                         roster
//	             "x":10,"y":20,"tx":10,"ty":20,"score":3,          the game's player fields
//	             "ack":42,"conn":41,"online":false,"away":1190}],  roster ("away" only when offline)
//	 "gone":[{"id":"p2","ack":9,"tick":1100}],                     tombstones, omitted when none
//	 "pickups":[{"id":7,"x":500,"y":20,"value":1}]}                the game's object lists, in schema order
//
// Snapshots written before games existed hold the arena's state in the same layout without "game", globals or
// object lists; Decode reads them (globals then come from a new state of the game).

// AppendJSON appends the room's encoding to b.
func (r *Room) AppendJSON(b []byte) []byte {
	var v game.View
	r.state.View(&v)
	s := &r.info.Schema
	b = append(b, `{"game":`...)
	b = appendString(b, r.info.Name)
	b = append(b, `,"seed":`...)
	b = strconv.AppendUint(b, r.seed, 10)
	b = append(b, `,"tick":`...)
	b = strconv.AppendInt(b, r.tick, 10)
	b = appendFields(b, s.Globals, v.Globals)
	b = append(b, `,"players":[`...)
	for i, p := range r.players {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, p.ID)
		b = append(b, `,"name":`...)
		b = appendString(b, p.Name)
		if i < len(v.Players) {
			b = appendFields(b, s.Player, v.Players[i].Fields)
		}
		b = append(b, `,"ack":`...)
		b = strconv.AppendUint(b, p.Ack, 10)
		b = append(b, `,"conn":`...)
		b = strconv.AppendUint(b, p.Conn, 10)
		b = append(b, `,"online":`...)
		b = strconv.AppendBool(b, p.Online)
		if !p.Online && p.AwaySince != 0 {
			b = append(b, `,"away":`...)
			b = strconv.AppendInt(b, p.AwaySince, 10)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	if len(r.gone) > 0 {
		b = append(b, `,"gone":[`...)
		for i, t := range r.gone {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = appendString(b, t.ID)
			b = append(b, `,"ack":`...)
			b = strconv.AppendUint(b, t.Ack, 10)
			b = append(b, `,"tick":`...)
			b = strconv.AppendInt(b, t.Tick, 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	for k, kind := range s.Objects {
		b = append(b, `,"`...)
		b = append(b, kind.Name...)
		b = append(b, `":[`...)
		if k < len(v.Objects) {
			for i, o := range v.Objects[k] {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"id":`...)
				b = strconv.AppendInt(b, o.ID, 10)
				b = appendFields(b, kind.Fields, o.Fields)
				b = append(b, '}')
			}
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// MarshalJSON is AppendJSON.
func (r *Room) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

func appendFields(b []byte, fs []game.Field, vals []int64) []byte {
	for i, f := range fs {
		b = append(b, `,"`...)
		b = append(b, f.Name...)
		b = append(b, `":`...)
		if i < len(vals) {
			b = strconv.AppendInt(b, vals[i], 10)
		} else {
			b = append(b, '0')
		}
	}
	return b
}

// appendString appends s as a JSON string: plain strings (printable ASCII without quote or backslash, which
// every id and most names are) are copied, any other goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ErrBadEncoding wraps every error of Decode about the encoding itself.
var ErrBadEncoding = errors.New("sim: bad room encoding")

// Decode restores a room of game g from its encoding (AppendJSON's, or a snapshot state written before games
// existed). When the encoding is of another game (the room's name now maps to another game), the room's roster
// is kept and g starts over (see restart): from then names the game the encoding was of ("" otherwise; for an
// encoding from before games that does not fit g, "arena").
func Decode(g game.Game, cfg Config, data []byte) (r *Room, from string, err error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadEncoding, err)
	}
	info := g.Info()
	var seed uint64
	var tick int64
	if err := decodeUint(top["seed"], "seed", &seed); err != nil {
		return nil, "", err
	}
	if err := decodeInt(top["tick"], "tick", &tick); err != nil {
		return nil, "", err
	}
	name, legacy := "", top["game"] == nil
	if !legacy {
		if err := json.Unmarshal(top["game"], &name); err != nil {
			return nil, "", fmt.Errorf("%w: game: %v", ErrBadEncoding, err)
		}
	}
	players, fields, err := decodePlayers(top["players"], info.Schema.Player)
	if err != nil {
		return nil, "", err
	}
	var gone []Tombstone
	if raw := top["gone"]; raw != nil {
		var tombs []struct {
			ID   string `json:"id"`
			Ack  uint64 `json:"ack"`
			Tick int64  `json:"tick"`
		}
		if err := json.Unmarshal(raw, &tombs); err != nil {
			return nil, "", fmt.Errorf("%w: gone: %v", ErrBadEncoding, err)
		}
		for _, t := range tombs {
			gone = append(gone, Tombstone(t))
		}
	}
	if !legacy && name != info.Name {
		r := restart(g, cfg, seed, players, gone)
		if err := r.Validate(); err != nil {
			return nil, "", err
		}
		return r, name, nil
	}
	v, err := decodeView(top, &info.Schema, players, fields)
	if err != nil {
		if !legacy {
			return nil, "", err
		}
		// An encoding from before games is the arena's layout; one that does not fit g's schema is the arena's
		// state and g is another game: keep the roster and start over.
		r := restart(g, cfg, seed, players, gone)
		if err := r.Validate(); err != nil {
			return nil, "", err
		}
		return r, "arena", nil
	}
	if legacy {
		// Globals and object lists are absent from encodings from before games: take them from a new state.
		var fresh game.View
		g.New(seed).View(&fresh)
		for i, f := range info.Schema.Globals {
			if top[f.Name] == nil {
				v.Globals[i] = fresh.Globals[i]
			}
		}
		for k, kind := range info.Schema.Objects {
			if top[kind.Name] == nil {
				v.Objects[k] = fresh.Objects[k]
			}
		}
	}
	r, err = Restore(g, cfg, seed, tick, players, gone, v)
	return r, "", err
}

func decodeInt(raw json.RawMessage, name string, p *int64) error {
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s: want an integer, got %.40q", ErrBadEncoding, name, raw)
	}
	*p = n
	return nil
}

func decodeUint(raw json.RawMessage, name string, p *uint64) error {
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %s: want a non-negative integer, got %.40q", ErrBadEncoding, name, raw)
	}
	*p = n
	return nil
}

// decodePlayers reads the roster members of every player, and the raw members named like the schema's player
// fields (nil where absent).
func decodePlayers(raw json.RawMessage, fs []game.Field) ([]Player, [][]json.RawMessage, error) {
	var objs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &objs); err != nil || objs == nil {
		return nil, nil, fmt.Errorf("%w: players: want an array of objects", ErrBadEncoding)
	}
	players := make([]Player, len(objs))
	fields := make([][]json.RawMessage, len(objs))
	for i, o := range objs {
		p := &players[i]
		if err := json.Unmarshal(o["id"], &p.ID); err != nil {
			return nil, nil, fmt.Errorf("%w: player %d: id: want a string", ErrBadEncoding, i)
		}
		if o["name"] != nil {
			if err := json.Unmarshal(o["name"], &p.Name); err != nil {
				return nil, nil, fmt.Errorf("%w: player %s: name: want a string", ErrBadEncoding, p.ID)
			}
		}
		if err := decodeUint(o["ack"], "player "+p.ID+": ack", &p.Ack); err != nil {
			return nil, nil, err
		}
		if err := decodeUint(o["conn"], "player "+p.ID+": conn", &p.Conn); err != nil {
			return nil, nil, err
		}
		if err := json.Unmarshal(o["online"], &p.Online); err != nil {
			return nil, nil, fmt.Errorf("%w: player %s: online: want a boolean", ErrBadEncoding, p.ID)
		}
		if o["away"] != nil {
			if err := decodeInt(o["away"], "player "+p.ID+": away", &p.AwaySince); err != nil {
				return nil, nil, err
			}
		}
		fields[i] = make([]json.RawMessage, len(fs))
		for j, f := range fs {
			fields[i][j] = o[f.Name]
		}
	}
	return players, fields, nil
}

// decodeView reads the game's members: globals, the players' fields (from decodePlayers) and object lists.
// Absent globals and object lists are left zero and empty (Decode fills them for old encodings; for others
// Restore's check refuses nothing that is absent, so they are required here unless old).
func decodeView(top map[string]json.RawMessage, s *game.Schema, players []Player, fields [][]json.RawMessage) (*game.View, error) {
	v := &game.View{}
	v.Reset(s)
	legacy := top["game"] == nil
	for i, f := range s.Globals {
		raw := top[f.Name]
		if raw == nil {
			if legacy {
				continue
			}
			return nil, fmt.Errorf("%w: global %s missing", ErrBadEncoding, f.Name)
		}
		if err := decodeInt(raw, f.Name, &v.Globals[i]); err != nil {
			return nil, err
		}
	}
	for i, p := range players {
		vals := v.AddPlayer(p.ID, len(s.Player))
		for j, f := range s.Player {
			if fields[i][j] == nil {
				return nil, fmt.Errorf("%w: player %s: %s missing", ErrBadEncoding, p.ID, f.Name)
			}
			if err := decodeInt(fields[i][j], "player "+p.ID+": "+f.Name, &vals[j]); err != nil {
				return nil, err
			}
		}
	}
	for k, kind := range s.Objects {
		raw := top[kind.Name]
		if raw == nil {
			if legacy {
				continue
			}
			return nil, fmt.Errorf("%w: object list %s missing", ErrBadEncoding, kind.Name)
		}
		var objs []map[string]json.RawMessage
		if err := json.Unmarshal(raw, &objs); err != nil {
			return nil, fmt.Errorf("%w: %s: want an array of objects", ErrBadEncoding, kind.Name)
		}
		for i, o := range objs {
			var id int64
			if err := decodeInt(o["id"], kind.Name+" "+strconv.Itoa(i)+": id", &id); err != nil {
				return nil, err
			}
			vals := v.AddObject(k, id, len(kind.Fields))
			for j, f := range kind.Fields {
				if err := decodeInt(o[f.Name], kind.Name+" "+strconv.FormatInt(id, 10)+": "+f.Name, &vals[j]); err != nil {
					return nil, err
				}
			}
		}
	}
	return v, nil
}
