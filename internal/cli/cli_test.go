package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"testing"
)

func TestReportExitCodes(t *testing.T) {
	var out bytes.Buffer
	if code := report(&out, "tool", " (see -h)", fmt.Errorf("parse: %w", Usagef("-n %d: too small", 0))); code != 2 ||
		out.String() != "tool: parse: -n 0: too small (see -h)\n" {
		t.Errorf("usage error: %d %q", code, out.String())
	}
	out.Reset()
	if code := report(&out, "tool", " (see -h)", errors.New("port taken")); code != 1 || out.String() != "tool: port taken\n" {
		t.Errorf("error: %d %q", code, out.String())
	}
	out.Reset()
	if code := report(&out, "tool", "", nil); code != 0 || out.Len() != 0 {
		t.Errorf("success: %d %q", code, out.String())
	}
}

func TestParse(t *testing.T) {
	fs := flag.NewFlagSet("tool", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	n := fs.Int("n", 1, "")
	if err := Parse(fs, []string{"-n", "3"}); err != nil || *n != 3 {
		t.Fatalf("Parse: %v, n %d", err, *n)
	}
	if err := Parse(fs, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	var ue *UsageError
	for _, args := range [][]string{{"-x"}, {"-n", "y"}, {"extra"}} {
		if err := Parse(fs, args); !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
	if err := Parse(fs, []string{"-n", "1", "extra"}); err == nil || err.Error() != `unexpected argument "extra"` {
		t.Errorf("positional: %v", err)
	}
}

func TestCommandLineQuotes(t *testing.T) {
	got := CommandLine("failbench", []string{"-bin", "/tmp/my node", "-out", "x.md", ""})
	if got != `go run ./cmd/failbench -bin "/tmp/my node" -out x.md ""` {
		t.Errorf("CommandLine = %s", got)
	}
}
