package procfs

import (
	"os"
	"testing"
)

func TestProcFilesParse(t *testing.T) {
	stat := []byte("4242 (tm node (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 2000000 3000 ...\n")
	if cpu, err := ParseStatCPU(stat); err != nil || cpu != 325 {
		t.Fatalf("ParseStatCPU = %d, %v; want 325", cpu, err)
	}
	status := []byte("Name:\ttm-node\nVmPeak:\t  900000 kB\nVmRSS:\t   51234 kB\nThreads:\t12\n")
	if rss, err := ParseStatusRSS(status); err != nil || rss != 51234 {
		t.Fatalf("ParseStatusRSS = %d, %v; want 51234", rss, err)
	}
	if _, err := ParseStatusRSS([]byte("Name:\tx\n")); err == nil {
		t.Fatal("no VmRSS parsed")
	}
	// This process, for real.
	s, err := Process(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if s.RSSKB == 0 {
		t.Fatalf("own RSS 0: %+v", s)
	}
}

func TestCoreBusyComesFromTheCpuLinesOfProcStat(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice; guest is inside user already.
	start, err := ParseCores([]byte("cpu  300 0 100 500 100 0 0 0 0 0\ncpu0 100 0 50 300 50 0 0 0 0 0\n" +
		"cpu1 200 0 50 200 50 0 0 0 999 0\nintr 12345\nctxt 99\n"))
	if err != nil || len(start) != 2 {
		t.Fatalf("ParseCores = %v, %v; want two cores", start, err)
	}
	if start[1].Total != 500 || start[1].Idle != 250 {
		t.Fatalf("cpu1 = %+v; want total 500 (guest not counted twice), idle 250", start[1])
	}
	// cpu0: 100 more ticks, 75 of them idle or iowait; cpu1: 100 more, none idle.
	end, err := ParseCores([]byte("cpu0 110 0 65 360 65 0 0 0 0 0\ncpu1 280 0 70 200 50 0 0 0 999 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	busy := CoreBusy(start, end)
	if len(busy) != 2 || busy[0] != 0.25 || busy[1] != 1 {
		t.Fatalf("CoreBusy = %v; want [0.25 1]", busy)
	}
	if CoreBusy(start, end[:1]) != nil {
		t.Fatal("cores that came and went: want no answer")
	}
	// No per-core lines; a field that is no number.
	for _, bad := range []string{"cpu  1 2 3 4 5\nintr 1\n", "cpu0 1 x 3 4 5 6\n"} {
		if _, err := ParseCores([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseStatStateAndParent(t *testing.T) {
	for stat, want := range map[string]byte{
		"123 (tickmesh-node) S 1 123 123 0":   'S',
		"123 (a) (b) T 1 123":                 'T',
		"123 (odd name) with) Z 1":            'Z',
		"garbage":                             0,
		"123 (x)":                             0,
		"7 (nginx: master) R 1 7 7 0 -1 4194": 'R',
	} {
		if got := ParseStatState([]byte(stat)); got != want {
			t.Errorf("%q: state %q, want %q", stat, got, want)
		}
	}
	for stat, want := range map[string]int{
		"123 (tickmesh-node) S 1 123 123 0": 1,
		"123 (odd) name) S 42 123":          42,
		"123 (x) S":                         0,
		"garbage":                           0,
	} {
		if got := ParseStatParent([]byte(stat)); got != want {
			t.Errorf("%q: parent %d, want %d", stat, got, want)
		}
	}
	if p := Parent(os.Getpid()); p != os.Getppid() {
		t.Errorf("this process's parent is %d, want %d", p, os.Getppid())
	}
	if s := State(os.Getpid()); s != 'R' && s != 'S' {
		t.Errorf("this process is in state %q", s)
	}
	if LoadAvg() < 0 || CPUModel() == "" {
		t.Errorf("load average %v, CPU %q", LoadAvg(), CPUModel())
	}
}
