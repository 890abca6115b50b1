package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StopGrace is how long a process gets between SIGTERM and SIGKILL: a node drains its sockets and hands its
// rooms over in that time.
const StopGrace = 10 * time.Second

// PIDFile names a process that another invocation started (cmd/localcluster's `up` and `start` write them, `kill`
// and `down` read them), and how to recognise it: a pid file counts only while its process is alive and still
// the one started (its command line has Marker as a whole argument), so that a stale file never makes a command
// signal an unrelated process.
type PIDFile struct {
	Name   string
	Path   string
	Marker string // a whole argument of the process's command line, such as its data directory
}

// WritePID records pid in file, atomically.
func WritePID(file string, pid int) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// ReadPID reads a pid file; a missing file is fs.ErrNotExist.
func ReadPID(file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: not a pid: %q", file, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// Running returns the recorded pid and whether that process is alive and still the one recorded.
func (r PIDFile) Running() (int, bool) {
	pid, err := ReadPID(r.Path)
	if err != nil {
		return 0, false
	}
	return pid, Alive(pid, r.Marker)
}

// Remove deletes the pid file; a missing one is no error.
func (r PIDFile) Remove() error {
	if err := os.Remove(r.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Alive reports whether pid is a live process (not a zombie) whose command line has marker as a whole word.
// Without /proc (not Linux) it can only check that the pid exists.
func Alive(pid int, marker string) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		if _, serr := os.Stat("/proc/self/cmdline"); serr != nil {
			return true // no procfs
		}
		return false
	}
	return CmdlineHas(cmdline, marker)
}

// CmdlineHas reports whether a /proc/<pid>/cmdline (arguments separated by NUL; or one string with spaces when
// the process rewrote its title, as nginx does) has marker as a whole word.
func CmdlineHas(cmdline []byte, marker string) bool {
	if marker == "" || len(cmdline) == 0 {
		return false
	}
	s := " " + strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ") + " "
	return strings.Contains(s, " "+marker+" ")
}

// SignalGroup sends sig to pid's process group (every process the harness starts leads its own, so nginx's
// workers are included), or to pid alone when it leads no group.
func SignalGroup(pid int, sig syscall.Signal) error {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		return syscall.Kill(-pid, sig)
	}
	return syscall.Kill(pid, sig)
}

// target is a process being stopped: its group is signalled by pid, gone reports that it has exited.
type target struct {
	name string
	pid  int
	gone func() bool
}

// stopTargets sends SIGTERM (and SIGCONT, so that a frozen process can act on it) to every target, SIGKILLs those
// still there after grace or as soon as ctx ends, and waits 5 s more; it returns those that survived.
func stopTargets(ctx context.Context, ts []target, grace time.Duration, out io.Writer) []target {
	for _, t := range ts {
		fmt.Fprintf(out, "stopping %s (pid %d)\n", t.name, t.pid)
		if err := SignalGroup(t.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(out, "  %s: SIGTERM: %v\n", t.name, err)
		}
		_ = SignalGroup(t.pid, syscall.SIGCONT)
	}
	left := waitGone(ctx, ts, grace)
	if len(left) == 0 {
		return nil
	}
	for _, t := range left {
		fmt.Fprintf(out, "%s (pid %d) still running: SIGKILL\n", t.name, t.pid)
		_ = SignalGroup(t.pid, syscall.SIGKILL)
	}
	return waitGone(context.Background(), left, 5*time.Second)
}

// waitGone polls until every target is gone, ctx ends or timeout passes; it returns those still there.
func waitGone(ctx context.Context, ts []target, timeout time.Duration) []target {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var left []target
		for _, t := range ts {
			if !t.gone() {
				left = append(left, t)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		select {
		case <-ctx.Done():
			return left
		case <-tick.C:
		}
	}
}

// StopPIDFiles stops the processes of recs: SIGTERM, and SIGKILL for those still alive after grace or as soon as
// ctx ends. It removes the pid files of the processes that are gone (and of stale ones) and returns an error
// naming any that survived.
func StopPIDFiles(ctx context.Context, recs []PIDFile, grace time.Duration, out io.Writer) error {
	var ts []target
	var files []PIDFile
	for _, r := range recs {
		pid, ok := r.Running()
		if !ok {
			_ = r.Remove()
			continue
		}
		ts = append(ts, target{name: r.Name, pid: pid, gone: func() bool { return !Alive(pid, r.Marker) }})
		files = append(files, r)
	}
	left := stopTargets(ctx, ts, grace, out)
	var stuck []string
	for i, t := range ts {
		if t.gone() {
			_ = files[i].Remove()
		}
	}
	for _, t := range left {
		stuck = append(stuck, fmt.Sprintf("%s (pid %d)", t.name, t.pid))
	}
	if len(stuck) > 0 {
		return fmt.Errorf("still running after SIGKILL: %s", strings.Join(stuck, ", "))
	}
	return nil
}

// WaitPIDGone polls until pid (recognised by marker) is gone, or timeout passes or ctx ends; it reports whether it
// is gone.
func WaitPIDGone(ctx context.Context, pid int, marker string, timeout time.Duration) bool {
	t := target{pid: pid, gone: func() bool { return !Alive(pid, marker) }}
	return len(waitGone(ctx, []target{t}, timeout)) == 0
}
