// Package proctest holds the helpers of the tests that run real processes (the node binary, the local cluster
// launcher, nginx): building a package of this module, finding free loopback ports, collecting a process's
// output while it runs, and polling. It starts no goroutines.
package proctest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Output collects a process's stdout and stderr for a test to read while the process runs.
type Output struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

// String is everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// ModuleRoot is the directory of this module's go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == "/dev/null" {
		t.Fatalf("go env GOMOD: %q, %v", gomod, err)
	}
	return filepath.Dir(gomod)
}

// GoBuild builds pkg (a path like ./cmd/node, relative to the module root) into the file out, with extra
// go build flags before the package.
func GoBuild(t testing.TB, out, pkg string, flags ...string) {
	t.Helper()
	args := append(append([]string{"build", "-o", out}, flags...), pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = ModuleRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// FreePortBlock returns the first of n consecutive loopback ports that are free now, below Linux's ephemeral
// range (32768-60999 by default) so that outgoing connections cannot take them before the processes listen.
func FreePortBlock(t testing.TB, n int) int {
	t.Helper()
	for range 200 {
		base := 10000 + rand.IntN(22000-n)
		free := true
		for p := base; p < base+n && free; p++ {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no block of %d free loopback ports", n)
	return 0
}

// HTTPStatus is the status code of a GET of url, 0 when there is no answer within 2 s.
func HTTPStatus(url string) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Eventually polls cond every 250 ms until it holds (true) or timeout passes (false).
func Eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}
