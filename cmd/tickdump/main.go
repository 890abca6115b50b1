// Command tickdump reads a stream of protocol 2 frames (keyframes and deltas, docs/PROTOCOL.md), each preceded
// by its length as a 4-byte big-endian integer, on stdin, and prints the tick each frame makes as protocol 1
// JSON, one per line, on stdout:
//
//	tickdump < ticks.frames > ticks.jsonl
//
// Keyframes carry the game's names, so tickdump reads any game's frames without knowing the game. A delta that
// does not follow the tick it was made from (before the first keyframe, after a missing frame) cannot be read:
// it is reported on stderr and skipped until the next keyframe, and so is a malformed frame. The exit code is 0
// when every frame was read, 1 when some were skipped, 2 for a usage mistake or a stream that is cut short.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/protocol/compact"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tickdump", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tickdump < frames   (each frame preceded by its length, 4 bytes big-endian)")
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	in := bufio.NewReaderSize(stdin, 64<<10)
	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	var dec compact.Decoder
	var tk protocol.Tick
	var buf []byte
	skipped := 0
	for i := 0; ; i++ {
		frame, err := compact.ReadFrame(in, buf)
		switch {
		case errors.Is(err, io.EOF):
			if skipped > 0 {
				fmt.Fprintf(stderr, "tickdump: %d of %d frames skipped\n", skipped, i)
				return 1
			}
			return 0
		case err != nil:
			fmt.Fprintf(stderr, "tickdump: frame %d: %v\n", i, err)
			return 2
		}
		buf = frame
		if err := dec.Apply(frame); err != nil {
			skipped++
			what := "malformed"
			if errors.Is(err, compact.ErrBase) {
				what = "a delta whose base tick was not read (no keyframe yet, or a frame missing)"
			}
			fmt.Fprintf(stderr, "tickdump: frame %d skipped: %s: %v\n", i, what, err)
			continue
		}
		dec.State().Tick(&tk)
		line, err := protocol.Encode(&tk)
		if err != nil {
			fmt.Fprintf(stderr, "tickdump: frame %d: %v\n", i, err)
			return 2
		}
		out.Write(line)
		out.WriteByte('\n')
	}
}
