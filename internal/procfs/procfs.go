// Package procfs reads what the tools need from Linux's /proc: a process's state, CPU time and memory and the
// members of its process group, the cores' busy time, the load average and the CPU model. Without /proc its
// functions return errors or the zero values they document. It owns no goroutines.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ClockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux platform Go
// supports (the kernel exports it fixed, whatever CONFIG_HZ is).
const ClockTicks = 100

// Sample is a process's CPU time and resident memory at one moment.
type Sample struct {
	At       time.Time
	CPUTicks uint64 // utime + stime, in clock ticks
	RSSKB    uint64
}

// Process reads /proc/<pid>/stat and /proc/<pid>/status (Linux only).
func Process(pid int) (Sample, error) {
	s := Sample{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.CPUTicks, err = ParseStatCPU(stat); err != nil {
		return s, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.RSSKB, err = ParseStatusRSS(status)
	return s, err
}

// ParseStatCPU returns utime + stime (fields 14 and 15) of a /proc/<pid>/stat line. The command name (field 2)
// is in parentheses and may hold spaces and parentheses, so fields are counted after its last ')'.
func ParseStatCPU(stat []byte) (uint64, error) {
	f, ok := statFields(stat)
	if !ok {
		return 0, errors.New("proc stat: no command name")
	}
	if len(f) < 13 {
		return 0, errors.New("proc stat: too few fields")
	}
	ut, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	st, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("proc stat: %w", err)
	}
	return ut + st, nil
}

// ParseStatusRSS returns VmRSS in kB from /proc/<pid>/status.
func ParseStatusRSS(status []byte) (uint64, error) {
	for line := range bytes.SplitSeq(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 1 {
			break
		}
		return strconv.ParseUint(string(f[0]), 10, 64)
	}
	return 0, errors.New("proc status: no VmRSS")
}

// CoreTimes is one core's time from /proc/stat, in clock ticks: all of it, and the idle part (idle + iowait).
type CoreTimes struct {
	Total, Idle uint64
}

// Cores reads every core's times from /proc/stat (Linux only).
func Cores() ([]CoreTimes, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return ParseCores(stat)
}

// ParseCores returns the times of the lines cpu0, cpu1, … of /proc/stat, in the order of the lines. Their
// fields are user nice system idle iowait irq softirq steal guest guest_nice; guest time is already counted in
// user, so only the first eight are summed.
func ParseCores(stat []byte) ([]CoreTimes, error) {
	var cores []CoreTimes
	for line := range bytes.SplitSeq(stat, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 6 || !bytes.HasPrefix(f[0], []byte("cpu")) || len(f[0]) == 3 {
			continue
		}
		var t CoreTimes
		for i := 1; i < len(f) && i <= 8; i++ {
			v, err := strconv.ParseUint(string(f[i]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("proc stat %s: %w", f[0], err)
			}
			t.Total += v
			if i == 4 || i == 5 {
				t.Idle += v
			}
		}
		cores = append(cores, t)
	}
	if len(cores) == 0 {
		return nil, errors.New("proc stat: no cpuN lines")
	}
	return cores, nil
}

// CoreBusy is the busy fraction of each core between two samples (nil if they do not match).
func CoreBusy(start, end []CoreTimes) []float64 {
	if len(start) != len(end) {
		return nil
	}
	busy := make([]float64, len(start))
	for i := range start {
		total := float64(end[i].Total) - float64(start[i].Total)
		idle := float64(end[i].Idle) - float64(start[i].Idle)
		if total > 0 {
			busy[i] = max(0, min(1, 1-idle/total))
		}
	}
	return busy
}

// State is the state letter of /proc/<pid>/stat ('R', 'S', 'T' for stopped, 'Z'...), or 0 if unknown.
func State(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	return ParseStatState(b)
}

// ParseStatState reads the state field of /proc/<pid>/stat: "pid (comm) S ...", where comm may hold spaces and
// parentheses.
func ParseStatState(stat []byte) byte {
	f, _ := statFields(stat)
	if len(f) < 1 {
		return 0
	}
	return f[0][0]
}

// Parent is the parent process id of pid (field 4 of /proc/<pid>/stat), or 0 if unknown.
func Parent(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	return ParseStatParent(b)
}

// ParseStatParent reads the parent pid field of /proc/<pid>/stat, counted after the command name's last ')'.
func ParseStatParent(stat []byte) int {
	f, _ := statFields(stat)
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(string(f[1]))
	return ppid
}

// statFields splits a /proc/<pid>/stat line into its fields from field 3 (state) on: "pid (comm) S ppid pgrp
// ...", counted after the command name's last ')', since the name may hold spaces and parentheses. ok is false
// when the line has no command name.
func statFields(stat []byte) (f [][]byte, ok bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, false
	}
	return bytes.Fields(stat[i+1:]), true
}

// LiveInGroup lists the processes of group pgid that are not zombies.
func LiveInGroup(pgid int) ([]int, error) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	if len(stats) == 0 {
		return nil, errors.New("no /proc: cannot list process groups")
	}
	var live []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // gone meanwhile
		}
		fields, _ := statFields(b) // state ppid pgrp ...
		if len(fields) < 3 || string(fields[0]) == "Z" || string(fields[2]) != strconv.Itoa(pgid) {
			continue
		}
		pid, _ := strconv.Atoi(strings.Split(f, "/")[2])
		live = append(live, pid)
	}
	return live, nil
}

// LoadAvg is the 1-minute load average, or -1 without /proc/loadavg.
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	var v float64
	if _, err := fmt.Sscan(string(b), &v); err != nil {
		return -1
	}
	return v
}

// CPUModel is the model name of the first CPU in /proc/cpuinfo, or "unknown".
func CPUModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
