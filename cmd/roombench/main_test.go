package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tickmesh/tickmesh/internal/cli"
)

func TestFlagsNeedABinaryAndRoomCounts(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "node")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, out, err := parseFlags([]string{"-bin", bin, "-rooms", "10, 100,1000", "-clients", "500", "-out", "r.md"}, io.Discard)
	if err != nil || len(cfg.Rooms) != 3 || cfg.Rooms[2] != 1000 || cfg.Clients != 500 || out != "r.md" ||
		cfg.CommandLine != "go run ./cmd/roombench -bin "+bin+" -rooms \"10, 100,1000\" -clients 500 -out r.md" {
		t.Fatalf("config %+v, out %q, %v", cfg, out, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {"-bin", bin, "-rooms", "10,x"}, {"-bin", bin, "-rooms", "0"}, {"-bin", bin, "-clients", "0"}, {"-bin", bin, "extra"}} {
		cfg, _, err := parseFlags(args, io.Discard)
		if err == nil {
			err = cfg.Validate()
		}
		var ue *cli.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
