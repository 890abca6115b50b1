package mesh

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/tickmesh/tickmesh/pkg/setting"
)

// Config of the embedded NATS server. The comment of each field names the flag and environment variable that
// pkg/config maps onto it; secrets come from the environment only.
type Config struct {
	Name             string        // -name NODE_NAME: server name, unique in the cluster
	ClientAddr       string        // -nats NATS_ADDR: client port for operators; "off" for none
	ClusterAddr      string        // -cluster CLUSTER_ADDR: route listen address; empty = standalone
	ClusterAdvertise string        // -cluster-advertise CLUSTER_ADVERTISE: route address told to peers; empty = ClusterAddr
	Routes           []*url.URL    // -routes CLUSTER_ROUTES: seed routes
	ClusterName      string        // -cluster-name CLUSTER_NAME
	DataDir          string        // -data DATA_DIR: JetStream storage
	ServerConfig     string        // -nats-config NATS_CONFIG: nats-server configuration file applied first
	Replicas         int           // -replicas REPLICAS: 0 = min(3, cluster size)
	ReadyWait        time.Duration // -ready-timeout READY_TIMEOUT: how long Start waits for the server

	// Route authentication: a user and password, or a token (a password with the fixed user "route"). Every
	// node of a cluster uses the same.
	RouteUser     string // CLUSTER_USER
	RoutePassword string // CLUSTER_PASSWORD
	RouteToken    string // CLUSTER_TOKEN
	// Route TLS: with a certificate, the CA is required and peers are verified both ways.
	RouteTLSCert string // CLUSTER_TLS_CERT
	RouteTLSKey  string // CLUSTER_TLS_KEY
	RouteTLSCA   string // CLUSTER_TLS_CA
	// InsecureRoutes lets a clustered server accept routes without credentials (the development switch,
	// -dev-insecure). Without it, a clustered Config without route credentials is invalid.
	InsecureRoutes bool

	// Users of the client port. Each exists only when its password is set; the port always requires
	// credentials.
	Admin  User // ADMIN_USER / ADMIN_PASSWORD: app account, every right
	Viewer User // VIEWER_USER / VIEWER_PASSWORD: app account, read-only (see accounts.go)
	Sys    User // SYS_USER / SYS_PASSWORD: system account
}

// User is a user of the client port.
type User struct {
	Name     string
	Password string
}

// MinPasswordLen is the shortest route password, route token or client-port password accepted.
const MinPasswordLen = 16

// DefaultConfig is a standalone server with its client port on loopback and no users but the node's own.
func DefaultConfig() Config {
	return Config{
		ClientAddr:  "127.0.0.1:4222",
		ClusterName: "tickmesh",
		ReadyWait:   10 * time.Second,
		Admin:       User{Name: "admin"},
		Viewer:      User{Name: "viewer"},
		Sys:         User{Name: "sys"},
	}
}

// Clustered reports whether the server listens for routes.
func (c Config) Clustered() bool { return c.ClusterAddr != "" }

// RouteAuth reports whether routes are authenticated.
func (c Config) RouteAuth() bool { return c.RouteUser != "" || c.RouteToken != "" }

// Validate checks the settings and their relations, and that files named by settings exist. It does not touch
// the network. Errors are *setting.Error.
func (c Config) Validate() error {
	if c.Name == "" {
		return setting.Errorf("-name", "must not be empty")
	}
	if c.ClientAddr != "off" {
		if err := setting.Addr("-nats", c.ClientAddr); err != nil {
			return err
		}
	}
	if c.ClusterAddr != "" {
		if err := setting.Addr("-cluster", c.ClusterAddr); err != nil {
			return err
		}
	}
	if c.ClusterAdvertise != "" {
		if c.ClusterAddr == "" {
			return setting.Errorf("-cluster-advertise", "needs -cluster (the address this node listens on for routes)")
		}
		if h, _, err := net.SplitHostPort(c.ClusterAdvertise); err != nil || h == "" {
			return setting.Errorf("-cluster-advertise", "%q: want host:port", c.ClusterAdvertise)
		}
		if err := setting.Addr("-cluster-advertise", c.ClusterAdvertise); err != nil {
			return err
		}
	}
	if c.ClusterAddr == "" && len(c.Routes) > 0 {
		return setting.Errorf("-routes", "routes need -cluster (the address this node listens on for routes)")
	}
	if c.ClusterName == "" || containsAny(c.ClusterName, " \t.*>") {
		return setting.Errorf("-cluster-name", "%q: must be non-empty without spaces, dots or wildcards", c.ClusterName)
	}
	if c.ServerConfig != "" {
		if _, err := os.Stat(c.ServerConfig); err != nil {
			return setting.Errorf("-nats-config", "%q: %v", c.ServerConfig, unwrapPathErr(err))
		}
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return setting.Errorf("-replicas", "%d: want 0 (automatic) to 5", c.Replicas)
	}
	if c.Replicas > 1 && c.ClusterAddr == "" {
		return setting.Errorf("-replicas", "more than one replica needs a cluster (-cluster)")
	}
	if c.ReadyWait <= 0 {
		return setting.Errorf("-ready-timeout", "must be positive")
	}
	if err := c.validateRoutes(); err != nil {
		return err
	}
	return c.validateUsers()
}

func (c Config) validateRoutes() error {
	if (c.RouteUser == "") != (c.RoutePassword == "") {
		return setting.Errorf("CLUSTER_USER", "CLUSTER_USER and CLUSTER_PASSWORD must be set together")
	}
	if c.RouteToken != "" && c.RouteUser != "" {
		return setting.Errorf("CLUSTER_TOKEN", "set either CLUSTER_TOKEN or CLUSTER_USER/CLUSTER_PASSWORD, not both")
	}
	if c.RoutePassword != "" {
		if err := setting.Secret("CLUSTER_PASSWORD", c.RoutePassword, MinPasswordLen); err != nil {
			return err
		}
	}
	if c.RouteToken != "" {
		if err := setting.Secret("CLUSTER_TOKEN", c.RouteToken, MinPasswordLen); err != nil {
			return err
		}
	}
	if c.Clustered() && !c.RouteAuth() && !c.InsecureRoutes {
		return setting.Errorf("CLUSTER_PASSWORD", "-cluster needs route credentials: set CLUSTER_USER and CLUSTER_PASSWORD (or CLUSTER_TOKEN) on every node; -dev-insecure accepts any peer, for development only")
	}
	if c.RouteTLSCert != "" || c.RouteTLSKey != "" || c.RouteTLSCA != "" {
		switch {
		case c.RouteTLSCert == "" || c.RouteTLSKey == "":
			return setting.Errorf("CLUSTER_TLS_CERT", "route TLS needs both CLUSTER_TLS_CERT and CLUSTER_TLS_KEY")
		case c.RouteTLSCA == "":
			return setting.Errorf("CLUSTER_TLS_CA", "route TLS needs the CA that signed the nodes' certificates, to verify peers")
		}
		for _, f := range []struct{ name, path string }{
			{"CLUSTER_TLS_CERT", c.RouteTLSCert}, {"CLUSTER_TLS_KEY", c.RouteTLSKey}, {"CLUSTER_TLS_CA", c.RouteTLSCA},
		} {
			if _, err := os.Stat(f.path); err != nil {
				return setting.Errorf(f.name, "%q: %v", f.path, unwrapPathErr(err))
			}
		}
	}
	return nil
}

func (c Config) validateUsers() error {
	users := []struct {
		env  string
		u    User
		pass string
	}{{"ADMIN_USER", c.Admin, "ADMIN_PASSWORD"}, {"VIEWER_USER", c.Viewer, "VIEWER_PASSWORD"}, {"SYS_USER", c.Sys, "SYS_PASSWORD"}}
	seen := map[string]string{}
	for _, x := range users {
		if x.u.Password == "" {
			continue
		}
		if x.u.Name == "" || containsAny(x.u.Name, " \t\"'\\{}") {
			return setting.Errorf(x.env, "%q: want a user name without spaces, quotes or braces", x.u.Name)
		}
		if x.u.Name == nodeUser {
			return setting.Errorf(x.env, "%q is the node's own user: choose another name", x.u.Name)
		}
		if other, dup := seen[x.u.Name]; dup {
			return setting.Errorf(x.env, "%q is also %s: every user needs its own name", x.u.Name, other)
		}
		seen[x.u.Name] = x.env
		if err := setting.Secret(x.pass, x.u.Password, MinPasswordLen); err != nil {
			return err
		}
	}
	return nil
}

func containsAny(s, chars string) bool {
	for _, r := range s {
		for _, c := range chars {
			if r == c {
				return true
			}
		}
	}
	return false
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// hostPort splits an address into host and port number.
func hostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", port, err)
	}
	return host, p, nil
}
