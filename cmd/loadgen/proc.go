package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux platform Go
// supports (the kernel exports it fixed, whatever CONFIG_HZ is).
const clockTicks = 100

// procSample is a process's CPU time and resident memory at one moment.
type procSample struct {
	at       time.Time
	cpuTicks uint64 // utime + stime, in clock ticks
	rssKB    uint64
}

// sampleProc reads /proc/<pid>/stat and /proc/<pid>/status (Linux only).
func sampleProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	if s.cpuTicks, err = parseStatCPU(stat); err != nil {
		return s, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.rssKB, err = parseStatusRSS(status)
	return s, err
}

// parseStatCPU returns utime + stime (fields 14 and 15) of a /proc/<pid>/stat line. The command name (field 2)
// is in parentheses and may hold spaces and parentheses, so fields are counted after its last ')'.
func parseStatCPU(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("proc stat: no command name")
	}
	f := bytes.Fields(stat[i+1:]) // f[0] is field 3 (state)
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

// parseStatusRSS returns VmRSS in kB from /proc/<pid>/status.
func parseStatusRSS(status []byte) (uint64, error) {
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

// cpuTimes is one core's time from /proc/stat, in clock ticks: all of it, and the idle part (idle + iowait).
type cpuTimes struct {
	total, idle uint64
}

// sampleCores reads every core's times from /proc/stat (Linux only).
func sampleCores() ([]cpuTimes, error) {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseProcStat(stat)
}

// parseProcStat returns the times of the lines cpu0, cpu1, … of /proc/stat, in the order of the lines. Their
// fields are user nice system idle iowait irq softirq steal guest guest_nice; guest time is already counted in
// user, so only the first eight are summed.
func parseProcStat(stat []byte) ([]cpuTimes, error) {
	var cores []cpuTimes
	for line := range bytes.SplitSeq(stat, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 6 || !bytes.HasPrefix(f[0], []byte("cpu")) || len(f[0]) == 3 {
			continue
		}
		var t cpuTimes
		for i := 1; i < len(f) && i <= 8; i++ {
			v, err := strconv.ParseUint(string(f[i]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("proc stat %s: %w", f[0], err)
			}
			t.total += v
			if i == 4 || i == 5 {
				t.idle += v
			}
		}
		cores = append(cores, t)
	}
	if len(cores) == 0 {
		return nil, errors.New("proc stat: no cpuN lines")
	}
	return cores, nil
}

// coreBusy is the busy fraction of each core between two samples (nil if they do not match).
func coreBusy(start, end []cpuTimes) []float64 {
	if len(start) != len(end) {
		return nil
	}
	busy := make([]float64, len(start))
	for i := range start {
		total := float64(end[i].total) - float64(start[i].total)
		idle := float64(end[i].idle) - float64(start[i].idle)
		if total > 0 {
			busy[i] = max(0, min(1, 1-idle/total))
		}
	}
	return busy
}
