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

	"github.com/tickmesh/tickmesh/internal/cluster"
)

// nodeCount is the size of the local cluster.
const nodeCount = 3

// nginxName is the name of the load balancer in run/ and logs/.
const nginxName = "nginx"

// local is the local cluster of one state directory.
type local struct {
	Dir       string // absolute state directory
	Bin       string // absolute path of the node binary
	Nodes     []cluster.Node
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

// newLocal lays out the cluster of dir with settings s. It touches nothing.
func newLocal(dir string, s settings) (*local, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(s.Bin)
	if err != nil {
		return nil, err
	}
	c := &local{Dir: abs, Bin: bin, NginxPort: s.NginxPort, settings: s}
	c.settings.Bin = bin
	c.Nodes = cluster.Local(nodeCount, cluster.Ports{HTTP: s.BaseHTTP, Admin: s.BaseAdmin, NATS: s.BaseNATS, Route: s.BaseRoute,
		Link: s.BaseLink}, filepath.Join(abs, "data"))
	for i := range c.Nodes {
		// nginx runs on loopback: its X-Real-IP is believed from there.
		c.Nodes[i].Flags = []string{"-trusted-proxies", "127.0.0.1/32"}
	}
	return c, nil
}

// loadLocal is the cluster a command acts on: `up` uses its flags; the other commands use what `up` recorded,
// except for settings given as flags.
func loadLocal(cmd command) (*local, error) {
	s := settingsOf(cmd.opts)
	if cmd.name != "up" {
		rec, err := readSettings(filepath.Join(cmd.opts.dir, "cluster.json"))
		if err != nil {
			return nil, err
		}
		s = withRecorded(s, rec, cmd.set)
	}
	return newLocal(cmd.opts.dir, s)
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

func (c *local) writeSettings() error {
	b, err := json.MarshalIndent(c.settings, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, "cluster.json"), append(b, '\n'), 0o644)
}

// node returns the node called name.
func (c *local) node(name string) (cluster.Node, error) {
	var names []string
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, nil
		}
		names = append(names, n.Name)
	}
	return cluster.Node{}, fmt.Errorf("no node %q (the nodes are %s)", name, strings.Join(names, ", "))
}

func (c *local) runDir() string             { return filepath.Join(c.Dir, "run") }
func (c *local) logDir() string             { return filepath.Join(c.Dir, "logs") }
func (c *local) nginxDir() string           { return filepath.Join(c.Dir, "nginx") }
func (c *local) pidFile(name string) string { return filepath.Join(c.runDir(), name+".pid") }
func (c *local) logFile(name string) string { return filepath.Join(c.logDir(), name+".log") }
func (c *local) nginxURL() string           { return fmt.Sprintf("http://127.0.0.1:%d", c.NginxPort) }
func (c *local) nginxListen() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(c.NginxPort))
}
func (c *local) dataDir(name string) string { return filepath.Join(c.Dir, "data", name) }
func (c *local) proc(name string) cluster.PIDFile {
	return cluster.PIDFile{Name: name, Path: c.pidFile(name), Marker: c.marker(name)}
}
func (c *local) marker(name string) string {
	if name == nginxName {
		return c.nginxDir()
	}
	return c.dataDir(name)
}

// upFile names the running `up` of this directory: its pid, and "up" as the marker of its command line.
func (c *local) upFile() cluster.PIDFile {
	return cluster.PIDFile{Name: "up", Path: filepath.Join(c.Dir, "up.pid"), Marker: "up"}
}

// records are the pid files in run/, nodes first in name order, nginx last.
func (c *local) records() ([]cluster.PIDFile, error) {
	entries, err := os.ReadDir(c.runDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []cluster.PIDFile
	var lb *cluster.PIDFile
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

// listens are the addresses the cluster's processes listen on (the nodes, and nginx when it runs).
func (c *local) listens(withNginx bool) []cluster.Listen {
	var ls []cluster.Listen
	for _, n := range c.Nodes {
		ls = append(ls, n.Listens()...)
	}
	if withNginx {
		ls = append(ls, cluster.Listen{Addr: c.nginxListen(), What: "nginx"})
	}
	return ls
}

// linkListens are the route links' addresses (held by `up`, not by the nodes).
func (c *local) linkListens() []cluster.Listen {
	var ls []cluster.Listen
	for _, n := range c.Nodes {
		if n.Link != "" {
			ls = append(ls, cluster.Listen{Addr: n.Link, What: n.Name + " route link"})
		}
	}
	return ls
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
