package wire_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/wire"
)

func bundleOf(ts ...wire.BundledTick) []byte {
	b := wire.NewBundle(nil)
	for i := range ts {
		b = wire.AppendBundledTick(b, &ts[i])
	}
	return b
}

func readAll(t *testing.T, b []byte) ([]wire.BundledTick, error) {
	t.Helper()
	var out []wire.BundledTick
	err := wire.ReadBundle(b, func(bt *wire.BundledTick) {
		c := *bt
		c.Data = bytes.Clone(bt.Data)
		out = append(out, c)
	})
	return out, err
}

// A bundle gives back every tick put in it, in order, with every field: rooms interleaved, a keyframe after a
// delta, Tm-Applied, and the largest counters.
func TestABundleGivesBackItsTicksInOrder(t *testing.T) {
	in := []wire.BundledTick{
		{Room: "a", Epoch: 1, Seq: 0, Data: []byte{1}},
		{Room: "room-2", Epoch: 7, Seq: 42, Time: 1_765_000_000_000_000, KeyAt: 2, Applied: "p1=5,p2=9", Data: []byte{1, 2, 3, 4}},
		{Room: "a", Epoch: wire.MaxCounter, Seq: wire.MaxCounter, Time: 3, Data: bytes.Repeat([]byte{9}, 300)},
	}
	out, err := readAll(t, bundleOf(in...))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("%d ticks back, want %d", len(out), len(in))
	}
	for i := range in {
		a, b := in[i], out[i]
		if a.Room != b.Room || a.Epoch != b.Epoch || a.Seq != b.Seq || a.Time != b.Time || a.KeyAt != b.KeyAt || a.Applied != b.Applied || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("tick %d: got %+v, want %+v", i, b, a)
		}
	}
	first, key := out[1].Frames()
	if !bytes.Equal(first, []byte{1, 2}) || !bytes.Equal(key, []byte{3, 4}) {
		t.Fatalf("frames %v + %v", first, key)
	}
	if first, key := out[0].Frames(); !bytes.Equal(first, []byte{1}) || key != nil {
		t.Fatalf("frames of a tick without a keyframe after it: %v + %v", first, key)
	}
	if n, err := readAll(t, wire.NewBundle(nil)); err != nil || len(n) != 0 {
		t.Fatalf("an empty bundle: %v, %v", n, err)
	}
}

// A bundle that is not one is ErrBadBundle, after the ticks before the bad entry: another version, a truncated
// entry, a bad room name, counters out of range, a keyframe offset outside the data, no data.
func TestABadBundleIsRefusedAfterItsGoodTicks(t *testing.T) {
	good := wire.BundledTick{Room: "ok", Epoch: 1, Seq: 1, Data: []byte{1, 2}}
	entry := func(bt wire.BundledTick) []byte { return wire.AppendBundledTick(nil, &bt) }
	raw := func(room string, epoch, seq uint64) []byte {
		b := binary.AppendUvarint(nil, uint64(len(room)))
		b = append(b, room...)
		b = binary.AppendUvarint(b, epoch)
		b = binary.AppendUvarint(b, seq)
		return append(b, 0, 0, 0, 1, 7) // time, keyAt, applied, one byte of data
	}
	full := entry(good)
	cases := map[string][]byte{
		"truncated":         full[:len(full)-1],
		"a length too long": append(binary.AppendUvarint(nil, 1000), "ok"...),
		"a bad room":        entry(wire.BundledTick{Room: "Bad.Room", Epoch: 1, Data: []byte{1}}),
		"a long room":       entry(wire.BundledTick{Room: strings.Repeat("a", 33), Epoch: 1, Data: []byte{1}}),
		"epoch 0":           raw("ok", 0, 1),
		"epoch too large":   raw("ok", wire.MaxCounter+1, 1),
		"seq too large":     raw("ok", 1, wire.MaxCounter+1),
		"key outside":       entry(wire.BundledTick{Room: "ok", Epoch: 1, KeyAt: 2, Data: []byte{1, 2}}),
		"no data":           entry(wire.BundledTick{Room: "ok", Epoch: 1}),
	}
	for name, bad := range cases {
		b := append(bundleOf(good), bad...)
		out, err := readAll(t, b)
		if !errors.Is(err, wire.ErrBadBundle) {
			t.Errorf("%s: error %v, want ErrBadBundle", name, err)
		}
		if len(out) != 1 || out[0].Room != "ok" {
			t.Errorf("%s: %d ticks before the bad entry, want the good one", name, len(out))
		}
	}
	for _, b := range [][]byte{nil, {}, {2, 0}} {
		if _, err := readAll(t, b); !errors.Is(err, wire.ErrBadBundle) {
			t.Errorf("bundle %v: error %v, want ErrBadBundle", b, err)
		}
	}
}

// Every room is in one shard, the same on every node.
func TestARoomIsAlwaysInTheSameShard(t *testing.T) {
	seen := map[int]bool{}
	for i := range 100 {
		room := "room-" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		s := wire.BundleShard(room)
		if s < 0 || s >= wire.BundleShards || s != wire.BundleShard(room) {
			t.Fatalf("shard %d of %q", s, room)
		}
		seen[s] = true
	}
	if len(seen) != wire.BundleShards {
		t.Fatalf("100 rooms in shards %v, want all %d", seen, wire.BundleShards)
	}
	if got := wire.BundleSubject(1, "n2"); got != "tickmesh.bundle.1.n2" || wire.AllBundles(1) != "tickmesh.bundle.1.*" {
		t.Fatalf("subjects %q, %q", got, wire.AllBundles(1))
	}
}

// ReadBundle never panics, and whatever it takes is what a bundle of those ticks encodes back to.
func FuzzReadBundle(f *testing.F) {
	f.Add(bundleOf(wire.BundledTick{Room: "a", Epoch: 1, Seq: 2, KeyAt: 1, Applied: "p=1", Data: []byte{1, 2}}))
	f.Add([]byte{1, 1, 'a', 1, 1, 0, 0, 0, 1, 0})
	f.Add([]byte{1, 200, 200, 200})
	f.Fuzz(func(t *testing.T, b []byte) {
		var got []wire.BundledTick
		err := wire.ReadBundle(b, func(bt *wire.BundledTick) {
			c := *bt
			c.Data = bytes.Clone(bt.Data)
			got = append(got, c)
		})
		if err == nil && len(b) > 0 {
			// Every entry was canonical or not: re-encoding gives a bundle that reads back the same ticks.
			again, err := readAll(t, bundleOf(got...))
			if err != nil || len(again) != len(got) {
				t.Fatalf("re-encoded: %v, %d ticks of %d", err, len(again), len(got))
			}
		}
	})
}
