package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/internal/cli"
)

func TestParseFlags(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "node")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, out, err := parseFlags([]string{"-bin", bin, "-n", "4", "-faults", "stop-owner, kill-owner", "-reps", "stop-owner=2", "-room", "collect-fb", "-out", "r.md"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Bin != bin || cfg.N != 4 || strings.Join(cfg.Faults, ",") != "stop-owner,kill-owner" || len(cfg.Reps) != 1 ||
		cfg.Reps["stop-owner"] != 2 || cfg.Room != "collect-fb" || out != "r.md" {
		t.Errorf("config %+v, out %q", cfg, out)
	}
	if !strings.HasPrefix(cfg.CommandLine, "go run ./cmd/failbench -bin ") {
		t.Errorf("command line %q", cfg.CommandLine)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}

	for _, args := range [][]string{
		{},
		{"-bin", filepath.Join(t.TempDir(), "missing")},
		{"-bin", bin, "-faults", "kill-everything"},
		{"-bin", bin, "-faults", ","},
		{"-bin", bin, "-reps", "term-owner=x"},
		{"-bin", bin, "-faults", "kill-owner", "-reps", "term-owner=3"},
		{"-bin", bin, "-lease-ttl", "1500ms"},
		{"-bin", bin, "-n", "0"},
		{"-bin", bin, "-room", "no such room!"},
		{"-bin", bin, "extra"},
		{"-bin", bin, "-no-such-flag"},
	} {
		cfg, _, err := parseFlags(args, io.Discard)
		if err == nil {
			err = cfg.Validate()
		}
		var ue *cli.UsageError
		if !errors.As(err, &ue) {
			t.Errorf("parseFlags(%q), Validate = %v, want a usage error", args, err)
		}
	}
}
