// Package scripts holds the shell scripts the Taskfile runs; these tests run the set-up script (setup.sh) and
// the task wrapper (../task) with commands faked on PATH, so that nothing is installed on the machine.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// fakeBin makes a directory of commands: name → shell script body.
func fakeBin(t *testing.T, cmds map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range cmds {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runSetup runs setup.sh in an empty directory with only bin on PATH (the script adds /usr/sbin and /sbin).
func runSetup(t *testing.T, bin, chromium string) (string, int) {
	t.Helper()
	script, err := filepath.Abs("setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", script)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + bin, "HOME=" + cmd.Dir, "TICKMESH_CHROMIUM=" + chromium}
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

var missingLine = regexp.MustCompile(`^  \S+: .+ - get it with: sudo apt-get install [a-z0-9-]+$`)

func TestSetupNamesEachMissingOneWhenItCannotInstall(t *testing.T) {
	calls := filepath.Join(t.TempDir(), "calls")
	bin := fakeBin(t, map[string]string{
		"id":      `echo 1000`,
		"apt-get": `echo "apt-get $*" >> ` + calls + `; exit 99`,
		"nats":    `exit 0`,
	})
	out, code := runSetup(t, bin, "/nonexistent/chromium")
	if code != 1 {
		t.Fatalf("exit %d with chromium missing, want 1:\n%s", code, out)
	}
	if _, err := os.Stat(calls); err == nil {
		t.Fatalf("apt-get ran as a user:\n%s", out)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "  ") {
			lines = append(lines, l)
			if !missingLine.MatchString(l) {
				t.Errorf("line %q does not say what is missing and how to get it", l)
			}
		}
	}
	want := "  /nonexistent/chromium: the browser tests (task test:browser) need it; or set TICKMESH_CHROMIUM to a Chromium binary - get it with: sudo apt-get install chromium"
	if len(lines) == 0 || lines[0] != want {
		t.Fatalf("first missing line %q, want %q:\n%s", strings.Join(lines, "\n"), want, out)
	}

	// Only optional tools missing: named, and the tests go on.
	out, code = runSetup(t, bin, "/bin/sh")
	if code != 0 {
		t.Fatalf("exit %d with only optional tools missing:\n%s", code, out)
	}
	if !strings.Contains(out, "  promtool: ") { // /usr/bin is not on this PATH
		t.Errorf("promtool not named as missing:\n%s", out)
	}
}

func TestSetupInstallsAsRootWithAptGet(t *testing.T) {
	calls := filepath.Join(t.TempDir(), "calls")
	bin := fakeBin(t, map[string]string{
		"id":        `echo 0`,
		"apt-get":   `echo "apt-get $*" >> ` + calls,
		"systemctl": `echo "systemctl $*" >> ` + calls,
		"nats":      `exit 0`,
		"cut":       `exec /usr/bin/cut "$@"`,
	})
	out, code := runSetup(t, bin, "/nonexistent/chromium")
	b, err := os.ReadFile(calls)
	if err != nil {
		t.Fatalf("nothing installed:\n%s", out)
	}
	got := string(b)
	for _, want := range []string{
		"apt-get update -qq\n",
		"apt-get install -y -qq chromium",
		"apt-get install -y -qq --no-install-recommends prometheus\n",
		"systemctl stop nginx\n",
		"systemctl stop prometheus\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in the calls:\n%s", want, got)
		}
	}
	// The fake apt-get installs nothing: what is still missing is named, and chromium fails the set-up.
	if code != 1 || !strings.Contains(out, "still missing after apt-get") {
		t.Errorf("exit %d:\n%s", code, out)
	}
}

// TestTaskWrapper: ./task uses an installed task of its version; otherwise it builds the pinned version with
// go install into .tickmesh/tools/ next to itself, once, and runs that. The wrapper runs from a copy in a
// temporary directory, with go and task faked, so nothing is built here (.ci/run builds it for real: it runs
// ./task on a machine without task).
func TestTaskWrapper(t *testing.T) {
	b, err := os.ReadFile("../task")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^version=v(\d+\.\d+\.\d+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("./task pins no version")
	}
	version := string(m[1])
	root := t.TempDir()
	wrapper := filepath.Join(root, "task")
	if err := os.WriteFile(wrapper, b, 0o755); err != nil {
		t.Fatal(err)
	}
	built := filepath.Join(root, ".tickmesh", "tools", "task-v"+version, "task")
	run := func(bin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(wrapper, args...)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + root}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("./task %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	same := fakeBin(t, map[string]string{"task": `[ "$1" = --version ] && echo "` + version + `" || echo "installed task: $*"`})
	if out := run(same, "up"); !strings.Contains(out, "installed task: up") {
		t.Errorf("an installed task %s was not used: %q", version, out)
	}

	// Another version installed: the pinned one is built (by a fake go that records its arguments), then run.
	goLog := filepath.Join(root, "go.log")
	other := fakeBin(t, map[string]string{
		"task": `[ "$1" = --version ] && echo "3.0.0" || echo "installed task: $*"`,
		"go": `echo "GOBIN=$GOBIN go $*" >> ` + goLog + `
mkdir -p "$GOBIN" && printf '#!/bin/sh\necho "built task: $*"\n' > "$GOBIN/task" && chmod +x "$GOBIN/task"`,
	})
	if out := run(other, "up", "-x"); !strings.Contains(out, "built task: up -x") {
		t.Errorf("with task 3.0.0 installed, ./task did not run the pinned one: %q", out)
	}
	log, err := os.ReadFile(goLog)
	if err != nil {
		t.Fatal(err)
	}
	if want := "GOBIN=" + filepath.Dir(built) + " go install github.com/go-task/task/v3/cmd/task@v" + version + "\n"; string(log) != want {
		t.Errorf("go calls %q, want %q", log, want)
	}
	// Once built, it is not built again.
	run(other, "up")
	if log2, _ := os.ReadFile(goLog); string(log2) != string(log) {
		t.Errorf("built again: %q", log2)
	}

	// The README's install line names the same version.
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range regexp.MustCompile(`go-task/task/v3/cmd/task@v(\d+\.\d+\.\d+)`).FindAllSubmatch(readme, -1) {
		if string(v[1]) != version {
			t.Errorf("README names task %s, ./task pins %s", v[1], version)
		}
	}
}
