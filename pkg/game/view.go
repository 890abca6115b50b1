package game

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxValue is the largest magnitude of a View value: 2^53-1, the largest integer a JavaScript number holds
// exactly, so that every client reads every value as it was written.
const MaxValue = 1<<53 - 1

// Field declares one integer field of a View and its inclusive range.
type Field struct {
	Name     string // [a-z][a-z0-9_]{0,31}, not a reserved name
	Min, Max int64  // -MaxValue <= Min <= Max <= MaxValue
}

// ObjectKind declares a list of shared objects (pickups, projectiles, doors): each object has an id and the
// kind's fields.
type ObjectKind struct {
	Name   string  // [a-z][a-z0-9_]{0,31}, not a reserved name
	Max    int     // most objects of this kind at once, 0..MaxObjects
	Fields []Field // not "id"
}

// MaxObjects bounds ObjectKind.Max.
const MaxObjects = 1 << 16

// Schema declares the shape of a game's View: global fields, fields every player has, and lists of objects.
// Names are unique among the globals and object kinds together, and among the fields of a player or of an
// object kind.
type Schema struct {
	Globals []Field
	Player  []Field
	Objects []ObjectKind
}

// Reserved names. The framework's members of a tick and of a snapshot share the JSON objects a View is encoded
// into: a global or an object kind cannot be named like a tick or snapshot member, a player field like a roster
// member, an object field "id".
var (
	ReservedTopNames    = []string{"type", "protocol", "room", "epoch", "seq", "owner", "time", "players", "game", "seed", "tick", "gone"}
	ReservedPlayerNames = []string{"id", "name", "ack", "conn", "online", "away"}
)

var errBadName = errors.New("want [a-z][a-z0-9_]{0,31}")

// ValidFieldName reports whether s is a valid name of a field, an object kind or a parameter:
// [a-z][a-z0-9_]{0,31}.
func ValidFieldName(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Validate checks names (syntax, reserved, unique) and ranges.
func (s *Schema) Validate() error {
	var errs []error
	top := map[string]bool{}
	checkFields := func(scope string, fs []Field, reserved []string) {
		seen := map[string]bool{}
		for _, f := range fs {
			switch {
			case !ValidFieldName(f.Name):
				errs = append(errs, fmt.Errorf("%s field %q: %w", scope, f.Name, errBadName))
			case slices.Contains(reserved, f.Name):
				errs = append(errs, fmt.Errorf("%s field %q: reserved name", scope, f.Name))
			case seen[f.Name]:
				errs = append(errs, fmt.Errorf("%s field %q: duplicate", scope, f.Name))
			case f.Min < -MaxValue || f.Max > MaxValue || f.Min > f.Max:
				errs = append(errs, fmt.Errorf("%s field %q: range [%d, %d] not within ±%d", scope, f.Name, f.Min, f.Max, int64(MaxValue)))
			}
			seen[f.Name] = true
		}
	}
	checkFields("global", s.Globals, ReservedTopNames)
	for _, f := range s.Globals {
		top[f.Name] = true
	}
	checkFields("player", s.Player, ReservedPlayerNames)
	for _, k := range s.Objects {
		switch {
		case !ValidFieldName(k.Name):
			errs = append(errs, fmt.Errorf("object kind %q: %w", k.Name, errBadName))
		case slices.Contains(ReservedTopNames, k.Name):
			errs = append(errs, fmt.Errorf("object kind %q: reserved name", k.Name))
		case top[k.Name]:
			errs = append(errs, fmt.Errorf("object kind %q: also a global or another kind", k.Name))
		case k.Max < 0 || k.Max > MaxObjects:
			errs = append(errs, fmt.Errorf("object kind %q: max %d out of [0, %d]", k.Name, k.Max, MaxObjects))
		}
		top[k.Name] = true
		checkFields("object "+k.Name, k.Fields, []string{"id"})
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	return nil
}

// View is the whole state of a game, as numbers in the shape of its Schema.
type View struct {
	Globals []int64      // one per Schema.Globals, in order
	Players []PlayerView // every player of the state, strictly sorted by ID
	Objects [][]Object   // one list per Schema.Objects, in order; each strictly sorted by ID
}

// PlayerView is one player's fields.
type PlayerView struct {
	ID     string
	Fields []int64 // one per Schema.Player, in order
}

// Object is one shared object.
type Object struct {
	ID     int64   // 0..MaxValue, unique within its kind
	Fields []int64 // one per field of its ObjectKind, in order
}

// Reset empties v for writing a state of schema s: Globals sized (and zeroed), no players, one empty list per
// object kind. Storage is kept for reuse by AddPlayer and AddObject.
func (v *View) Reset(s *Schema) {
	v.Globals = resize(v.Globals, len(s.Globals))
	v.Players = v.Players[:0]
	if cap(v.Objects) < len(s.Objects) {
		v.Objects = make([][]Object, len(s.Objects))
	}
	v.Objects = v.Objects[:len(s.Objects)]
	for i := range v.Objects {
		v.Objects[i] = v.Objects[i][:0]
	}
}

// AddPlayer appends a player with n fields (zeroed) and returns its fields for the caller to fill. It reuses
// storage left by Reset. Players must be added in increasing id order.
func (v *View) AddPlayer(id string, n int) []int64 {
	if len(v.Players) < cap(v.Players) {
		v.Players = v.Players[:len(v.Players)+1]
		p := &v.Players[len(v.Players)-1]
		p.ID = id
		p.Fields = resize(p.Fields, n)
		return p.Fields
	}
	v.Players = append(v.Players, PlayerView{ID: id, Fields: make([]int64, n)})
	return v.Players[len(v.Players)-1].Fields
}

// AddObject appends an object of kind k (the index in Schema.Objects) with n fields (zeroed) and returns its
// fields for the caller to fill. Objects of a kind must be added in increasing id order.
func (v *View) AddObject(k int, id int64, n int) []int64 {
	l := v.Objects[k]
	if len(l) < cap(l) {
		l = l[:len(l)+1]
		o := &l[len(l)-1]
		o.ID = id
		o.Fields = resize(o.Fields, n)
		v.Objects[k] = l
		return o.Fields
	}
	v.Objects[k] = append(l, Object{ID: id, Fields: make([]int64, n)})
	return v.Objects[k][len(v.Objects[k])-1].Fields
}

func resize(s []int64, n int) []int64 {
	if cap(s) < n {
		return make([]int64, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// Clone returns a deep copy of v.
func (v *View) Clone() *View {
	c := &View{Globals: slices.Clone(v.Globals), Players: make([]PlayerView, len(v.Players)), Objects: make([][]Object, len(v.Objects))}
	for i, p := range v.Players {
		c.Players[i] = PlayerView{ID: p.ID, Fields: slices.Clone(p.Fields)}
	}
	for k, l := range v.Objects {
		c.Objects[k] = make([]Object, len(l))
		for i, o := range l {
			c.Objects[k][i] = Object{ID: o.ID, Fields: slices.Clone(o.Fields)}
		}
	}
	return c
}

// Equal reports whether v and w hold the same values.
func (v *View) Equal(w *View) bool {
	if !slices.Equal(v.Globals, w.Globals) || len(v.Players) != len(w.Players) || len(v.Objects) != len(w.Objects) {
		return false
	}
	for i, p := range v.Players {
		if p.ID != w.Players[i].ID || !slices.Equal(p.Fields, w.Players[i].Fields) {
			return false
		}
	}
	for k, l := range v.Objects {
		if len(l) != len(w.Objects[k]) {
			return false
		}
		for i, o := range l {
			if o.ID != w.Objects[k][i].ID || !slices.Equal(o.Fields, w.Objects[k][i].Fields) {
				return false
			}
		}
	}
	return true
}

// Player returns the fields of the player with the given id.
func (v *View) Player(id string) ([]int64, bool) {
	i, ok := slices.BinarySearchFunc(v.Players, id, func(p PlayerView, id string) int { return strings.Compare(p.ID, id) })
	if !ok {
		return nil, false
	}
	return v.Players[i].Fields, true
}

// Check reports whether v has the shape of s: the declared number of globals, player fields and object lists,
// every value within its field's range, players strictly sorted by valid ids, at most Max objects of each kind,
// strictly sorted by ids in [0, MaxValue].
func (s *Schema) Check(v *View) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	checkValues := func(scope string, fs []Field, vals []int64) {
		if len(vals) != len(fs) {
			bad("%s: %d values, want %d", scope, len(vals), len(fs))
			return
		}
		for i, f := range fs {
			if vals[i] < f.Min || vals[i] > f.Max {
				bad("%s: %s = %d out of [%d, %d]", scope, f.Name, vals[i], f.Min, f.Max)
			}
		}
	}
	checkValues("globals", s.Globals, v.Globals)
	for i, p := range v.Players {
		if !ValidPlayerID(p.ID) {
			bad("player %d: malformed id %q", i, p.ID)
		}
		if i > 0 && v.Players[i-1].ID >= p.ID {
			bad("player %q: players not strictly sorted by id", p.ID)
		}
		checkValues("player "+p.ID, s.Player, p.Fields)
	}
	if len(v.Objects) != len(s.Objects) {
		bad("%d object lists, want %d", len(v.Objects), len(s.Objects))
	} else {
		for k, kind := range s.Objects {
			l := v.Objects[k]
			if len(l) > kind.Max {
				bad("%s: %d objects, at most %d", kind.Name, len(l), kind.Max)
			}
			for i, o := range l {
				if o.ID < 0 || o.ID > MaxValue {
					bad("%s: id %d out of [0, %d]", kind.Name, o.ID, int64(MaxValue))
				}
				if i > 0 && l[i-1].ID >= o.ID {
					bad("%s %d: not strictly sorted by id", kind.Name, o.ID)
				}
				checkValues(kind.Name+" "+strconv.FormatInt(o.ID, 10), kind.Fields, o.Fields)
			}
		}
	}
	if len(errs) > 8 {
		errs = append(errs[:8], fmt.Errorf("and %d more", len(errs)-8))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("view: %w", err)
	}
	return nil
}

// MaxJSONBytes bounds the size of the game's part of a JSON encoding of a View with the given number of
// players, as ticks and snapshots write it: each global as `,"name":value`, each player's fields the same way
// inside its object, and each object kind as `,"name":[{"id":n,"field":value,...},...]`. The framework's own
// members (room, epoch, the roster's ids, names, acks...) are not counted.
func (s *Schema) MaxJSONBytes(players int) int {
	member := func(f Field) int {
		return len(`,"":`) + len(f.Name) + max(digits(f.Min), digits(f.Max))
	}
	n := 0
	for _, f := range s.Globals {
		n += member(f)
	}
	per := 0
	for _, f := range s.Player {
		per += member(f)
	}
	n += players * per
	for _, k := range s.Objects {
		obj := len(`{"id":},`) + digits(MaxValue)
		for _, f := range k.Fields {
			obj += member(f)
		}
		n += len(`,"":[]`) + len(k.Name) + k.Max*obj
	}
	return n
}

func digits(v int64) int { return len(strconv.FormatInt(v, 10)) }

// MaxPlayerIDLen bounds a player id's length in bytes.
const MaxPlayerIDLen = 64

// ValidPlayerID reports whether id is a well-formed player id: 1 to MaxPlayerIDLen bytes, each an ASCII
// letter, digit, '-' or '_'. That admits hex, base64url and NUID tokens while keeping ids safe in NATS subjects
// and message ids (which use ':' as a separator).
func ValidPlayerID(id string) bool {
	if len(id) == 0 || len(id) > MaxPlayerIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
