package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/gateway"
	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/room"
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

// secretEnv is a production environment for a node: drawn credentials.
func secretEnv(t *testing.T) []string {
	t.Helper()
	s, err := config.NewSecrets(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return s.Env()
}

func TestBinaryRejectsBadSettingsWithExitCode2AndOneLine(t *testing.T) {
	bin := buildNode(t)
	certs := t.TempDir()
	cert, key := filepath.Join(certs, "cert.pem"), filepath.Join(certs, "key.pem")
	for _, f := range []string{cert, key} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
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
			"-admin-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-data", filepath.Join(t.TempDir(), "d")}
	}
	secrets := secretEnv(t)
	without := func(keys ...string) []string {
		var out []string
		for _, kv := range secrets {
			k, _, _ := strings.Cut(kv, "=")
			if !slices.Contains(keys, k) {
				out = append(out, kv)
			}
		}
		return out
	}
	with := func(extra ...string) []string { return append(slices.Clone(secrets), extra...) }
	cases := []struct {
		name    string
		args    []string
		env     []string
		setting string
		problem string
	}{
		{"unknown flag", []string{"-nope"}, secrets, "-nope", "unknown flag"},
		{"unparsable route", append(base(), "-cluster", "127.0.0.1:0", "-routes", "not a route"), secrets, "-routes", "invalid character"},
		{"http port in use", append(base(), "-http", busy.Addr().String()), secrets, "-http", "address already in use"},
		{"admin port in use", append(base(), "-admin-http", busy.Addr().String()), secrets, "-admin-http", "address already in use"},
		{"nats port in use", append(base(), "-nats", busy.Addr().String()), secrets, "-nats", "address already in use"},
		{"data dir not writable", append(base(), "-data", filepath.Join(readonly, "x")), secrets, "-data", ""},
		{"tls file missing", append(base(), "-cluster", "127.0.0.1:0"), with("CLUSTER_TLS_CERT=/missing/cert.pem", "CLUSTER_TLS_KEY=/missing/key.pem", "CLUSTER_TLS_CA=/missing/ca.pem"), "CLUSTER_TLS_CERT", "no such file"},
		{"route tls without a CA", append(base(), "-cluster", "127.0.0.1:0"), with("CLUSTER_TLS_CERT="+cert, "CLUSTER_TLS_KEY="+key), "CLUSTER_TLS_CA", "verify peers"},
		{"no session secret", base(), without("SESSION_SECRET"), "SESSION_SECRET", "not set"},
		{"placeholder session secret", base(), with("SESSION_SECRET=replace-with-at-least-32-random-bytes-of-your-own"), "SESSION_SECRET", "placeholder"},
		{"short session secret", base(), with("SESSION_SECRET=Zq81-only-twenty-bytes"), "SESSION_SECRET", "at least 32 bytes"},
		{"routes without credentials", append(base(), "-cluster", "127.0.0.1:0"), without("CLUSTER_USER", "CLUSTER_PASSWORD"), "CLUSTER_PASSWORD", "needs route credentials"},
		{"seed routes without credentials", append(base(), "-cluster", "127.0.0.1:0", "-routes", "127.0.0.1:1"), without("CLUSTER_USER", "CLUSTER_PASSWORD"), "CLUSTER_PASSWORD", "-dev-insecure"},
		{"client user is gone", base(), with("CLIENT_USER=operator"), "CLIENT_USER", "ADMIN_USER"},
		{"placeholder sys password", base(), with("SYS_PASSWORD=replace-with-a-random-sys-password"), "SYS_PASSWORD", "placeholder"},
		{"unknown game", append(base(), "-games", "*=chess"), secrets, "-games", "no such game"},
	}
	if os.Geteuid() == 0 {
		// root writes anywhere: a file where the data directory should be is still not a writable directory.
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		cases[5].args = append(base(), "-data", filepath.Join(f, "x"))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(baseEnv(), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 {
				t.Fatalf("exit: %v, want code 2; stderr:\n%s", err, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "tickmesh: configuration: "+tc.setting+":") || !strings.Contains(last, tc.problem) {
				t.Fatalf("last line %q does not name %s with %q", last, tc.setting, tc.problem)
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
			"-nats", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-admin-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-data", t.TempDir())
		cmd.Env = append(baseEnv(), secretEnv(t)...)
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

// baseEnv is this process's environment without any of the node's settings, so that a developer's shell
// cannot change what a test asserts.
func baseEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PATH" || k == "HOME" || k == "TMPDIR" || strings.HasPrefix(k, "GO") {
			out = append(out, kv)
		}
	}
	return out
}

func TestTheDevelopmentSwitchStartsWithALoudWarningOfWhatItOpens(t *testing.T) {
	bin := buildNode(t)
	cmd := exec.Command(bin, "-name", "dev", "-dev-insecure", "-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-admin-http", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-nats", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-cluster", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-data", t.TempDir())
	cmd.Env = baseEnv() // no credentials at all
	var out testingutil.Output
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	warned := testingutil.Eventually(20*time.Second, 250*time.Millisecond, func() bool {
		return strings.Count(out.String(), "INSECURE DEVELOPMENT MODE (-dev-insecure)") == 2
	})
	if !warned {
		t.Fatalf("no warning for each of routes and session key:\n%s", out.String())
	}
	for _, what := range []string{"accept ANY peer without credentials", "PUBLIC development key"} {
		if !strings.Contains(out.String(), what) {
			t.Errorf("the warning does not say %q:\n%s", what, out.String())
		}
	}
	select {
	case err := <-done:
		done <- err
		t.Fatalf("the node exited under the development switch: %v\n%s", err, out.String())
	default:
	}
}

// A node built from an empty command line (settings only in the environment) runs with the packages' defaults:
// changing gateway.DefaultConfig().MaxConns, for example, changes every node's limit.
func TestAnEmptyCommandLineStartsANodeWithThePackagesDefaults(t *testing.T) {
	env := map[string]string{
		"HTTP_ADDR": "127.0.0.1:0", "ADMIN_HTTP_ADDR": "127.0.0.1:0", "NATS_ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(),
	}
	for _, kv := range secretEnv(t) {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	cfg, err := config.Load(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.New(t.Context(), cfg.Node, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	got := n.Config()
	if g := gateway.DefaultConfig(got.Name); got.Gateway.MaxConns != g.MaxConns || got.Gateway.MaxRoomsPerIP != g.MaxRoomsPerIP || got.Gateway.TokenTTL != g.TokenTTL {
		t.Errorf("gateway %+v, want the package's %+v", got.Gateway, g)
	}
	if r := room.DefaultConfig(got.Name); got.Room.TickRate != r.TickRate || got.Room.LeaseTTL != r.LeaseTTL || got.Room.Sim != r.Sim {
		t.Errorf("room %+v, want the package's %+v", got.Room, r)
	}
	if m := mesh.DefaultConfig(); got.Mesh.ClusterName != m.ClusterName || got.Mesh.ReadyWait != m.ReadyWait {
		t.Errorf("mesh %+v, want the package's %+v", got.Mesh, m)
	}
}
