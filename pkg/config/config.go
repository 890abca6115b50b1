// Package config holds the settings of a Tickmesh node: their defaults, how they are read from flags and the
// environment (flags win), and Validate, which checks each setting and the relations between them.
//
// The package is pure: it reads only what it is given (arguments, an environment lookup function, the file
// system for the checks Validate documents) and owns no goroutines.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tickmesh/tickmesh/pkg/sim"
)

// Error is a configuration problem: which setting and what is wrong with it. cmd/node prints it on one line and
// exits with code 2.
type Error struct {
	Setting string // flag name, with its dash, or environment variable
	Problem string
}

func (e *Error) Error() string { return e.Setting + ": " + e.Problem }

// ErrHelp is returned by Load when -h or -help was given.
var ErrHelp = flag.ErrHelp

// Config is the whole configuration of one node.
type Config struct {
	Name        string        // -name NODE_NAME: unique node (and NATS server) name
	HTTPAddr    string        // -http HTTP_ADDR: HTTP and WebSocket listen address
	NATSAddr    string        // -nats NATS_ADDR: client port for operators; "off" for none
	ClusterAddr string        // -cluster CLUSTER_ADDR: route listen address; empty = standalone
	ClusterAdv  string        // -cluster-advertise CLUSTER_ADVERTISE: route address told to peers (NAT, proxies); empty = the listen address
	Routes      []*url.URL    // -routes CLUSTER_ROUTES: seed routes
	ClusterName string        // -cluster-name CLUSTER_NAME
	DataDir     string        // -data DATA_DIR: JetStream storage
	PublicURL   string        // -public-url PUBLIC_URL: where browsers reach this node (http base URL)
	NATSConfig  string        // -nats-config NATS_CONFIG: optional nats-server config file applied first
	Replicas    int           // -replicas REPLICAS: 0 = min(3, cluster size)
	ReadyWait   time.Duration // -ready-timeout READY_TIMEOUT: how long to wait for the embedded server to accept connections
	LogLevel    string        // -log-level LOG_LEVEL: debug, info, warn, error
	LogFormat   string        // -log-format LOG_FORMAT: text or json
	Pprof       bool          // -pprof PPROF: serve net/http/pprof under /debug/pprof/ on the HTTP address
	GCPercent   int           // -gc-percent GC_PERCENT: the Go GC target (debug.SetGCPercent); 0 = leave the runtime's (GOGC)

	// Secrets and credentials come from the environment only (never flags, which show in `ps`).
	ClusterUser     string // CLUSTER_USER
	ClusterPassword string // CLUSTER_PASSWORD
	ClusterToken    string // CLUSTER_TOKEN
	ClusterTLSCert  string // CLUSTER_TLS_CERT
	ClusterTLSKey   string // CLUSTER_TLS_KEY
	ClusterTLSCA    string // CLUSTER_TLS_CA
	ClientUser      string // CLIENT_USER: when set, the client port requires these credentials
	ClientPassword  string // CLIENT_PASSWORD
	SysUser         string // SYS_USER: operator user of the system account (default "sys")
	SysPassword     string // SYS_PASSWORD (default "sys", with a warning)
	SessionSecret   string // SESSION_SECRET: HMAC key of resume tokens

	// Rooms.
	TickRate         int           // -tick-rate TICK_RATE: ticks per second
	LeaseTTL         time.Duration // -lease-ttl LEASE_TTL: owner lease, whole seconds
	SnapshotInterval time.Duration // -snapshot-interval SNAPSHOT_INTERVAL
	StealAfter       time.Duration // -steal-after STEAL_AFTER: how long the owner's node must be unreachable before a lease is taken over
	Games            string        // -games GAMES: which game each room plays, "pattern=game,..." (sim.ParseGameRules)

	// Gateway.
	Grace          time.Duration // -grace GRACE: a disconnected player leaves the room after this
	AllowedOrigins []string      // -allowed-origins ALLOWED_ORIGINS: comma-separated; empty = same host
	MaxConns       int           // -max-conns MAX_CONNS: sockets per node
	MaxConnsPerIP  int           // -max-conns-per-ip MAX_CONNS_PER_IP
	ReadLimit      int64         // -read-limit READ_LIMIT: bytes per frame
	InputRate      float64       // -input-rate INPUT_RATE: inputs per second per connection
	InputBurst     int           // -input-burst INPUT_BURST
	DrainTimeout   time.Duration // -drain-timeout DRAIN_TIMEOUT: time given to sockets to close on shutdown
}

// Default returns the configuration of `go run ./cmd/node` with no flags and no environment.
func Default() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return Config{
		Name:             sanitizeName(host),
		HTTPAddr:         ":8080",
		NATSAddr:         "127.0.0.1:4222",
		ClusterName:      "tickmesh",
		ReadyWait:        10 * time.Second,
		LogLevel:         "info",
		LogFormat:        "text",
		SysUser:          "sys",
		TickRate:         20,
		LeaseTTL:         10 * time.Second,
		SnapshotInterval: time.Second,
		StealAfter:       500 * time.Millisecond,
		Games:            sim.DefaultGameRules,
		Grace:            15 * time.Second,
		MaxConns:         20000,
		MaxConnsPerIP:    200,
		ReadLimit:        4096,
		InputRate:        30,
		InputBurst:       60,
		DrainTimeout:     3 * time.Second,
		GCPercent:        DefaultGCPercent,
	}
}

// DefaultGCPercent is the node's GC target unless GOGC or -gc-percent says otherwise. A node holds many small,
// long-lived objects per socket; at Go's default of 100 about half its heap is headroom for garbage. 50 measured
// no CPU difference at 1,000 sockets × 20 ticks/s and about 30 % less RSS (docs/BENCHMARKS.md, Fan-out).
const DefaultGCPercent = 50

// DevSessionSecret is the resume-token key used when SESSION_SECRET is unset: shared by every node of a local
// cluster so that tokens work across them, and announced with a warning because anyone can forge tokens with it.
const DevSessionSecret = "tickmesh-development-secret-do-not-use-in-production"

// DevSysPassword is the system-account password used when SYS_PASSWORD is unset.
const DevSysPassword = "sys"

// Load reads args (without the program name) and the environment through getenv. Flags win over environment
// variables, which win over defaults. The result has been validated.
func Load(args []string, getenv func(string) string) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("tickmesh-node", flag.ContinueOnError)
	fs.SetOutput(io.Discard)

	var routes, origins string
	strFlag := func(p *string, name, env, usage string) {
		if v := getenv(env); v != "" {
			*p = v
		}
		fs.StringVar(p, name, *p, usage+" (env "+env+")")
	}
	var envErr error
	setEnvErr := func(err error) {
		if envErr == nil {
			envErr = err
		}
	}
	intFlag := func(p *int, name, env, usage string) {
		if v := getenv(env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				setEnvErr(&Error{env, fmt.Sprintf("%q is not an integer", v)})
			}
			*p = n
		}
		fs.IntVar(p, name, *p, usage+" (env "+env+")")
	}
	boolFlag := func(p *bool, name, env, usage string) {
		if v := getenv(env); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				setEnvErr(&Error{env, fmt.Sprintf("%q is not a boolean (true or false)", v)})
			}
			*p = b
		}
		fs.BoolVar(p, name, *p, usage+" (env "+env+")")
	}
	durFlag := func(p *time.Duration, name, env, usage string) {
		if v := getenv(env); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				setEnvErr(&Error{env, fmt.Sprintf("%q is not a duration (like 1s or 500ms)", v)})
			}
			*p = d
		}
		fs.DurationVar(p, name, *p, usage+" (env "+env+")")
	}

	strFlag(&c.Name, "name", "NODE_NAME", "node name, unique in the cluster")
	strFlag(&c.HTTPAddr, "http", "HTTP_ADDR", "HTTP and WebSocket listen address")
	strFlag(&c.NATSAddr, "nats", "NATS_ADDR", "NATS client listen address for operators, or off")
	strFlag(&c.ClusterAddr, "cluster", "CLUSTER_ADDR", "NATS cluster (route) listen address; empty = standalone")
	strFlag(&c.ClusterAdv, "cluster-advertise", "CLUSTER_ADVERTISE", "route address peers should dial (behind NAT or a proxy); empty = the -cluster address")
	strFlag(&routes, "routes", "CLUSTER_ROUTES", "comma-separated seed routes, host:port or nats-route:// URLs")
	strFlag(&c.ClusterName, "cluster-name", "CLUSTER_NAME", "NATS cluster name")
	strFlag(&c.DataDir, "data", "DATA_DIR", "JetStream data directory (default ./data/<name>)")
	strFlag(&c.PublicURL, "public-url", "PUBLIC_URL", "base URL where browsers reach this node")
	strFlag(&c.NATSConfig, "nats-config", "NATS_CONFIG", "nats-server config file applied before these settings")
	intFlag(&c.Replicas, "replicas", "REPLICAS", "replicas of streams and buckets; 0 = min(3, cluster size)")
	durFlag(&c.ReadyWait, "ready-timeout", "READY_TIMEOUT", "how long to wait for the embedded NATS server")
	strFlag(&c.LogLevel, "log-level", "LOG_LEVEL", "debug, info, warn or error")
	strFlag(&c.LogFormat, "log-format", "LOG_FORMAT", "text or json")
	boolFlag(&c.Pprof, "pprof", "PPROF", "serve Go profiles under /debug/pprof/ (for benchmarks; keep off where the HTTP port is public)")
	intFlag(&c.GCPercent, "gc-percent", "GC_PERCENT", "Go GC target percent (10-1000); 0 = the runtime's (GOGC); default 50 unless GOGC is set")
	intFlag(&c.TickRate, "tick-rate", "TICK_RATE", "game ticks per second")
	durFlag(&c.LeaseTTL, "lease-ttl", "LEASE_TTL", "room lease time to live (whole seconds)")
	durFlag(&c.SnapshotInterval, "snapshot-interval", "SNAPSHOT_INTERVAL", "time between room snapshots")
	durFlag(&c.StealAfter, "steal-after", "STEAL_AFTER", "how long an owner's node must be unreachable before its lease is taken over")
	strFlag(&c.Games, "games", "GAMES", "which game each room plays: pattern=game,... where a pattern is a room name, a prefix followed by *, or *")
	durFlag(&c.Grace, "grace", "GRACE", "a disconnected player leaves its room after this")
	strFlag(&origins, "allowed-origins", "ALLOWED_ORIGINS", "comma-separated allowed WebSocket origins; empty = same host")
	intFlag(&c.MaxConns, "max-conns", "MAX_CONNS", "maximum WebSocket connections on this node")
	intFlag(&c.MaxConnsPerIP, "max-conns-per-ip", "MAX_CONNS_PER_IP", "maximum WebSocket connections per client IP")
	var readLimit = int(c.ReadLimit)
	intFlag(&readLimit, "read-limit", "READ_LIMIT", "maximum size of one client frame in bytes")
	var inputRate = int(c.InputRate)
	intFlag(&inputRate, "input-rate", "INPUT_RATE", "inputs per second per connection")
	intFlag(&c.InputBurst, "input-burst", "INPUT_BURST", "input burst per connection")
	durFlag(&c.DrainTimeout, "drain-timeout", "DRAIN_TIMEOUT", "time given to sockets to move away on shutdown")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, ErrHelp
		}
		return c, flagError(err)
	}
	if envErr != nil {
		return c, envErr
	}
	if fs.NArg() > 0 {
		return c, &Error{"arguments", fmt.Sprintf("unexpected %q (settings are flags like -name n1)", fs.Arg(0))}
	}
	c.ReadLimit = int64(readLimit)
	c.InputRate = float64(inputRate)
	gcSet := getenv("GC_PERCENT") != ""
	fs.Visit(func(f *flag.Flag) { gcSet = gcSet || f.Name == "gc-percent" })
	if !gcSet && getenv("GOGC") != "" {
		c.GCPercent = 0 // GOGC, the Go runtime's own setting, wins over our default
	}

	c.ClusterUser = getenv("CLUSTER_USER")
	c.ClusterPassword = getenv("CLUSTER_PASSWORD")
	c.ClusterToken = getenv("CLUSTER_TOKEN")
	c.ClusterTLSCert = getenv("CLUSTER_TLS_CERT")
	c.ClusterTLSKey = getenv("CLUSTER_TLS_KEY")
	c.ClusterTLSCA = getenv("CLUSTER_TLS_CA")
	c.ClientUser = getenv("CLIENT_USER")
	c.ClientPassword = getenv("CLIENT_PASSWORD")
	if v := getenv("SYS_USER"); v != "" {
		c.SysUser = v
	}
	c.SysPassword = getenv("SYS_PASSWORD")
	c.SessionSecret = getenv("SESSION_SECRET")

	var err error
	if c.Routes, err = ParseRoutes(routes); err != nil {
		return c, err
	}
	c.AllowedOrigins = splitList(origins)
	if c.DataDir == "" {
		c.DataDir = filepath.Join("data", c.Name)
	}
	if c.PublicURL == "" {
		c.PublicURL = defaultPublicURL(c.HTTPAddr)
	}
	return c, c.Validate()
}

// Usage writes the flag list to w.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tickmesh-node [flags]; every flag also has an environment variable, flags win.")
	fmt.Fprintln(w, "See README.md (Settings) for the full table.")
}

func flagError(err error) error {
	msg := err.Error()
	// The flag package says "flag provided but not defined: -x" or "invalid value "v" for flag -x: ...".
	if rest, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return &Error{rest, "unknown flag"}
	}
	if i := strings.Index(msg, " for flag -"); i >= 0 {
		name := msg[i+len(" for flag "):]
		if j := strings.Index(name, ":"); j >= 0 {
			name = name[:j]
		}
		return &Error{name, msg}
	}
	return &Error{"flags", msg}
}

// ParseRoutes parses a comma-separated list of host:port or nats-route:// URLs.
func ParseRoutes(s string) ([]*url.URL, error) {
	var out []*url.URL
	for _, r := range splitList(s) {
		raw := r
		if !strings.Contains(r, "://") {
			raw = "nats-route://" + r
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, &Error{"-routes", fmt.Sprintf("route %q: %v", r, err)}
		}
		if u.Scheme != "nats-route" && u.Scheme != "nats" && u.Scheme != "tls" {
			return nil, &Error{"-routes", fmt.Sprintf("route %q: scheme must be nats-route", r)}
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" {
			return nil, &Error{"-routes", fmt.Sprintf("route %q: want host:port", r)}
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, &Error{"-routes", fmt.Sprintf("route %q: bad port %q", r, port)}
		}
		out = append(out, u)
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func sanitizeName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	if b.Len() == 0 {
		return "node"
	}
	out := b.String()
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}

func defaultPublicURL(httpAddr string) string {
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Validate checks every setting and the relations between them. It does not touch the network; it does check
// that files named by settings exist.
func (c *Config) Validate() error {
	if c.GCPercent != 0 && (c.GCPercent < 10 || c.GCPercent > 1000) {
		return &Error{"-gc-percent", fmt.Sprintf("%d: use 10-1000, or 0 for the Go runtime's setting (GOGC)", c.GCPercent)}
	}
	if c.Name == "" || sanitizeName(c.Name) != c.Name {
		return &Error{"-name", fmt.Sprintf("%q: use lowercase letters, digits, '-' and '_' (at most 64)", c.Name)}
	}
	if err := checkAddr("-http", c.HTTPAddr, false); err != nil {
		return err
	}
	if c.NATSAddr != "off" {
		if err := checkAddr("-nats", c.NATSAddr, false); err != nil {
			return err
		}
	}
	if c.ClusterAddr != "" {
		if err := checkAddr("-cluster", c.ClusterAddr, false); err != nil {
			return err
		}
	}
	if c.ClusterAdv != "" {
		if c.ClusterAddr == "" {
			return &Error{"-cluster-advertise", "needs -cluster (the address this node listens on for routes)"}
		}
		if h, _, err := net.SplitHostPort(c.ClusterAdv); err != nil || h == "" {
			return &Error{"-cluster-advertise", fmt.Sprintf("%q: want host:port", c.ClusterAdv)}
		}
		if err := checkAddr("-cluster-advertise", c.ClusterAdv, false); err != nil {
			return err
		}
	}
	if c.ClusterAddr == "" && len(c.Routes) > 0 {
		return &Error{"-routes", "routes need -cluster (the address this node listens on for routes)"}
	}
	if c.ClusterName == "" || strings.ContainsAny(c.ClusterName, " \t.*>") {
		return &Error{"-cluster-name", fmt.Sprintf("%q: must be non-empty without spaces, dots or wildcards", c.ClusterName)}
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return &Error{"-public-url", fmt.Sprintf("%q: want http(s)://host[:port]", c.PublicURL)}
		}
	}
	if c.NATSConfig != "" {
		if _, err := os.Stat(c.NATSConfig); err != nil {
			return &Error{"-nats-config", fmt.Sprintf("%q: %v", c.NATSConfig, unwrapPathError(err))}
		}
	}
	if _, err := sim.ParseGameRules(c.Games); err != nil {
		return &Error{"-games", fmt.Sprintf("%q: %v", c.Games, err)}
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return &Error{"-replicas", fmt.Sprintf("%d: want 0 (automatic) to 5", c.Replicas)}
	}
	if c.Replicas > 1 && c.ClusterAddr == "" {
		return &Error{"-replicas", "more than one replica needs a cluster (-cluster)"}
	}
	if c.ReadyWait <= 0 {
		return &Error{"-ready-timeout", "must be positive"}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &Error{"-log-level", fmt.Sprintf("%q: want debug, info, warn or error", c.LogLevel)}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &Error{"-log-format", fmt.Sprintf("%q: want text or json", c.LogFormat)}
	}
	if (c.ClusterUser == "") != (c.ClusterPassword == "") {
		return &Error{"CLUSTER_USER", "CLUSTER_USER and CLUSTER_PASSWORD must be set together"}
	}
	if c.ClusterToken != "" && c.ClusterUser != "" {
		return &Error{"CLUSTER_TOKEN", "set either CLUSTER_TOKEN or CLUSTER_USER/CLUSTER_PASSWORD, not both"}
	}
	if (c.ClientUser == "") != (c.ClientPassword == "") {
		return &Error{"CLIENT_USER", "CLIENT_USER and CLIENT_PASSWORD must be set together"}
	}
	if c.ClientUser != "" && c.ClientUser == c.SysUser {
		return &Error{"CLIENT_USER", "must differ from SYS_USER"}
	}
	tlsSet := c.ClusterTLSCert != "" || c.ClusterTLSKey != "" || c.ClusterTLSCA != ""
	if tlsSet {
		if c.ClusterTLSCert == "" || c.ClusterTLSKey == "" {
			return &Error{"CLUSTER_TLS_CERT", "route TLS needs both CLUSTER_TLS_CERT and CLUSTER_TLS_KEY"}
		}
		for _, f := range []struct{ name, path string }{
			{"CLUSTER_TLS_CERT", c.ClusterTLSCert}, {"CLUSTER_TLS_KEY", c.ClusterTLSKey}, {"CLUSTER_TLS_CA", c.ClusterTLSCA},
		} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				return &Error{f.name, fmt.Sprintf("%q: %v", f.path, unwrapPathError(err))}
			}
		}
	}
	if c.SessionSecret != "" && len(c.SessionSecret) < 16 {
		return &Error{"SESSION_SECRET", "must be at least 16 bytes"}
	}
	if c.TickRate < 1 || c.TickRate > 120 {
		return &Error{"-tick-rate", fmt.Sprintf("%d: want 1 to 120 ticks per second", c.TickRate)}
	}
	if c.LeaseTTL < time.Second || c.LeaseTTL%time.Second != 0 {
		return &Error{"-lease-ttl", fmt.Sprintf("%v: want whole seconds, at least 1s (JetStream TTLs are whole seconds)", c.LeaseTTL)}
	}
	if c.SnapshotInterval < 50*time.Millisecond {
		return &Error{"-snapshot-interval", fmt.Sprintf("%v: want at least 50ms", c.SnapshotInterval)}
	}
	if c.SnapshotInterval >= c.LeaseTTL*10 {
		return &Error{"-snapshot-interval", "must be well below the lease TTL"}
	}
	if c.StealAfter < 0 || c.StealAfter >= c.LeaseTTL {
		return &Error{"-steal-after", fmt.Sprintf("%v: want 0 or more and below -lease-ttl %v", c.StealAfter, c.LeaseTTL)}
	}
	if c.Grace < time.Second {
		return &Error{"-grace", fmt.Sprintf("%v: want at least 1s", c.Grace)}
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return &Error{"-allowed-origins", fmt.Sprintf("%q: want scheme://host[:port] or *", o)}
		}
	}
	if c.MaxConns < 1 {
		return &Error{"-max-conns", "must be at least 1"}
	}
	if c.MaxConnsPerIP < 1 || c.MaxConnsPerIP > c.MaxConns {
		return &Error{"-max-conns-per-ip", fmt.Sprintf("%d: want 1 to -max-conns (%d)", c.MaxConnsPerIP, c.MaxConns)}
	}
	if c.ReadLimit < 256 || c.ReadLimit > 1<<20 {
		return &Error{"-read-limit", fmt.Sprintf("%d: want 256 to 1048576 bytes", c.ReadLimit)}
	}
	if c.InputRate < 1 || c.InputBurst < 1 {
		return &Error{"-input-rate", "input rate and burst must be at least 1"}
	}
	if c.DrainTimeout < 0 || c.DrainTimeout > 9*time.Second {
		return &Error{"-drain-timeout", "want 0 to 9s (shutdown must finish within 10 s)"}
	}
	return nil
}

func checkAddr(setting, addr string, _ bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &Error{setting, fmt.Sprintf("%q: want host:port or :port", addr)}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return &Error{setting, fmt.Sprintf("%q: bad port", addr)}
	}
	_ = host
	return nil
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// HostPort splits an address into host and port number.
func HostPort(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, err
	}
	return host, p, nil
}

// Secret returns the session secret and whether it is the development default.
func (c *Config) Secret() (secret []byte, dev bool) {
	if c.SessionSecret == "" {
		return []byte(DevSessionSecret), true
	}
	return []byte(c.SessionSecret), false
}
