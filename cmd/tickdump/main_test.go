package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
)

const fixtures = "../../pkg/protocol/testdata/fixtures/frames/"

// tickdump turns the golden frame streams of both games into exactly the protocol 1 ticks of their .jsonl.
func TestTickdumpPrintsTheGoldenStreamsAsProtocol1Ticks(t *testing.T) {
	for _, game := range []string{"arena", "collect"} {
		in, err := os.ReadFile(fixtures + game + ".frames")
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(fixtures + game + ".jsonl")
		if err != nil {
			t.Fatal(err)
		}
		var out, errs bytes.Buffer
		if code := run(nil, bytes.NewReader(in), &out, &errs); code != 0 {
			t.Fatalf("%s: exit %d: %s", game, code, errs.String())
		}
		if !bytes.Equal(out.Bytes(), want) {
			t.Fatalf("%s: output differs from %s.jsonl", game, game)
		}
	}
}

// A stream that starts in the middle (a delta first) is read from its first keyframe on; the deltas before it
// are reported and skipped, and the exit code says so. A stream cut inside a frame is an error.
func TestTickdumpSkipsWhatItCannotReadAndSaysSo(t *testing.T) {
	in, err := os.ReadFile(fixtures + "arena.frames")
	if err != nil {
		t.Fatal(err)
	}
	// Drop the first frame (the keyframe): the deltas up to the next keyframe cannot be read.
	first, err := compact.ReadFrame(bytes.NewReader(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	rest := in[4+len(first):]
	var out, errs bytes.Buffer
	if code := run(nil, bytes.NewReader(rest), &out, &errs); code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if !strings.Contains(errs.String(), "base tick was not read") || out.Len() == 0 {
		t.Fatalf("stderr %q, %d bytes out", errs.String(), out.Len())
	}
	errs.Reset()
	if code := run(nil, bytes.NewReader(in[:len(in)-3]), &out, &errs); code != 2 {
		t.Fatalf("a cut stream: exit %d (%s)", code, errs.String())
	}
	if code := run([]string{"extra"}, bytes.NewReader(nil), &out, &errs); code != 2 {
		t.Fatalf("an argument: exit %d", code)
	}
}
