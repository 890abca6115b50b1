package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Command is how to start one process.
type Command struct {
	Name string   // for the log header and errors
	Path string   // the binary
	Args []string // its arguments
	Env  []string // its whole environment
	// Wrap goes before Path and Args, for example `ip netns exec <ns>`, which then executes the binary in the
	// same process.
	Wrap []string
	Log  string // the file stdout and stderr are appended to, after a header line naming the command
	// Fresh truncates Log first.
	Fresh bool
	// PIDFile, when set, is where the pid is recorded (atomically), for commands of other invocations.
	PIDFile string
	// ParentDeath makes the kernel SIGKILL the process when the thread that started it exits, so that nothing
	// outlives a benchmark that is itself killed. Such commands start from one goroutine locked to its thread.
	ParentDeath bool
}

// Start starts c in its own process group (a Ctrl-C in the terminal reaches only this process, which stops its
// children in order), and returns it running; the caller waits for it.
func (c Command) Start() (*exec.Cmd, error) {
	if err := os.MkdirAll(filepath.Dir(c.Log), 0o755); err != nil {
		return nil, err
	}
	flags := os.O_CREATE | os.O_WRONLY | os.O_APPEND
	if c.Fresh {
		flags |= os.O_TRUNC
	}
	log, err := os.OpenFile(c.Log, flags, 0o644)
	if err != nil {
		return nil, err
	}
	// The child has its own copy of the descriptor.
	defer log.Close()
	argv := append(append(append([]string(nil), c.Wrap...), c.Path), c.Args...)
	fmt.Fprintf(log, "==== %s %s: %s\n", time.Now().Format(time.RFC3339Nano), c.Name, strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = c.Env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.ParentDeath {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
		err = spawn(cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", c.Name, err)
	}
	if c.PIDFile != "" {
		if err := WritePID(c.PIDFile, cmd.Process.Pid); err != nil {
			_ = SignalGroup(cmd.Process.Pid, syscall.SIGKILL)
			_ = cmd.Wait()
			return nil, err
		}
	}
	return cmd, nil
}

// spawnRequests go to one goroutine locked to its OS thread for the life of the program: the parent-death
// signal fires when the thread that started a child exits, and Go may retire other threads.
var (
	spawnOnce     sync.Once
	spawnRequests chan spawnRequest
)

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func spawn(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnRequests = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread()
			for r := range spawnRequests {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnRequests <- spawnRequest{cmd: cmd, done: done}
	return <-done
}

// CleanEnv is the environment of a process started for a benchmark or a test: only what any process needs, so
// that settings in this process's own environment (NODE_NAME, LEASE_TTL, ...) cannot change the nodes.
func CleanEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
