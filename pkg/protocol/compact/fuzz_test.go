package compact_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
)

// FuzzDecoder feeds streams of frames to a decoder. Whatever the bytes, nothing panics, every refusal is
// ErrMalformed or ErrBase and leaves the state unchanged, and every state a frame makes is one an encoder can
// write: its keyframe decodes to the same state.
//
// go test -run XXX -fuzz FuzzDecoder -fuzzminimizetime 1x ./pkg/protocol/compact: the fuzzer minimizes every
// input that finds new coverage, and with streams of many frames the default minimizing time (60 s each) keeps
// it from fuzzing at all.
func FuzzDecoder(f *testing.F) {
	for seed := range uint64(4) {
		frames, _ := randomFrames(f, seed, 30)
		var stream []byte
		for _, fr := range frames {
			stream = compact.AppendFramed(stream, fr)
		}
		f.Add(stream)
	}
	for _, name := range []string{"arena", "collect"} {
		if data, err := readFixture(name + ".frames"); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var dec, check compact.Decoder
		r := bytes.NewReader(data)
		var buf []byte
		for {
			frame, err := compact.ReadFrame(r, buf)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, compact.ErrFrameTooLarge) {
					t.Fatalf("stream: %v", err)
				}
				return
			}
			buf = frame
			var before []byte
			if dec.Valid() {
				before = compact.AppendKeyframe(nil, dec.State())
			}
			if err := dec.Apply(frame); err != nil {
				if !errors.Is(err, compact.ErrMalformed) && !errors.Is(err, compact.ErrBase) {
					t.Fatalf("refused with %v", err)
				}
				if before != nil && !bytes.Equal(before, compact.AppendKeyframe(nil, dec.State())) {
					t.Fatal("a refused frame changed the state")
				}
				continue
			}
			key := compact.AppendKeyframe(nil, dec.State())
			check.Reset()
			if err := check.Apply(key); err != nil {
				t.Fatalf("the keyframe of a decoded state does not decode: %v", err)
			}
			if !check.State().Equal(dec.State()) {
				t.Fatal("the keyframe of a decoded state decodes to another state")
			}
		}
	})
}

// FuzzFollower: a Follower never panics on any bytes, and refuses with ErrMalformed or ErrBase only.
func FuzzFollower(f *testing.F) {
	for _, name := range []string{"arena", "collect", "wide"} {
		if data, err := readFixture(name + ".frames"); err == nil {
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fol := compact.NewFollower("p0000000000002eef")
		r := bytes.NewReader(data)
		for {
			frame, err := compact.ReadFrame(r, nil)
			if err != nil {
				return
			}
			if err := fol.Apply(frame); err != nil && !errors.Is(err, compact.ErrMalformed) && !errors.Is(err, compact.ErrBase) {
				t.Fatalf("refused with %v", err)
			}
		}
	})
}
