package wire_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

func TestTickHeadersRoundTrip(t *testing.T) {
	m := wire.TickMsg("lobby", 7, 1234, []byte(`{}`))
	if m.Subject != "game.lobby.tick" {
		t.Fatalf("subject %q", m.Subject)
	}
	epoch, seq, err := wire.ParseTickHeader(m.Header)
	if err != nil || epoch != 7 || seq != 1234 {
		t.Fatalf("ParseTickHeader = %d, %d, %v", epoch, seq, err)
	}
}

func TestTickHeadersOutOfRangeAreRefused(t *testing.T) {
	for _, c := range []struct{ epoch, seq string }{
		{"", "1"}, {"1", ""}, {"0", "1"}, {"-1", "1"}, {"x", "1"},
		{strconv.FormatUint(wire.MaxCounter+1, 10), "1"},
		{"1", strconv.FormatUint(wire.MaxCounter+1, 10)},
		{"18446744073709551615", "1"}, {"18446744073709551616", "1"},
	} {
		h := nats.Header{}
		h.Set(wire.HeaderEpoch, c.epoch)
		h.Set(wire.HeaderSeq, c.seq)
		if _, _, err := wire.ParseTickHeader(h); !errors.Is(err, wire.ErrBadHeader) {
			t.Errorf("epoch %q seq %q: err %v, want ErrBadHeader", c.epoch, c.seq, err)
		}
	}
	h := nats.Header{}
	h.Set(wire.HeaderEpoch, strconv.FormatUint(wire.MaxCounter, 10))
	h.Set(wire.HeaderSeq, "0")
	if _, _, err := wire.ParseTickHeader(h); err != nil {
		t.Fatalf("the largest epoch is refused: %v", err)
	}
}

func TestEventMessagesCarryTheirDedupID(t *testing.T) {
	ev := sim.Event{Kind: sim.KindInput, Player: "p1", Seq: 42, Keys: 1}
	m, err := wire.EventMsg("r-1", ev)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != wire.InputSubject("r-1") || m.Header.Get(jetstream.MsgIDHeader) != "r-1:p1:input:42" {
		t.Fatalf("subject %q id %q", m.Subject, m.Header.Get(jetstream.MsgIDHeader))
	}
	got, err := wire.DecodeEvent(m.Data)
	if err != nil || !got.Equal(ev) {
		t.Fatalf("DecodeEvent = %+v, %v; want %+v", got, err, ev)
	}
	if _, err := wire.EventMsg("Bad.Room", ev); !errors.Is(err, wire.ErrBadRoom) {
		t.Fatalf("a bad room name gave %v", err)
	}
	if _, err := wire.DecodeEvent([]byte("{")); !errors.Is(err, wire.ErrBadEvent) {
		t.Fatalf("a bad event gave %v", err)
	}
}

// Nodes of both versions read each other's events during a rolling upgrade: the arena's inputs keep the form
// they had before games (the bitmask in "keys"), and a payload travels as "data".
func TestEventsKeepTheirFormAcrossVersions(t *testing.T) {
	for _, c := range []struct {
		data string
		ev   sim.Event
	}{
		{`{"kind":"input","player":"p1","seq":18,"keys":5}`, sim.Event{Kind: sim.KindInput, Player: "p1", Seq: 18, Keys: 5}},
		{`{"kind":"input","player":"p1","seq":19}`, sim.Event{Kind: sim.KindInput, Player: "p1", Seq: 19}},
		{`{"kind":"join","player":"p1","name":"alice","seq":17}`, sim.Event{Kind: sim.KindJoin, Player: "p1", Name: "alice", Seq: 17}},
		{`{"kind":"leave","player":"p1","conn":17}`, sim.Event{Kind: sim.KindLeave, Player: "p1", Conn: 17}},
		{`{"kind":"input","player":"p1","seq":20,"data":{"x":1,"y":2}}`, sim.Event{Kind: sim.KindInput, Player: "p1", Seq: 20, Data: []byte(`{"x":1,"y":2}`)}},
	} {
		got, err := wire.DecodeEvent([]byte(c.data))
		if err != nil || !got.Equal(c.ev) {
			t.Errorf("DecodeEvent(%s) = %+v, %v; want %+v", c.data, got, err, c.ev)
		}
		m, err := wire.EventMsg("lobby", c.ev)
		if err != nil || string(m.Data) != c.data {
			t.Errorf("EventMsg(%+v) = %s, %v; want %s", c.ev, m.Data, err, c.data)
		}
	}
}

func TestInputsStreamCapturesInputsButNotLiveCopies(t *testing.T) {
	cfg := wire.InputsConfig()
	if len(cfg.Subjects) != 1 || cfg.Subjects[0] != wire.AllInputs {
		t.Fatalf("subjects %v", cfg.Subjects)
	}
	// AllInputs matches InputSubject and not LiveSubject or TickSubject: a live copy stored by the stream would
	// race the durable publish of the same message id.
	for subj, want := range map[string]bool{wire.InputSubject("a"): true, wire.LiveSubject("a"): false, wire.TickSubject("a"): false} {
		if got := subjectMatches(wire.AllInputs, subj); got != want {
			t.Errorf("%s matches %s: %v, want %v", wire.AllInputs, subj, got, want)
		}
	}
}

// subjectMatches is NATS subject matching for '*' tokens.
func subjectMatches(pattern, subj string) bool {
	split := func(s string) []string {
		var out []string
		start := 0
		for i := 0; i <= len(s); i++ {
			if i == len(s) || s[i] == '.' {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
		return out
	}
	p, s := split(pattern), split(subj)
	if len(p) != len(s) {
		return false
	}
	for i := range p {
		if p[i] != "*" && p[i] != s[i] {
			return false
		}
	}
	return true
}

func TestBeaconsRoundTripAndNameTheirNode(t *testing.T) {
	subj := wire.BeaconSubject("n-2_a")
	if got := wire.BeaconNode(subj); got != "n-2_a" {
		t.Fatalf("BeaconNode(%q) = %q", subj, got)
	}
	for _, bad := range []string{"tickmesh.beacon.", "tickmesh.beacon.a.b", "game.lobby.tick", "tickmesh.beacon.*"} {
		if got := wire.BeaconNode(bad); got != "" {
			t.Errorf("BeaconNode(%q) = %q, want none", bad, got)
		}
	}
	ticks, err := wire.DecodeBeacon(wire.EncodeBeacon(123456))
	if err != nil || ticks != 123456 {
		t.Fatalf("DecodeBeacon = %d, %v", ticks, err)
	}
	if _, err := wire.DecodeBeacon([]byte("x1")); !errors.Is(err, wire.ErrBadEvent) {
		t.Fatalf("bad beacon: %v", err)
	}
}

// A batch is a JSON array of events, in order; a message of one event (the form before batches) decodes too, so
// a new owner replays what older nodes stored (rolling upgrade). A bad element costs itself, not its neighbours.
func TestBatchesAndSingleEventsDecode(t *testing.T) {
	a := sim.Event{Kind: sim.KindJoin, Player: "pa", Name: "alice", Seq: 1}
	b := sim.Event{Kind: sim.KindInput, Player: "pb", Seq: 7, Data: []byte(`{"x":1,"y":2}`)}
	c := sim.Event{Kind: sim.KindLeave, Player: "pa", Conn: 1}
	var enc [][]byte
	for _, ev := range []sim.Event{a, b, c} {
		d, err := wire.EncodeEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		enc = append(enc, d)
	}
	batch := wire.EncodeBatch(enc)
	if !json.Valid(batch) || batch[0] != '[' {
		t.Fatalf("batch %s", batch)
	}
	evs, bad := wire.DecodeEvents(batch)
	if bad != 0 || len(evs) != 3 || !evs[0].Equal(a) || !evs[1].Equal(b) || !evs[2].Equal(c) {
		t.Fatalf("DecodeEvents(batch) = %+v, %d bad", evs, bad)
	}
	one := wire.EncodeBatch(enc[1:2])
	if evs, bad := wire.DecodeEvents(one); bad != 0 || len(evs) != 1 || !evs[0].Equal(b) {
		t.Fatalf("DecodeEvents(batch of one) = %+v, %d bad", evs, bad)
	}
	// The form before batches.
	m, err := wire.EventMsg("lobby", b)
	if err != nil {
		t.Fatal(err)
	}
	if evs, bad := wire.DecodeEvents(m.Data); bad != 0 || len(evs) != 1 || !evs[0].Equal(b) {
		t.Fatalf("DecodeEvents(single) = %+v, %d bad", evs, bad)
	}
	// Bad elements are counted and skipped; a message that is neither form counts as one.
	if evs, bad := wire.DecodeEvents([]byte(`[{"kind":"join","player":"pa","seq":1},7,{"kind":"input","player":"pa","seq":2}]`)); bad != 1 || len(evs) != 2 || evs[1].Seq != 2 {
		t.Fatalf("DecodeEvents(one bad element) = %+v, %d bad", evs, bad)
	}
	for _, d := range []string{"", "{", "[", "[1,", "nope"} {
		if evs, bad := wire.DecodeEvents([]byte(d)); bad != 1 || len(evs) != 0 {
			t.Errorf("DecodeEvents(%q) = %+v, %d bad; want nothing, 1 bad", d, evs, bad)
		}
	}
}

func TestBatchMessagesCarryTheBatchID(t *testing.T) {
	m, err := wire.BatchMsg("r-1", "n1:3f2a:17", wire.EncodeBatch(nil))
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != wire.InputSubject("r-1") || m.Header.Get(jetstream.MsgIDHeader) != "r-1:batch:n1:3f2a:17" || string(m.Data) != "[]" {
		t.Fatalf("subject %q id %q data %s", m.Subject, m.Header.Get(jetstream.MsgIDHeader), m.Data)
	}
	if _, err := wire.BatchMsg("Bad.Room", "x", nil); !errors.Is(err, wire.ErrBadRoom) {
		t.Fatalf("a bad room name gave %v", err)
	}
}

func TestAppliedHeaderRoundTripsAndRefusesWhatNoOwnerWrites(t *testing.T) {
	entries := []wire.Applied{{Player: "pa", Seq: 7}, {Player: "p0123456789abcdef", Seq: wire.MaxCounter}}
	v := wire.EncodeApplied(entries)
	if v != "pa=7,p0123456789abcdef=9007199254740991" {
		t.Fatalf("EncodeApplied = %q", v)
	}
	got, err := wire.ParseApplied(v)
	if err != nil || len(got) != 2 || got["pa"] != 7 || got["p0123456789abcdef"] != wire.MaxCounter {
		t.Fatalf("ParseApplied = %v, %v", got, err)
	}
	if got, err := wire.ParseApplied(""); err != nil || got != nil {
		t.Fatalf("ParseApplied(\"\") = %v, %v", got, err)
	}
	for _, bad := range []string{"pa", "=3", "pa=", "pa=0", "pa=-1", "pa=x", "pa=9007199254740992", "pa=1,pa=2", "pa=1,", ","} {
		if _, err := wire.ParseApplied(bad); !errors.Is(err, wire.ErrBadHeader) {
			t.Errorf("ParseApplied(%q): err %v, want ErrBadHeader", bad, err)
		}
	}
}

func TestNodeNamesAreSubjectTokensOfAtMost64Characters(t *testing.T) {
	for _, ok := range []string{"n1", "node_2-b", strings.Repeat("a", 64)} {
		if !wire.ValidNode(ok) {
			t.Errorf("ValidNode(%q) = false", ok)
		}
	}
	for _, bad := range []string{"", "N1", "n.1", "n*", "n>", "n 1", "n\n", strings.Repeat("a", 65)} {
		if wire.ValidNode(bad) {
			t.Errorf("ValidNode(%q) = true", bad)
		}
	}
}

// A keyframe request's subject names its room; no other subject, and no invalid room, is taken for one.
func TestKeyframeRequestsAndNoticesNameTheirRoom(t *testing.T) {
	for _, c := range []struct {
		kind    string
		subject func(string) string
		room    func(string) (string, bool)
		all     string
	}{{"sync", wire.SyncSubject, wire.SyncRoom, wire.AllSync}, {"notice", wire.NoticeSubject, wire.NoticeRoom, wire.AllNotices}} {
		if room, ok := c.room(c.subject("room-7")); !ok || room != "room-7" {
			t.Fatalf("%s: room of %s = %q, %v", c.kind, c.subject("room-7"), room, ok)
		}
		if !subjectMatches(c.all, c.subject("room-7")) {
			t.Errorf("%s does not match %s", c.all, c.subject("room-7"))
		}
		for _, s := range []string{"game.room-7.tick", "game..", "game.Room.", "game.a.b.", "tickmesh.room-7.", "game.room-7.x.", ""} {
			s += c.kind
			if room, ok := c.room(s); ok {
				t.Errorf("%s: room of %q = %q, want none", c.kind, s, room)
			}
		}
	}
}

func TestStoredPositionReadsTheRepublishHeaders(t *testing.T) {
	h := func(seq, prev string) nats.Header {
		out := nats.Header{}
		if seq != "" {
			out.Set(jetstream.SequenceHeader, seq)
		}
		if prev != "" {
			out.Set(jetstream.LastSequenceHeader, prev)
		}
		return out
	}
	for _, c := range []struct {
		h         nats.Header
		seq, prev uint64
	}{
		{h("7", "3"), 7, 3},
		{h("1", "0"), 1, 0}, // the room's first message, or all before it purged
	} {
		seq, prev, err := wire.StoredPosition(c.h)
		if err != nil || seq != c.seq || prev != c.prev {
			t.Errorf("StoredPosition(%v) = %d, %d, %v; want %d, %d", c.h, seq, prev, err, c.seq, c.prev)
		}
	}
	for _, bad := range []nats.Header{h("", ""), h("7", ""), h("x", "1"), h("0", "0"), h("7", "7"), h("7", "9"), h("7", "-1")} {
		if _, _, err := wire.StoredPosition(bad); !errors.Is(err, wire.ErrBadStored) {
			t.Errorf("StoredPosition(%v): err %v, want ErrBadStored", bad, err)
		}
	}
}

func TestInputsStreamRepublishesAStoredInputOnItsRoomsStoredSubject(t *testing.T) {
	rp := wire.InputsConfig().RePublish
	if rp == nil || rp.Source != wire.AllInputs || rp.HeadersOnly {
		t.Fatalf("republish %+v: want every input with its data", rp)
	}
	// The destination's one wildcard token is the room: what a server makes of InputSubject("a").
	if got := strings.Replace(rp.Destination, "{{wildcard(1)}}", "a", 1); got != wire.StoredSubject("a") {
		t.Errorf("republish of %s goes to %s, want %s", wire.InputSubject("a"), got, wire.StoredSubject("a"))
	}
	if subjectMatches(wire.AllInputs, wire.StoredSubject("a")) {
		t.Errorf("%s captures its own republish", wire.AllInputs)
	}
}
