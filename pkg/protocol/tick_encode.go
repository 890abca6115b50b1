package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"

	"github.com/tickmesh/tickmesh/pkg/game"
)

// appendTick appends the tick message's JSON to b, without reflection: the framework's members in a fixed order,
// the game's members where Tick's doc puts them, with names from t.Schema. For the arena this is byte for byte
// what encoding/json wrote for protocol 1's tick struct before games (the same field order, number formats and
// escapes; TestTickEncoderWritesWhatEncodingJSONWrites holds it to that). Owners encode every tick of every
// room, so this is on the per-tick path. The arena-only encoder it replaces took 17.5 µs for a tick of 50
// players against 44.7 µs with encoding/json (docs/BENCHMARKS.md); this one writes the same bytes from a schema
// and has not been measured yet (BenchmarkEncodeTick).
func appendTick(b []byte, t *Tick) ([]byte, error) {
	var err error
	var s *game.Schema
	if t.Schema != nil {
		s = t.Schema
	} else {
		s = &game.Schema{}
	}
	if len(t.Globals) != len(s.Globals) || len(t.Objects) != len(s.Objects) {
		return nil, fmt.Errorf("protocol: tick has %d globals and %d object lists, its schema %d and %d",
			len(t.Globals), len(t.Objects), len(s.Globals), len(s.Objects))
	}
	b = append(b, `{"type":"tick","room":`...)
	b = appendString(b, t.Room)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendUint(b, t.Epoch, 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendUint(b, t.Seq, 10)
	b = append(b, `,"owner":`...)
	b = appendString(b, t.Owner)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, t.Time, 10)
	if b, err = appendMembers(b, s.Globals, t.Globals); err != nil {
		return nil, err
	}
	b = append(b, `,"players":[`...)
	for i := range t.Players {
		p := &t.Players[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, p.ID)
		b = append(b, `,"name":`...)
		b = appendString(b, p.Name)
		if len(p.Fields) != len(s.Player) {
			return nil, fmt.Errorf("protocol: player %s has %d fields, the schema %d", p.ID, len(p.Fields), len(s.Player))
		}
		if b, err = appendMembers(b, s.Player, p.Fields); err != nil {
			return nil, err
		}
		b = append(b, `,"ack":`...)
		b = strconv.AppendUint(b, p.Ack, 10)
		b = append(b, `,"conn":`...)
		b = strconv.AppendUint(b, p.Conn, 10)
		b = append(b, `,"online":`...)
		b = strconv.AppendBool(b, p.Online)
		if p.Away != 0 {
			b = append(b, `,"away":`...)
			b = strconv.AppendUint(b, p.Away, 10)
		}
		b = append(b, '}')
	}
	b = append(b, ']')
	for k, kind := range s.Objects {
		b = append(b, `,"`...)
		b = append(b, kind.Name...)
		b = append(b, `":[`...)
		for i, o := range t.Objects[k] {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"id":`...)
			b = strconv.AppendInt(b, o.ID, 10)
			if len(o.Fields) != len(kind.Fields) {
				return nil, fmt.Errorf("protocol: %s %d has %d fields, the schema %d", kind.Name, o.ID, len(o.Fields), len(kind.Fields))
			}
			if b, err = appendMembers(b, kind.Fields, o.Fields); err != nil {
				return nil, err
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

// appendMembers appends `,"name":value` for each field; names are schema names (plain ASCII, no escapes).
func appendMembers(b []byte, fs []game.Field, vals []float64) ([]byte, error) {
	var err error
	for i, f := range fs {
		b = append(b, `,"`...)
		b = append(b, f.Name...)
		b = append(b, `":`...)
		if b, err = appendFloat(b, vals[i]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// appendString appends s as a JSON string. Plain strings (printable ASCII without quote or backslash: every id,
// room and node name, and most player names) are copied; any other goes through encoding/json, which knows the
// escapes (control characters, invalid UTF-8, U+2028 and U+2029).
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

// appendFloat appends f as encoding/json does: the shortest representation, in exponent form only below 1e-6 or
// from 1e21 on, with a one-digit negative exponent written without its leading zero. NaN and infinities are
// refused, as encoding/json refuses them.
func appendFloat(b []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("protocol: unsupported number %v", f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}
