package main

import (
	"bytes"
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

// procRecord is a pid file and how to recognise the process it names.
type procRecord struct {
	Name   string
	File   string
	Marker string // a whole argument of the process's command line (a data or nginx directory of this checkout)
}

// writePid records pid in file, atomically.
func writePid(file string, pid int) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// readPid reads a pid file; a missing file is fs.ErrNotExist.
func readPid(file string) (int, error) {
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

// running returns the recorded pid and whether that process is alive and still ours.
func (r procRecord) running() (int, bool) {
	pid, err := readPid(r.File)
	if err != nil {
		return 0, false
	}
	return pid, alive(pid, r.Marker)
}

// alive reports whether pid is a live process (not a zombie) whose command line has marker as a whole word.
// Without /proc (not Linux) it can only check that the pid exists.
func alive(pid int, marker string) bool {
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
	return cmdlineHas(cmdline, marker)
}

// cmdlineHas reports whether a /proc/<pid>/cmdline (arguments separated by NUL; or one string with spaces
// when the process rewrote its title, as nginx does) has marker as a whole word.
func cmdlineHas(cmdline []byte, marker string) bool {
	if marker == "" || len(cmdline) == 0 {
		return false
	}
	s := " " + strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ") + " "
	return strings.Contains(s, " "+marker+" ")
}

// procState is the state letter of /proc/<pid>/stat ('R', 'S', 'T' for stopped, 'Z'...), or 0 if unknown.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	return parseStatState(b)
}

// parseStatState reads the state field of /proc/<pid>/stat: "pid (comm) S ...", where comm may hold spaces
// and parentheses.
func parseStatState(stat []byte) byte {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}

// signalGroup sends sig to pid's process group (every process here leads its own, so nginx's workers are
// included), or to pid alone when it leads no group.
func signalGroup(pid int, sig syscall.Signal) error {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		return syscall.Kill(-pid, sig)
	}
	return syscall.Kill(pid, sig)
}

// waitGone polls until none of pids is alive, ctx ends or the timeout passes; it returns those still alive.
func waitGone(ctx context.Context, procs map[int]procRecord, timeout time.Duration) map[int]procRecord {
	deadline := time.Now().Add(timeout)
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		left := map[int]procRecord{}
		for pid, r := range procs {
			if alive(pid, r.Marker) {
				left[pid] = r
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		select {
		case <-ctx.Done():
			return left
		case <-t.C:
		}
	}
}

// stopTimeout is how long a process gets between SIGTERM and SIGKILL.
const stopTimeout = 10 * time.Second

// stopAll stops the processes of recs: SIGTERM (and SIGCONT, so that a frozen one can act on it), then SIGKILL
// for those still alive after timeout or as soon as ctx ends. It removes the pid files of the processes that
// are gone (and of stale ones) and returns an error naming any that survived.
func stopAll(ctx context.Context, recs []procRecord, timeout time.Duration, out io.Writer) error {
	procs := map[int]procRecord{}
	for _, r := range recs {
		pid, ok := r.running()
		if !ok {
			removeQuietly(r.File)
			continue
		}
		fmt.Fprintf(out, "stopping %s (pid %d)\n", r.Name, pid)
		if err := signalGroup(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(out, "  %s: SIGTERM: %v\n", r.Name, err)
		}
		_ = signalGroup(pid, syscall.SIGCONT)
		procs[pid] = r
	}
	left := waitGone(ctx, procs, timeout)
	if len(left) > 0 {
		for pid, r := range left {
			fmt.Fprintf(out, "%s (pid %d) still running: SIGKILL\n", r.Name, pid)
			_ = signalGroup(pid, syscall.SIGKILL)
		}
		left = waitGone(context.Background(), left, 5*time.Second)
	}
	var stuck []string
	for pid, r := range procs {
		if _, ok := left[pid]; ok {
			stuck = append(stuck, fmt.Sprintf("%s (pid %d)", r.Name, pid))
			continue
		}
		removeQuietly(r.File)
	}
	if len(stuck) > 0 {
		return fmt.Errorf("still running after SIGKILL: %s", strings.Join(stuck, ", "))
	}
	return nil
}

func removeQuietly(file string) {
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "localcluster: %v\n", err)
	}
}
