package cli

import (
	"bytes"
	"errors"
	"fmt"
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
