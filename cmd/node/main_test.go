package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildNode builds the real binary once per test run.
func buildNode(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tickmesh-node")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestBinaryRejectsBadSettingsWithExitCode2AndOneLine(t *testing.T) {
	bin := buildNode(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	readonly := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(readonly, 0o500); err != nil {
		t.Fatal(err)
	}
	base := func() []string {
		return []string{"-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-nats", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"-data", filepath.Join(t.TempDir(), "d")}
	}
	cases := []struct {
		name    string
		args    []string
		env     []string
		setting string
	}{
		{"unknown flag", []string{"-nope"}, nil, "-nope"},
		{"unparsable route", append(base(), "-cluster", "127.0.0.1:0", "-routes", "not a route"), nil, "-routes"},
		{"http port in use", append(base(), "-http", busy.Addr().String()), nil, "-http"},
		{"nats port in use", append(base(), "-nats", busy.Addr().String()), nil, "-nats"},
		{"data dir not writable", append(base(), "-data", filepath.Join(readonly, "x")), nil, "-data"},
		{"tls file missing", append(base(), "-cluster", "127.0.0.1:0"), []string{"CLUSTER_TLS_CERT=/missing/cert.pem", "CLUSTER_TLS_KEY=/missing/key.pem"}, "CLUSTER_TLS_CERT"},
		{"unknown game", append(base(), "-games", "*=chess"), nil, "-games"},
	}
	if os.Geteuid() == 0 {
		// root writes anywhere: a file where the data directory should be is still not a writable directory.
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		cases[4].args = append(base(), "-data", filepath.Join(f, "x"))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(os.Environ(), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want code 2; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "tickmesh: configuration: "+tc.setting+":") {
				t.Fatalf("last line %q does not name %s", last, tc.setting)
			}
			if strings.Contains(stderr.String(), "goroutine ") || strings.Contains(stderr.String(), "panic") {
				t.Fatalf("stack trace in output:\n%s", stderr.String())
			}
		})
	}
}

func TestBinaryStopsCleanlyOnSIGTERMAndAtOnceOnASecondSignal(t *testing.T) {
	bin := buildNode(t)
	start := func() (*exec.Cmd, string, *bytes.Buffer) {
		port := freePort(t)
		cmd := exec.Command(bin, "-name", "solo", "-http", fmt.Sprintf("127.0.0.1:%d", port),
			"-nats", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-data", t.TempDir())
		var out bytes.Buffer
		cmd.Stderr = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				t.Fatalf("not ready:\n%s", out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		return cmd, url, &out
	}

	cmd, _, out := start()
	begin := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, out.String())
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Fatalf("shutdown took %v, want under 10 s", took)
	}

	cmd, _, out = start()
	cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(50 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		if err == nil {
			t.Logf("process finished its graceful shutdown before the second signal arrived")
			return
		}
		t.Fatalf("second signal: %v\n%s", err, out.String())
	}
}
