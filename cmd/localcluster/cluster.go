package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// nodeCount is the size of the local cluster.
const nodeCount = 3

// nginxName is the name of the load balancer in run/ and logs/.
const nginxName = "nginx"

// nodeSpec is everything about one node that the launcher decides.
type nodeSpec struct {
	Name    string
	HTTP    string   // HTTP listen address, host:port
	Admin   string   // admin listen address (metrics, cluster view)
	NATS    string   // NATS client listen address
	Route   string   // route listen address
	Link    string   // the route link in front of Route (empty: none); peers dial and know the node by it
	Routes  []string // the other nodes' route addresses (their links, when there are links)
	DataDir string
}

// URL is the node's HTTP base URL.
func (n nodeSpec) URL() string { return "http://" + n.HTTP }

// AdminURL is the base URL of the node's admin listener.
func (n nodeSpec) AdminURL() string { return "http://" + n.Admin }

// NATSURL is the node's NATS client URL.
func (n nodeSpec) NATSURL() string { return "nats://" + n.NATS }

// Args are the node's command-line flags (settings that are not secrets, which come from secrets.env through
// the environment; see pkg/config). nginx runs on loopback: its X-Real-IP is believed from there.
func (n nodeSpec) Args() []string {
	args := []string{
		"-name", n.Name,
		"-http", n.HTTP,
		"-admin-http", n.Admin,
		"-trusted-proxies", "127.0.0.1/32",
		"-nats", n.NATS,
		"-cluster", n.Route,
		"-routes", strings.Join(n.Routes, ","),
		"-data", n.DataDir,
		"-public-url", n.URL(),
	}
	if n.Link != "" {
		args = append(args, "-cluster-advertise", n.Link)
	}
	return args
}

// cluster is the local cluster of one state directory.
type cluster struct {
	Dir       string // absolute state directory
	Bin       string // absolute path of the node binary
	Nodes     []nodeSpec
	NginxPort int
	settings  settings
}

// settings is what `up` records in <dir>/cluster.json for the other commands.
type settings struct {
	Bin       string `json:"bin"`
	BaseHTTP  int    `json:"base_http"`
	BaseAdmin int    `json:"base_admin"`
	BaseNATS  int    `json:"base_nats"`
	BaseRoute int    `json:"base_route"`
	BaseLink  int    `json:"base_link"`
	NginxPort int    `json:"nginx_port"`
}

func settingsOf(o options) settings {
	return settings{Bin: o.bin, BaseHTTP: o.baseHTTP, BaseAdmin: o.baseAdmin, BaseNATS: o.baseNATS, BaseRoute: o.baseRoute, BaseLink: o.baseLink, NginxPort: o.nginxPort}
}

// withRecorded replaces the settings that were not given as flags by those `up` recorded.
func withRecorded(s, rec settings, set map[string]bool) settings {
	pick := func(flagName string, flagVal, recVal int) int {
		if set[flagName] || recVal == 0 {
			return flagVal
		}
		return recVal
	}
	out := settings{
		Bin:       s.Bin,
		BaseHTTP:  pick("base-http", s.BaseHTTP, rec.BaseHTTP),
		BaseAdmin: pick("base-admin", s.BaseAdmin, rec.BaseAdmin),
		BaseNATS:  pick("base-nats", s.BaseNATS, rec.BaseNATS),
		BaseRoute: pick("base-route", s.BaseRoute, rec.BaseRoute),
		BaseLink:  pick("base-link", s.BaseLink, rec.BaseLink),
		NginxPort: pick("nginx-port", s.NginxPort, rec.NginxPort),
	}
	if !set["bin"] && rec.Bin != "" {
		out.Bin = rec.Bin
	}
	return out
}

// newCluster lays out the cluster of dir with settings s. It touches nothing.
func newCluster(dir string, s settings) (*cluster, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(s.Bin)
	if err != nil {
		return nil, err
	}
	c := &cluster{Dir: abs, Bin: bin, NginxPort: s.NginxPort, settings: s}
	c.settings.Bin = bin
	addr := func(base, i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(base+i)) }
	linkAddr := func(i int) string {
		if s.BaseLink <= 0 {
			return ""
		}
		return addr(s.BaseLink, i)
	}
	for i := range nodeCount {
		n := nodeSpec{
			Name:    fmt.Sprintf("n%d", i+1),
			HTTP:    addr(s.BaseHTTP, i),
			Admin:   addr(s.BaseAdmin, i),
			NATS:    addr(s.BaseNATS, i),
			Route:   addr(s.BaseRoute, i),
			Link:    linkAddr(i),
			DataDir: filepath.Join(abs, "data", fmt.Sprintf("n%d", i+1)),
		}
		for j := range nodeCount {
			if j != i {
				if s.BaseLink > 0 {
					n.Routes = append(n.Routes, linkAddr(j))
				} else {
					n.Routes = append(n.Routes, addr(s.BaseRoute, j))
				}
			}
		}
		c.Nodes = append(c.Nodes, n)
	}
	return c, nil
}

// loadCluster is the cluster a command acts on: `up` uses its flags; the other commands use what `up`
// recorded, except for settings given as flags.
func loadCluster(cmd command) (*cluster, error) {
	s := settingsOf(cmd.opts)
	if cmd.name != "up" {
		rec, err := readSettings(filepath.Join(cmd.opts.dir, "cluster.json"))
		if err != nil {
			return nil, err
		}
		s = withRecorded(s, rec, cmd.set)
	}
	return newCluster(cmd.opts.dir, s)
}

func readSettings(path string) (settings, error) {
	var s settings
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %v (delete it, `up` writes it again)", path, err)
	}
	return s, nil
}

func (c *cluster) writeSettings() error {
	b, err := json.MarshalIndent(c.settings, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, "cluster.json"), append(b, '\n'), 0o644)
}

// node returns the node called name.
func (c *cluster) node(name string) (nodeSpec, error) {
	var names []string
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, nil
		}
		names = append(names, n.Name)
	}
	return nodeSpec{}, fmt.Errorf("no node %q (the nodes are %s)", name, strings.Join(names, ", "))
}

func (c *cluster) runDir() string             { return filepath.Join(c.Dir, "run") }
func (c *cluster) logDir() string             { return filepath.Join(c.Dir, "logs") }
func (c *cluster) nginxDir() string           { return filepath.Join(c.Dir, "nginx") }
func (c *cluster) pidFile(name string) string { return filepath.Join(c.runDir(), name+".pid") }
func (c *cluster) logFile(name string) string { return filepath.Join(c.logDir(), name+".log") }
func (c *cluster) nginxURL() string           { return fmt.Sprintf("http://127.0.0.1:%d", c.NginxPort) }
func (c *cluster) nginxListen() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.NginxPort))
}
func (c *cluster) dataDir(name string) string { return filepath.Join(c.Dir, "data", name) }
func (c *cluster) proc(name string) procRecord {
	return procRecord{Name: name, File: c.pidFile(name), Marker: c.marker(name)}
}
func (c *cluster) marker(name string) string {
	if name == nginxName {
		return c.nginxDir()
	}
	return c.dataDir(name)
}

// records are the pid files in run/, nodes first in name order, nginx last.
func (c *cluster) records() ([]procRecord, error) {
	entries, err := os.ReadDir(c.runDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []procRecord
	var lb *procRecord
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".pid")
		if !ok || e.IsDir() || name == "" {
			continue
		}
		r := c.proc(name)
		if name == nginxName {
			lb = &r
			continue
		}
		out = append(out, r)
	}
	if lb != nil {
		out = append(out, *lb)
	}
	return out, nil
}

// relativePath shortens path relative to the working directory when it is below it.
func relativePath(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}
