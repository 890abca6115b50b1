package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Ports every node listens on, at its own host's address.
const (
	HTTPPort  = 8080
	AdminPort = 9090
	NATSPort  = 4222
	RoutePort = 6222
)

// Host is one simulated machine: a network namespace with one address on the shared bridge.
type Host struct {
	Name string // node name: n1, n2, n3
	NS   string // network namespace
	Addr string // IPv4 address on the bridge
}

// Net is the virtual network of a run. A "hub" namespace holds a bridge; every host namespace has a veth pair
// into it (eth0 on the host side), and so has the harness's own namespace (link <prefix>r, address .100), so the
// bots and recorders reach every node directly. Partitions are nftables rules inside the host namespaces that
// match peer node addresses only, so they cut node↔node traffic and never the harness.
//
// Everything is named with the prefix tmc<pid>: Close deletes the namespaces (which takes the veths, the bridge
// and the nftables tables with them) and the harness-side link; NewNet first removes what runs of dead
// processes left behind.
type Net struct {
	Prefix   string
	Hub      string
	Hosts    []Host
	RootLink string
	RootAddr string
	Subnet   string // first three octets, like "10.77.23"

	logf func(string, ...any)

	mu     sync.Mutex
	rules  []string // active partition rules, for reports
	closed bool
}

// nftTable is the table the harness owns in every host namespace.
const nftTable = "tmchaos"

// CheckPrivileges reports why the harness cannot run here (nil when it can): it needs root, ip netns and nft.
func CheckPrivileges() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, veth, nftables)")
	}
	for _, bin := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("needs %s: %v", bin, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	name := fmt.Sprintf("tmc%d-probe", os.Getpid())
	if _, err := run(ctx, "ip", "netns", "add", name); err != nil {
		return fmt.Errorf("ip netns does not work here: %v", err)
	}
	defer run(context.Background(), "ip", "netns", "del", name) //nolint:errcheck
	if _, err := runIn(ctx, name, nftSetup, "nft", "-f", "-"); err != nil {
		return fmt.Errorf("nft does not work in a network namespace: %v", err)
	}
	return nil
}

// run runs a command and returns its combined output; the error includes the output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	return runStdin(ctx, "", name, args...)
}

func runStdin(ctx context.Context, stdin, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// nftSetup creates the harness's table in a host namespace: empty input and output chains that accept.
const nftSetup = "table inet " + nftTable + " {\n" +
	"  chain input { type filter hook input priority filter; policy accept; }\n" +
	"  chain output { type filter hook output priority filter; policy accept; }\n" +
	"}\n"

// runIn runs a command inside namespace ns with stdin (if not empty).
func runIn(ctx context.Context, ns, stdin string, name string, args ...string) (string, error) {
	return runStdin(ctx, stdin, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// NewNet creates the network for n hosts. logf receives progress lines.
func NewNet(ctx context.Context, n int, logf func(string, ...any)) (_ *Net, err error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	SweepStale(ctx, logf)
	prefix := fmt.Sprintf("tmc%d", os.Getpid())
	subnet, err := pickSubnet()
	if err != nil {
		return nil, err
	}
	nt := &Net{Prefix: prefix, Hub: prefix + "-hub", RootLink: prefix + "r", RootAddr: subnet + ".100", Subnet: subnet, logf: logf}
	defer func() {
		if err != nil {
			nt.Close()
		}
	}()
	steps := [][]string{
		{"ip", "netns", "add", nt.Hub},
		{"ip", "-n", nt.Hub, "link", "set", "lo", "up"},
		{"ip", "-n", nt.Hub, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", nt.Hub, "link", "set", "br0", "up"},
	}
	for i := range n {
		h := Host{Name: fmt.Sprintf("n%d", i+1), NS: fmt.Sprintf("%s-n%d", prefix, i+1), Addr: fmt.Sprintf("%s.%d", subnet, i+1)}
		nt.Hosts = append(nt.Hosts, h)
		v := fmt.Sprintf("v%d", i+1)
		steps = append(steps,
			[]string{"ip", "netns", "add", h.NS},
			[]string{"ip", "-n", h.NS, "link", "set", "lo", "up"},
			[]string{"ip", "-n", nt.Hub, "link", "add", v, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			[]string{"ip", "-n", nt.Hub, "link", "set", v, "master", "br0", "up"},
			[]string{"ip", "-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
			[]string{"ip", "-n", h.NS, "link", "set", "eth0", "up"},
		)
	}
	steps = append(steps,
		[]string{"ip", "-n", nt.Hub, "link", "add", "vr", "type", "veth", "peer", "name", nt.RootLink, "netns", strconv.Itoa(os.Getpid())},
		[]string{"ip", "-n", nt.Hub, "link", "set", "vr", "master", "br0", "up"},
		[]string{"ip", "addr", "add", nt.RootAddr + "/24", "dev", nt.RootLink},
		[]string{"ip", "link", "set", nt.RootLink, "up"},
	)
	for _, s := range steps {
		if _, err := run(ctx, s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	for _, h := range nt.Hosts {
		if _, err := runIn(ctx, h.NS, nftSetup, "nft", "-f", "-"); err != nil {
			return nil, err
		}
	}
	logf("network %s: bridge in %s, hosts %s, harness %s on %s", subnet+".0/24", nt.Hub, nt.hostList(), nt.RootAddr, nt.RootLink)
	return nt, nil
}

func (nt *Net) hostList() string {
	var b []string
	for _, h := range nt.Hosts {
		b = append(b, h.Name+"="+h.Addr+"@"+h.NS)
	}
	return strings.Join(b, " ")
}

// pickSubnet returns a 10.77.X prefix no route of this namespace uses.
func pickSubnet() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", err
	}
	used := map[string]bool{}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip4 := ipn.IP.To4(); ip4 != nil {
				used[fmt.Sprintf("%d.%d.%d", ip4[0], ip4[1], ip4[2])] = true
			}
		}
	}
	start := os.Getpid() % 200
	for i := range 250 {
		s := fmt.Sprintf("10.77.%d", (start+i)%250+1)
		if !used[s] {
			return s, nil
		}
	}
	return "", errors.New("no free 10.77.X.0/24 subnet")
}

// Close removes everything NewNet created. Processes still running in the host namespaces keep them alive
// until they exit, so stop the nodes first.
func (nt *Net) Close() {
	nt.mu.Lock()
	if nt.closed {
		nt.mu.Unlock()
		return
	}
	nt.closed = true
	nt.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, h := range nt.Hosts {
		if _, err := run(ctx, "ip", "netns", "del", h.NS); err != nil && !strings.Contains(err.Error(), "No such file") {
			nt.logf("cleanup: %v", err)
		}
	}
	if _, err := run(ctx, "ip", "netns", "del", nt.Hub); err != nil && !strings.Contains(err.Error(), "No such file") {
		nt.logf("cleanup: %v", err)
	}
	// Deleting the hub deletes the veth pair of the harness link too, asynchronously.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if _, err := net.InterfaceByName(nt.RootLink); err != nil {
			return
		}
	}
	if _, err := run(ctx, "ip", "link", "del", nt.RootLink); err != nil {
		nt.logf("cleanup: %v", err)
	}
}

// Dir is a direction of a partition rule at a host.
type Dir int

const (
	// In drops packets arriving at the host from the peer.
	In Dir = iota
	// Out drops packets leaving the host for the peer.
	Out
)

// Drop adds a rule at host that drops its traffic with peer in direction d.
func (nt *Net) Drop(ctx context.Context, host, peer int, d Dir) error {
	h, p := nt.Hosts[host], nt.Hosts[peer]
	chain, match := "input", "saddr"
	desc := fmt.Sprintf("%s drops packets from %s", h.Name, p.Name)
	if d == Out {
		chain, match = "output", "daddr"
		desc = fmt.Sprintf("%s drops packets to %s", h.Name, p.Name)
	}
	if _, err := runIn(ctx, h.NS, "", "nft", "add", "rule", "inet", nftTable, chain, "ip", match, p.Addr, "counter", "drop"); err != nil {
		return err
	}
	nt.mu.Lock()
	nt.rules = append(nt.rules, desc)
	nt.mu.Unlock()
	return nil
}

// Cut drops all traffic between hosts a and b, both ways, at both ends.
func (nt *Net) Cut(ctx context.Context, a, b int) error {
	for _, r := range []struct {
		h, p int
		d    Dir
	}{{a, b, In}, {a, b, Out}, {b, a, In}, {b, a, Out}} {
		if err := nt.Drop(ctx, r.h, r.p, r.d); err != nil {
			return err
		}
	}
	return nil
}

// Counters returns the rules of every host with their packet counters (evidence for reports).
func (nt *Net) Counters(ctx context.Context) string {
	var b strings.Builder
	for _, h := range nt.Hosts {
		out, err := runIn(ctx, h.NS, "", "nft", "list", "table", "inet", nftTable)
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", h.Name, err)
			continue
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, "drop") {
				fmt.Fprintf(&b, "%s: %s\n", h.Name, strings.TrimSpace(l))
			}
		}
	}
	return b.String()
}

// Heal removes every partition rule.
func (nt *Net) Heal(ctx context.Context) error {
	var errs []error
	for _, h := range nt.Hosts {
		for _, chain := range []string{"input", "output"} {
			if _, err := runIn(ctx, h.NS, "", "nft", "flush", "chain", "inet", nftTable, chain); err != nil {
				errs = append(errs, err)
			}
		}
	}
	nt.mu.Lock()
	nt.rules = nil
	nt.mu.Unlock()
	return errors.Join(errs...)
}

// Rules describes the active partition rules.
func (nt *Net) Rules() []string {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	return append([]string(nil), nt.rules...)
}

var staleName = regexp.MustCompile(`^tmc(\d+)(-hub|-n\d+|-probe)$`)
var staleLink = regexp.MustCompile(`^tmc(\d+)r$`)

// SweepStale removes namespaces and links that runs of processes no longer alive left behind (a harness killed
// with SIGKILL cannot clean up), after killing the node processes still running inside them, which such a run
// started.
func SweepStale(ctx context.Context, logf func(string, ...any)) {
	out, err := run(ctx, "ip", "netns", "list")
	if err == nil {
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			m := staleName.FindStringSubmatch(f[0])
			if m == nil || pidAlive(m[1]) {
				continue
			}
			if pids, err := run(ctx, "ip", "netns", "pids", f[0]); err == nil {
				for _, p := range strings.Fields(pids) {
					if pid, err := strconv.Atoi(p); err == nil {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			if _, err := run(ctx, "ip", "netns", "del", f[0]); err == nil {
				logf("removed stale namespace %s", f[0])
			}
		}
	}
	ifs, err := net.Interfaces()
	if err == nil {
		for _, i := range ifs {
			if m := staleLink.FindStringSubmatch(i.Name); m != nil && !pidAlive(m[1]) {
				if _, err := run(ctx, "ip", "link", "del", i.Name); err == nil {
					logf("removed stale link %s", i.Name)
				}
			}
		}
	}
}

func pidAlive(s string) bool {
	pid, err := strconv.Atoi(s)
	if err != nil {
		return true
	}
	if pid == os.Getpid() {
		return true
	}
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
