package cluster

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/procfs"
)

func TestPIDFiles(t *testing.T) {
	file := filepath.Join(t.TempDir(), "run", "n1.pid")
	if _, err := ReadPID(file); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := WritePID(file, 4242); err != nil {
		t.Fatal(err)
	}
	if pid, err := ReadPID(file); err != nil || pid != 4242 {
		t.Errorf("ReadPID = %d, %v", pid, err)
	}
	for _, bad := range []string{"", "abc", "-3", "0"} {
		if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPID(file); err == nil {
			t.Errorf("pid file %q accepted", bad)
		}
	}
}

func TestCmdlineHas(t *testing.T) {
	args := []byte("/bin/node\x00-data\x00/s/data/n1\x00-name\x00n1\x00")
	if !CmdlineHas(args, "/s/data/n1") {
		t.Error("exact argument not found")
	}
	for _, m := range []string{"/s/data/n", "/s/data", "data/n1", "", "/s/data/n10"} {
		if CmdlineHas(args, m) {
			t.Errorf("%q matched", m)
		}
	}
	if CmdlineHas(nil, "/s/data/n1") {
		t.Error("empty command line (zombie) matched")
	}
	if !CmdlineHas([]byte("nginx: master process nginx -p /s/nginx -c /s/nginx/nginx.conf"), "/s/nginx") {
		t.Error("rewritten title not matched")
	}
}

// startSleeper starts a process in its own group with a recognisable argument and records it.
func startSleeper(t *testing.T, dir, name, shell string) PIDFile {
	t.Helper()
	marker := filepath.Join(dir, "marker-"+name)
	cmd := exec.Command("sh", "-c", shell, marker)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait() // reap
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	r := PIDFile{Name: name, Path: filepath.Join(dir, name+".pid"), Marker: marker}
	if err := WritePID(r.Path, cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStopPIDFiles(t *testing.T) {
	dir := t.TempDir()
	polite := startSleeper(t, dir, "polite", "sleep 60 & wait")
	// Ignores SIGTERM (an ignored signal stays ignored across exec), so needs SIGKILL.
	stubborn := startSleeper(t, dir, "stubborn", `trap "" TERM; sleep 60 & wait`)
	frozen := startSleeper(t, dir, "frozen", "sleep 60 & wait")
	stale := PIDFile{Name: "stale", Path: filepath.Join(dir, "stale.pid"), Marker: filepath.Join(dir, "marker-stale")}
	if err := WritePID(stale.Path, os.Getpid()); err != nil { // alive, but not the process the record means
		t.Fatal(err)
	}
	for _, r := range []PIDFile{polite, stubborn, frozen} {
		if _, ok := r.Running(); !ok {
			t.Fatalf("%s not seen running", r.Name)
		}
	}
	if _, ok := stale.Running(); ok {
		t.Fatal("a pid file naming another process counts as running")
	}
	pid, _ := frozen.Running()
	if err := SignalGroup(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if s := procfs.State(pid); s != 'T' {
		t.Errorf("frozen process is in state %q", s)
	}

	var pgids []int
	for _, r := range []PIDFile{polite, stubborn, frozen} {
		pid, _ := r.Running()
		pgids = append(pgids, pid)
	}
	start := time.Now()
	if err := StopPIDFiles(context.Background(), []PIDFile{polite, stubborn, frozen, stale}, 500*time.Millisecond, io.Discard); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("StopPIDFiles took %v", d)
	}
	for _, r := range []PIDFile{polite, stubborn, frozen, stale} {
		if _, err := os.Stat(r.Path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: pid file left: %v", r.Name, err)
		}
	}
	// The whole groups are gone (the shells' sleep children too).
	for _, pgid := range pgids {
		live, err := procfs.LiveInGroup(pgid)
		if err != nil {
			t.Skip(err)
		}
		if len(live) > 0 {
			t.Errorf("process group %d still has %v", pgid, live)
		}
	}
	if err := syscall.Kill(os.Getpid(), 0); err != nil {
		t.Fatal("StopPIDFiles signalled the test process through a stale pid file")
	}
}
