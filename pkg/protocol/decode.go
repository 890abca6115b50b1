package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// DecodeClient decodes one client frame into *Hello, *Input or *Ping.
//
// Decoding is strict. Checks run in this order and the first failure is returned as a *DecodeError:
//
//  1. CodeBadJSON: the frame is not valid UTF-8, not valid JSON, has data after the value, or is not an
//     object.
//  2. CodeBadField: "type" is missing, duplicated or not a string.
//  3. CodeUnknownType: "type" is not hello, input or ping.
//  4. CodeBadProtocol (hello only): "protocol" is missing or not the integer 1 or 2 (checked before any other
//     field, so that a hello of any other version is recognised as such).
//  5. CodeBadField: for each member in order, an unknown or duplicated name (names are case-sensitive),
//     null, a wrong type, a non-integer for an integer field (42.0 and 4.2e1 are not integers), a value out
//     of range or a non-finite number; then missing required fields.
//
// Hello.Name is returned trimmed of surrounding white space.
func DecodeClient(data []byte) (any, error) {
	var buf [8]member
	ms, typ, derr := decodeEnvelope(data, buf[:0])
	if derr != nil {
		return nil, derr
	}
	switch string(typ) {
	case TypeHello:
		h := new(Hello)
		if derr := decodeHello(ms, h); derr != nil {
			return nil, derr
		}
		return h, nil
	case TypeInput:
		in := new(Input)
		if derr := decodeInput(ms, in); derr != nil {
			return nil, derr
		}
		return in, nil
	case TypePing:
		p := new(Ping)
		if derr := decodePing(ms, p); derr != nil {
			return nil, derr
		}
		return p, nil
	}
	return nil, &DecodeError{Code: CodeUnknownType, Message: "unknown message type " + quoteName(typ)}
}

// DecodeServer decodes one server frame into *Welcome, *Nodes, *Tick, *Error or *Pong. It is meant for Go
// clients and tests and is lenient like a client must be: unknown fields are ignored. An unknown type gives
// a *DecodeError with CodeUnknownType, which a client should ignore.
func DecodeServer(data []byte) (any, error) {
	var buf [8]member
	_, typ, derr := decodeEnvelope(data, buf[:0])
	if derr != nil {
		return nil, derr
	}
	var v any
	switch string(typ) {
	case TypeWelcome:
		v = new(Welcome)
	case TypeNodes:
		v = new(Nodes)
	case TypeTick:
		t, derr := decodeTick(data)
		if derr != nil {
			return nil, derr
		}
		return t, nil
	case TypeError:
		v = new(Error)
	case TypePong:
		v = new(Pong)
	default:
		return nil, &DecodeError{Code: CodeUnknownType, Message: "unknown message type " + quoteName(typ)}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, &DecodeError{Code: CodeBadField, Message: err.Error()}
	}
	return v, nil
}

// member is one member of a JSON object: its (unescaped) name and its raw value.
type member struct {
	name []byte
	val  []byte
}

func badJSON(msg string) *DecodeError { return &DecodeError{Code: CodeBadJSON, Message: msg} }

func badField(name, msg string) *DecodeError {
	return &DecodeError{Code: CodeBadField, Message: name + ": " + msg}
}

// decodeEnvelope validates the frame as one JSON object and returns its members, appended to ms, and its
// (unquoted) type.
func decodeEnvelope(data []byte, ms []member) ([]member, []byte, *DecodeError) {
	if !utf8.Valid(data) {
		return nil, nil, badJSON("frame is not valid UTF-8")
	}
	if !json.Valid(data) {
		return nil, nil, badJSON("frame is not a single valid JSON value")
	}
	data = trimSpace(data)
	if data[0] != '{' {
		return nil, nil, badJSON("frame is not a JSON object")
	}
	ms = objectMembers(data, ms)
	var typ []byte
	found := false
	for _, m := range ms {
		if string(m.name) != "type" {
			continue
		}
		if found {
			return nil, nil, badField("type", "duplicate field")
		}
		found = true
		typ = m.val
	}
	if !found {
		return nil, nil, badField("type", "missing required field")
	}
	if typ[0] != '"' {
		return nil, nil, badField("type", "must be a string")
	}
	return ms, unquote(typ), nil
}

// objectMembers appends the members of obj, a valid JSON object without surrounding white space, to ms.
func objectMembers(obj []byte, ms []member) []member {
	i := skipSpace(obj, 1)
	if obj[i] == '}' {
		return ms
	}
	for {
		end := stringEnd(obj, i)
		name := unquote(obj[i:end])
		i = skipSpace(obj, end)
		i = skipSpace(obj, i+1) // ':'
		vend := valueEnd(obj, i)
		ms = append(ms, member{name: name, val: obj[i:vend]})
		i = skipSpace(obj, vend)
		if obj[i] == '}' {
			return ms
		}
		i = skipSpace(obj, i+1) // ','
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace(b[i]) {
		i++
	}
	for j > i && isSpace(b[j-1]) {
		j--
	}
	return b[i:j]
}

// stringEnd returns the index just after the valid JSON string starting at b[i].
func stringEnd(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

// valueEnd returns the index just after the valid JSON value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = stringEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
		i++
	}
	return i
}

// unquote returns the contents of a valid JSON string literal, without copying if it has no escapes.
func unquote(lit []byte) []byte {
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return inner // unreachable for a valid literal
	}
	return []byte(s)
}

// quoteName quotes a (possibly attacker-chosen) name for an error message, truncated to 40 bytes.
func quoteName(name []byte) string {
	const maxLen = 40
	if len(name) > maxLen {
		n := maxLen
		for n > 0 && !utf8.RuneStart(name[n]) {
			n--
		}
		return strconv.Quote(string(name[:n])) + "..."
	}
	return strconv.Quote(string(name))
}

// fieldSet tracks which of up to 64 known fields have been seen.
type fieldSet uint64

// see marks field i as seen and reports whether it had been seen already.
func (s *fieldSet) see(i int) (dup bool) {
	bit := fieldSet(1) << i
	dup = *s&bit != 0
	*s |= bit
	return dup
}

func (s fieldSet) has(i int) bool { return s&(fieldSet(1)<<i) != 0 }

func isNull(v []byte) bool { return v[0] == 'n' }

func isNumber(v []byte) bool { return v[0] == '-' || v[0] >= '0' && v[0] <= '9' }

// parseUint parses a JSON number that must be an integer in [lo, hi].
func parseUint(name string, v []byte, lo, hi uint64) (uint64, *DecodeError) {
	if !isNumber(v) {
		return 0, badField(name, "must be an integer")
	}
	if bytes.IndexAny(v, ".eE") >= 0 {
		return 0, badField(name, "must be an integer (no fraction or exponent)")
	}
	if v[0] != '-' && len(v) <= 20 {
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err == nil && n >= lo && n <= hi {
			return n, nil
		}
	}
	return 0, badField(name, "must be between "+strconv.FormatUint(lo, 10)+" and "+strconv.FormatUint(hi, 10))
}

func parseString(name string, v []byte) (string, *DecodeError) {
	if v[0] != '"' {
		return "", badField(name, "must be a string")
	}
	return string(unquote(v)), nil
}

func parseBool(name string, v []byte) (bool, *DecodeError) {
	switch string(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, badField(name, "must be a boolean")
}

func parseFloat(name string, v []byte) (float64, *DecodeError) {
	if !isNumber(v) {
		return 0, badField(name, "must be a number")
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, badField(name, "must be a finite number")
	}
	return f, nil
}

func unknownField(name []byte) *DecodeError {
	return &DecodeError{Code: CodeBadField, Message: "unknown field " + quoteName(name)}
}

func duplicateField(name string) *DecodeError { return badField(name, "duplicate field") }

func missingField(name string) *DecodeError { return badField(name, "missing required field") }

const (
	fType = iota
	fProtocol
	fName
	fResume
	fRoom
	fSeq
	fKeys
	fT
	fData
)

func decodeHello(ms []member, h *Hello) *DecodeError {
	// The version check comes first so that any other version's hello gives CodeBadProtocol.
	found := false
	for _, m := range ms {
		if string(m.name) != "protocol" {
			continue
		}
		v := 0
		switch string(m.val) {
		case "1":
			v = Version
		case "2":
			v = Version2
		}
		if v == 0 || (found && v != h.Protocol) {
			// Two different versions are no version this server speaks either (a repeat of the same one is a
			// duplicate field, below).
			return &DecodeError{Code: CodeBadProtocol, Message: "unsupported protocol version; this server speaks protocols 1 and 2"}
		}
		found = true
		h.Protocol = v
	}
	if !found {
		return &DecodeError{Code: CodeBadProtocol, Message: "protocol: missing required field; this server speaks protocols 1 and 2"}
	}
	var seen fieldSet
	for _, m := range ms {
		var derr *DecodeError
		switch string(m.name) {
		case "type":
			if seen.see(fType) {
				return duplicateField("type")
			}
		case "protocol":
			if seen.see(fProtocol) {
				return duplicateField("protocol")
			}
		case "name":
			if seen.see(fName) {
				return duplicateField("name")
			}
			h.Name, derr = parseName(m.val)
		case "resume":
			if seen.see(fResume) {
				return duplicateField("resume")
			}
			h.Resume, derr = parseResume(m.val)
		case "room":
			if seen.see(fRoom) {
				return duplicateField("room")
			}
			if h.Room, derr = parseString("room", m.val); derr == nil && !ValidRoom(h.Room) {
				derr = badField("room", "must be 1-32 characters of a-z, 0-9 and '-'")
			}
		case "seq":
			if seen.see(fSeq) {
				return duplicateField("seq")
			}
			h.Seq, derr = parseUint("seq", m.val, 1, MaxSeq)
		default:
			return unknownField(m.name)
		}
		if derr != nil {
			return derr
		}
	}
	if !seen.has(fName) {
		return missingField("name")
	}
	if seen.has(fResume) && !seen.has(fSeq) {
		return badField("seq", "required when resume is present")
	}
	return nil
}

func parseName(v []byte) (string, *DecodeError) {
	s, derr := parseString("name", v)
	if derr != nil {
		return "", derr
	}
	s = strings.TrimSpace(s)
	n := 0
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return "", badField("name", "must contain only printable characters")
		}
		n++
	}
	if n == 0 || n > MaxNameRunes {
		return "", badField("name", "must be 1-32 characters after trimming white space")
	}
	return s, nil
}

func parseResume(v []byte) (string, *DecodeError) {
	s, derr := parseString("resume", v)
	if derr != nil {
		return "", derr
	}
	if len(s) == 0 || len(s) > MaxResumeLen {
		return "", badField("resume", "must be 1-512 bytes (omit it when there is no token)")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return "", badField("resume", "must contain only printable ASCII without spaces")
		}
	}
	return s, nil
}

func decodeInput(ms []member, in *Input) *DecodeError {
	var seen fieldSet
	for _, m := range ms {
		var derr *DecodeError
		switch string(m.name) {
		case "type":
			if seen.see(fType) {
				return duplicateField("type")
			}
		case "seq":
			if seen.see(fSeq) {
				return duplicateField("seq")
			}
			in.Seq, derr = parseUint("seq", m.val, 1, MaxSeq)
		case "keys":
			if seen.see(fKeys) {
				return duplicateField("keys")
			}
			derr = parseKeys(m.val, &in.Keys)
		case "data":
			if seen.see(fData) {
				return duplicateField("data")
			}
			switch {
			case isNull(m.val):
				derr = badField("data", "must not be null")
			case len(m.val) > MaxDataBytes:
				derr = badField("data", "must be at most "+strconv.Itoa(MaxDataBytes)+" bytes")
			default:
				in.Data = append([]byte(nil), m.val...)
			}
		default:
			return unknownField(m.name)
		}
		if derr != nil {
			return derr
		}
	}
	if !seen.has(fSeq) {
		return missingField("seq")
	}
	if seen.has(fKeys) && seen.has(fData) {
		return badField("data", "an input has keys or data, not both")
	}
	if !seen.has(fKeys) && !seen.has(fData) {
		return badField("data", "missing required field (or keys)")
	}
	return nil
}

func parseKeys(v []byte, k *Keys) *DecodeError {
	if v[0] != '{' {
		return badField("keys", "must be an object")
	}
	var buf [4]member
	var seen fieldSet
	for _, m := range objectMembers(v, buf[:0]) {
		var p *bool
		var name string
		var idx int
		switch string(m.name) {
		case "up":
			p, name, idx = &k.Up, "keys.up", 0
		case "down":
			p, name, idx = &k.Down, "keys.down", 1
		case "left":
			p, name, idx = &k.Left, "keys.left", 2
		case "right":
			p, name, idx = &k.Right, "keys.right", 3
		default:
			return &DecodeError{Code: CodeBadField, Message: "keys: unknown field " + quoteName(m.name)}
		}
		if seen.see(idx) {
			return duplicateField(name)
		}
		var derr *DecodeError
		if *p, derr = parseBool(name, m.val); derr != nil {
			return derr
		}
	}
	return nil
}

func decodePing(ms []member, p *Ping) *DecodeError {
	var seen fieldSet
	for _, m := range ms {
		switch string(m.name) {
		case "type":
			if seen.see(fType) {
				return duplicateField("type")
			}
		case "t":
			if seen.see(fT) {
				return duplicateField("t")
			}
			t, derr := parseFloat("t", m.val)
			if derr != nil {
				return derr
			}
			p.T = &t
		default:
			return unknownField(m.name)
		}
	}
	return nil
}
