// Package config maps a node process's flags and environment onto its configuration: node.Config, which holds
// the configurations of the packages a node composes (mesh, room, gateway, members), and the few settings of
// the process itself (logging, the GC target). Flags win over the environment, which wins over the defaults.
//
// It restates no default: every flag's default is the value the package's DefaultConfig gives its field, so
// that a change of a package default reaches every node. It also does not check settings beyond parsing them:
// node.Config.Validate does, naming the setting in a *setting.Error.
//
// Secrets (route credentials, NATS users' passwords, SESSION_SECRET) come from the environment only, never
// from flags, which show in `ps`.
//
// The package is pure: it reads only what it is given (arguments, an environment lookup function, the file
// system for the checks node.Config.Validate documents) and owns no goroutines.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/setting"
)

// Error is a configuration problem: which setting and what is wrong with it. cmd/node prints it on one line and
// exits with code 2.
type Error = setting.Error

// ErrHelp is returned by Load when -h or -help was given.
var ErrHelp = flag.ErrHelp

// Config is the whole configuration of one node process.
type Config struct {
	Node      node.Config
	LogLevel  string // -log-level LOG_LEVEL: debug, info, warn, error
	LogFormat string // -log-format LOG_FORMAT: text or json
	GCPercent int    // -gc-percent GC_PERCENT: the Go GC target (debug.SetGCPercent); 0 = leave the runtime's (GOGC)
}

// Default returns the configuration of `go run ./cmd/node` with no flags and no environment: node.DefaultConfig
// and the process defaults. (It does not validate: without SESSION_SECRET or -dev-insecure a node refuses it.)
func Default() Config {
	return Config{Node: node.DefaultConfig(), LogLevel: "info", LogFormat: "text", GCPercent: DefaultGCPercent}
}

// DefaultGCPercent is the node's GC target unless GOGC or -gc-percent says otherwise. A node holds many small,
// long-lived objects per socket; at Go's default of 100 about half its heap is headroom for garbage. 50 measured
// no CPU difference at 1,000 sockets × 20 ticks/s and about 30 % less RSS (docs/BENCHMARKS.md, Fan-out).
const DefaultGCPercent = 50

// removedEnv are environment variables that are no longer read, and what replaces each: a node must not start
// while its operator believes a setting protects it.
var removedEnv = map[string]string{
	"CLIENT_USER":     "no longer read: the NATS client port's users are ADMIN_USER/ADMIN_PASSWORD (every right) and VIEWER_USER/VIEWER_PASSWORD (read-only)",
	"CLIENT_PASSWORD": "no longer read: the NATS client port's users are ADMIN_USER/ADMIN_PASSWORD (every right) and VIEWER_USER/VIEWER_PASSWORD (read-only)",
}

// loader binds flags to c's fields, with the environment's values (when set) as their defaults.
type loader struct {
	c      *Config
	fs     *flag.FlagSet
	getenv func(string) string
	envErr error // the first unparsable environment value

	routes, origins, proxies string
	grace                    time.Duration
}

func newLoader(getenv func(string) string) *loader {
	c := Default()
	l := &loader{c: &c, fs: flag.NewFlagSet("tickmesh-node", flag.ContinueOnError), getenv: getenv}
	l.fs.SetOutput(io.Discard)
	n := &c.Node
	// -grace is a duration; the room counts it in ticks.
	l.grace = time.Duration(n.Room.Sim.GraceTicks) * time.Second / time.Duration(n.Room.TickRate)

	l.strFlag(&n.Name, "name", "NODE_NAME", "node name, unique in the cluster")
	l.strFlag(&n.HTTPAddr, "http", "HTTP_ADDR", "public listen address: the game, /ws, /healthz, /readyz")
	l.strFlag(&n.PublicURL, "public-url", "PUBLIC_URL", "base URL where browsers reach this node (default from -http)")
	l.strFlag(&n.AdminAddr, "admin-http", "ADMIN_HTTP_ADDR", "admin listen address: /metrics, /api/cluster, /cluster.html, /debug/pprof/ (with -pprof), /healthz, /readyz")
	l.strFlag(&n.AdminPublicURL, "admin-public-url", "ADMIN_PUBLIC_URL", "base URL where operators reach the admin listener (default from -admin-http)")
	l.boolFlag(&n.DevInsecure, "dev-insecure", "DEV_INSECURE", "DEVELOPMENT ONLY: accept routes without credentials, and sign resume tokens with a public key when SESSION_SECRET is unset")
	l.boolFlag(&n.Pprof, "pprof", "PPROF", "serve Go profiles under /debug/pprof/ on the admin listener (lock contention sampled too)")
	l.strFlag(&n.Mesh.ClientAddr, "nats", "NATS_ADDR", "NATS client listen address for operators, or off")
	l.strFlag(&n.Mesh.ClusterAddr, "cluster", "CLUSTER_ADDR", "NATS cluster (route) listen address; empty = standalone")
	l.strFlag(&n.Mesh.ClusterAdvertise, "cluster-advertise", "CLUSTER_ADVERTISE", "route address peers should dial (behind NAT or a proxy); empty = the -cluster address")
	l.strFlag(&l.routes, "routes", "CLUSTER_ROUTES", "comma-separated seed routes, host:port or nats-route:// URLs")
	l.strFlag(&n.Mesh.ClusterName, "cluster-name", "CLUSTER_NAME", "NATS cluster name")
	l.strFlag(&n.Mesh.DataDir, "data", "DATA_DIR", "JetStream data directory (default ./data/<name>)")
	l.strFlag(&n.Mesh.ServerConfig, "nats-config", "NATS_CONFIG", "nats-server config file applied before these settings (tuning only)")
	l.intFlag(&n.Mesh.Replicas, "replicas", "REPLICAS", "replicas of streams and buckets; 0 = min(3, cluster size)")
	l.durFlag(&n.Mesh.ReadyWait, "ready-timeout", "READY_TIMEOUT", "how long to wait for the embedded NATS server")
	l.strFlag(&c.LogLevel, "log-level", "LOG_LEVEL", "debug, info, warn or error")
	l.strFlag(&c.LogFormat, "log-format", "LOG_FORMAT", "text or json")
	l.intFlag(&c.GCPercent, "gc-percent", "GC_PERCENT", "Go GC target percent (10-1000); 0 = the runtime's (GOGC); unless GOGC is set")
	l.intFlag(&n.Room.TickRate, "tick-rate", "TICK_RATE", "game ticks per second")
	l.durFlag(&n.Room.LeaseTTL, "lease-ttl", "LEASE_TTL", "room lease time to live (whole seconds)")
	l.durFlag(&n.Room.SnapshotInterval, "snapshot-interval", "SNAPSHOT_INTERVAL", "time between room snapshots")
	l.durFlag(&n.Room.BundleWindow, "tick-bundle-window", "TICK_BUNDLE_WINDOW", "longest a tick waits for other rooms' ticks to share one NATS message (a bundle) with them, at most a tenth of the tick period; 0 = each tick at once")
	l.durFlag(&n.Room.StealAfter, "steal-after", "STEAL_AFTER", "how long an owner's node must be unreachable before its lease is taken over")
	l.durFlag(&l.grace, "grace", "GRACE", "a disconnected player leaves its room after this")
	l.intFlag(&n.Room.Sim.TombstoneCap, "max-tombstones", "MAX_TOMBSTONES", "players who left that a room remembers (to ignore their replayed events), oldest dropped first")
	l.strFlag(&n.Games, "games", "GAMES", "which game each room plays: pattern=game,... where a pattern is a room name, a prefix followed by *, or *")
	l.strFlag(&l.origins, "allowed-origins", "ALLOWED_ORIGINS", "comma-separated allowed WebSocket origins; empty = same host")
	l.strFlag(&l.proxies, "trusted-proxies", "TRUSTED_PROXIES", "comma-separated IPs or CIDRs of proxies whose X-Real-IP / X-Forwarded-For name the client; empty = none")
	l.intFlag(&n.Gateway.MaxConns, "max-conns", "MAX_CONNS", "maximum WebSocket connections on this node")
	l.intFlag(&n.Gateway.MaxConnsPerIP, "max-conns-per-ip", "MAX_CONNS_PER_IP", "maximum WebSocket connections per client IP")
	l.intFlag(&n.Gateway.MaxRooms, "max-rooms", "MAX_ROOMS", "maximum rooms with sockets on this node")
	l.intFlag(&n.Gateway.MaxRoomsPerIP, "max-rooms-per-ip", "MAX_ROOMS_PER_IP", "maximum distinct rooms one client IP has sockets in")
	l.int64Flag(&n.Gateway.ReadLimit, "read-limit", "READ_LIMIT", "maximum size of one client frame in bytes")
	l.floatFlag(&n.Gateway.InputRate, "input-rate", "INPUT_RATE", "inputs per second per connection")
	l.intFlag(&n.Gateway.InputBurst, "input-burst", "INPUT_BURST", "input burst per connection")
	l.durFlag(&n.Gateway.DrainTimeout, "drain-timeout", "DRAIN_TIMEOUT", "time given to sockets to move away on shutdown")
	l.durFlag(&n.Gateway.TokenTTL, "token-ttl", "TOKEN_TTL", "a resume token older than this is refused (close 4501); every welcome renews it")
	l.durFlag(&n.Gateway.BatchWindow, "input-batch-window", "INPUT_BATCH_WINDOW", "longest a player event waits for others of its room before they go to the owner and to INPUTS as one batch")
	l.intFlag(&n.Gateway.BatchMax, "input-batch-max", "INPUT_BATCH_MAX", "most events in one batch; 1 = one event per message, as nodes without batches write and read (rolling upgrades)")
	l.intFlag(&n.Gateway.MaxPending, "max-pending-inputs", "MAX_PENDING_INPUTS", "most inputs this node holds that INPUTS has not stored yet; beyond it inputs are answered not_ready")
	return l
}

func (l *loader) setEnvErr(err error) {
	if l.envErr == nil {
		l.envErr = err
	}
}

func (l *loader) strFlag(p *string, name, env, usage string) {
	if v := l.getenv(env); v != "" {
		*p = v
	}
	l.fs.StringVar(p, name, *p, usage+" (env "+env+")")
}

func (l *loader) intFlag(p *int, name, env, usage string) {
	if v := l.getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			l.setEnvErr(&Error{Setting: env, Problem: fmt.Sprintf("%q is not an integer", v)})
		}
		*p = n
	}
	l.fs.IntVar(p, name, *p, usage+" (env "+env+")")
}

func (l *loader) int64Flag(p *int64, name, env, usage string) {
	if v := l.getenv(env); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			l.setEnvErr(&Error{Setting: env, Problem: fmt.Sprintf("%q is not an integer", v)})
		}
		*p = n
	}
	l.fs.Int64Var(p, name, *p, usage+" (env "+env+")")
}

func (l *loader) floatFlag(p *float64, name, env, usage string) {
	if v := l.getenv(env); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			l.setEnvErr(&Error{Setting: env, Problem: fmt.Sprintf("%q is not a number", v)})
		}
		*p = f
	}
	l.fs.Float64Var(p, name, *p, usage+" (env "+env+")")
}

func (l *loader) boolFlag(p *bool, name, env, usage string) {
	if v := l.getenv(env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			l.setEnvErr(&Error{Setting: env, Problem: fmt.Sprintf("%q is not a boolean (true or false)", v)})
		}
		*p = b
	}
	l.fs.BoolVar(p, name, *p, usage+" (env "+env+")")
}

func (l *loader) durFlag(p *time.Duration, name, env, usage string) {
	if v := l.getenv(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			l.setEnvErr(&Error{Setting: env, Problem: fmt.Sprintf("%q is not a duration (like 1s or 500ms)", v)})
		}
		*p = d
	}
	l.fs.DurationVar(p, name, *p, usage+" (env "+env+")")
}

// Load reads args (without the program name) and the environment through getenv. Flags win over environment
// variables, which win over defaults. The result has been validated.
func Load(args []string, getenv func(string) string) (Config, error) {
	l := newLoader(getenv)
	c, n := l.c, &l.c.Node
	if err := l.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return *c, ErrHelp
		}
		return *c, flagError(err)
	}
	if l.envErr != nil {
		return *c, l.envErr
	}
	if l.fs.NArg() > 0 {
		return *c, &Error{Setting: "arguments", Problem: fmt.Sprintf("unexpected %q (settings are flags like -name n1)", l.fs.Arg(0))}
	}
	for _, k := range []string{"CLIENT_USER", "CLIENT_PASSWORD"} {
		if getenv(k) != "" {
			return *c, &Error{Setting: k, Problem: removedEnv[k]}
		}
	}
	gcSet := getenv("GC_PERCENT") != ""
	l.fs.Visit(func(f *flag.Flag) { gcSet = gcSet || f.Name == "gc-percent" })
	if !gcSet && getenv("GOGC") != "" {
		c.GCPercent = 0 // GOGC, the Go runtime's own setting, wins over our default
	}
	n.Room.Sim.GraceTicks = int64(l.grace * time.Duration(n.Room.TickRate) / time.Second)

	n.Mesh.RouteUser = getenv("CLUSTER_USER")
	n.Mesh.RoutePassword = getenv("CLUSTER_PASSWORD")
	n.Mesh.RouteToken = getenv("CLUSTER_TOKEN")
	n.Mesh.RouteTLSCert = getenv("CLUSTER_TLS_CERT")
	n.Mesh.RouteTLSKey = getenv("CLUSTER_TLS_KEY")
	n.Mesh.RouteTLSCA = getenv("CLUSTER_TLS_CA")
	if v := getenv("ADMIN_USER"); v != "" {
		n.Mesh.Admin.Name = v
	}
	n.Mesh.Admin.Password = getenv("ADMIN_PASSWORD")
	if v := getenv("VIEWER_USER"); v != "" {
		n.Mesh.Viewer.Name = v
	}
	n.Mesh.Viewer.Password = getenv("VIEWER_PASSWORD")
	if v := getenv("SYS_USER"); v != "" {
		n.Mesh.Sys.Name = v
	}
	n.Mesh.Sys.Password = getenv("SYS_PASSWORD")
	n.SessionSecret = getenv("SESSION_SECRET")

	var err error
	if n.Mesh.Routes, err = ParseRoutes(l.routes); err != nil {
		return *c, err
	}
	n.Gateway.AllowedOrigins = splitList(l.origins)
	if n.Gateway.TrustedProxies, err = ParsePrefixes(l.proxies); err != nil {
		return *c, err
	}
	*n = n.Resolved()
	return *c, c.Validate()
}

// Usage writes the flags with their defaults (the packages' defaults) to w.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tickmesh-node [flags]; every flag also has an environment variable, flags win.")
	fmt.Fprintln(w, "Secrets come from the environment only; see README.md (Settings) and docs/SECURITY.md.")
	l := newLoader(func(string) string { return "" })
	l.fs.SetOutput(w)
	l.fs.PrintDefaults()
}

// Flags lists the flag set Load parses, with the packages' defaults (for tests and documentation).
func Flags() *flag.FlagSet { return newLoader(func(string) string { return "" }).fs }

func flagError(err error) error {
	msg := err.Error()
	// The flag package says "flag provided but not defined: -x" or "invalid value "v" for flag -x: ...".
	if rest, ok := strings.CutPrefix(msg, "flag provided but not defined: "); ok {
		return &Error{Setting: rest, Problem: "unknown flag"}
	}
	if i := strings.Index(msg, " for flag -"); i >= 0 {
		name := msg[i+len(" for flag "):]
		if j := strings.Index(name, ":"); j >= 0 {
			name = name[:j]
		}
		return &Error{Setting: name, Problem: msg}
	}
	return &Error{Setting: "flags", Problem: msg}
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
			return nil, &Error{Setting: "-routes", Problem: fmt.Sprintf("route %q: %v", r, err)}
		}
		if u.Scheme != "nats-route" && u.Scheme != "nats" && u.Scheme != "tls" {
			return nil, &Error{Setting: "-routes", Problem: fmt.Sprintf("route %q: scheme must be nats-route", r)}
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" {
			return nil, &Error{Setting: "-routes", Problem: fmt.Sprintf("route %q: want host:port", r)}
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, &Error{Setting: "-routes", Problem: fmt.Sprintf("route %q: bad port %q", r, port)}
		}
		out = append(out, u)
	}
	return out, nil
}

// ParsePrefixes parses a comma-separated list of IP addresses and CIDR prefixes (TRUSTED_PROXIES); an address
// is a prefix of its full length.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range splitList(s) {
		if p, err := netip.ParsePrefix(item); err == nil {
			if p != p.Masked() {
				return nil, &Error{Setting: "-trusted-proxies", Problem: fmt.Sprintf("%q has host bits set: did you mean %s?", item, p.Masked())}
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil {
			return nil, &Error{Setting: "-trusted-proxies", Problem: fmt.Sprintf("%q: want an IP address or a CIDR prefix like 10.0.0.0/8", item)}
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
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

// Validate checks the process settings and then the node's (node.Config.Validate).
func (c *Config) Validate() error {
	if c.GCPercent != 0 && (c.GCPercent < 10 || c.GCPercent > 1000) {
		return &Error{Setting: "-gc-percent", Problem: fmt.Sprintf("%d: use 10-1000, or 0 for the Go runtime's setting (GOGC)", c.GCPercent)}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return &Error{Setting: "-log-level", Problem: fmt.Sprintf("%q: want debug, info, warn or error", c.LogLevel)}
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return &Error{Setting: "-log-format", Problem: fmt.Sprintf("%q: want text or json", c.LogFormat)}
	}
	return c.Node.Validate()
}
