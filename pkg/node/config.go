package node

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tickmesh/tickmesh/games/arena"
	"github.com/tickmesh/tickmesh/games/collect"
	"github.com/tickmesh/tickmesh/pkg/clusterview"
	"github.com/tickmesh/tickmesh/pkg/gateway"
	"github.com/tickmesh/tickmesh/pkg/members"
	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/setting"
	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Config of a node: its own settings and those of the packages it composes. Each package's DefaultConfig is
// the source of its defaults; pkg/config maps flags and the environment onto these fields. The comment of a
// field names its flag and environment variable; secrets come from the environment only.
//
// The node's name and the development switch are set once here: New copies them into the parts (Mesh.Name,
// Room.Node, Gateway.Node, Mesh.InsecureRoutes).
type Config struct {
	Name           string // -name NODE_NAME: unique node (and NATS server) name
	HTTPAddr       string // -http HTTP_ADDR: the public listener: the game, /ws, /healthz, /readyz
	PublicURL      string // -public-url PUBLIC_URL: where browsers reach this node; empty = from HTTPAddr
	AdminAddr      string // -admin-http ADMIN_HTTP_ADDR: the admin listener: /metrics, /api/cluster, the cluster view, /debug/pprof/, /healthz, /readyz
	AdminPublicURL string // -admin-public-url ADMIN_PUBLIC_URL: where operators reach the admin listener; empty = from AdminAddr
	Pprof          bool   // -pprof PPROF: serve Go profiles under /debug/pprof/ on the admin listener
	// DevInsecure is the development switch (-dev-insecure DEV_INSECURE): routes without credentials are
	// accepted and, without SESSION_SECRET, resume tokens are signed with the public DevSessionSecret.
	DevInsecure   bool
	SessionSecret string // SESSION_SECRET: HMAC key of resume tokens, the same on every node
	// Games is which game each room plays (-games GAMES): "pattern=game,...", sim.ParseGameRules. The node
	// runs the games of newGames (the arena and collect); Room.Games is built from this by New.
	Games string
	HTTP  HTTPConfig

	Mesh    mesh.Config
	Room    room.Config
	Gateway gateway.Config
	Members members.Config
	View    clusterview.Config // the cluster view's event stream (/api/cluster/events)
}

// HTTPConfig bounds the HTTP servers' connections. A WebSocket is not bound by them once upgraded: the gateway
// sets its own deadlines (hello, pongs, every write).
type HTTPConfig struct {
	ReadHeaderTimeout time.Duration // a request's headers must arrive within this
	WriteTimeout      time.Duration // a response of the public listener must be written within this
	AdminWriteTimeout time.Duration // a response of the admin listener (a CPU profile takes its seconds)
	IdleTimeout       time.Duration // a keep-alive connection without a request this long is closed
}

// MinSessionSecretLen is the shortest SESSION_SECRET accepted, in bytes.
const MinSessionSecretLen = 32

// DevSessionSecret signs resume tokens under the development switch when SESSION_SECRET is unset: every node
// of a development cluster shares it, and anyone can forge tokens with it.
const DevSessionSecret = "tickmesh-development-secret-do-not-use-in-production"

// DefaultConfig returns the configuration of `go run ./cmd/node` with no flags and no environment (it still
// needs SESSION_SECRET, or the development switch, to start): named after the host, the public listener on
// :8080, the admin listener on loopback, and every part with its package's defaults.
func DefaultConfig() Config {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	return Config{
		Name:      SanitizeName(host),
		HTTPAddr:  ":8080",
		AdminAddr: "127.0.0.1:9090",
		Games:     sim.DefaultGameRules,
		HTTP: HTTPConfig{
			ReadHeaderTimeout: 5 * time.Second,
			WriteTimeout:      30 * time.Second,
			AdminWriteTimeout: 2 * time.Minute,
			IdleTimeout:       60 * time.Second,
		},
		Mesh:    mesh.DefaultConfig(),
		Room:    room.DefaultConfig(""),
		Gateway: gateway.DefaultConfig(""),
		Members: members.DefaultConfig(),
		View:    clusterview.DefaultConfig(),
	}
}

// SanitizeName turns s into a valid node name (wire.ValidNode): lowercase letters, digits, '-' and '_', at most
// wire.MaxNodeLen.
func SanitizeName(s string) string {
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
	if len(out) > wire.MaxNodeLen {
		out = out[:wire.MaxNodeLen]
	}
	return out
}

// Resolved is c with its derived fields filled in: the node's name and the development switch copied into
// the parts, the data directory (data/<name>) and the public URLs derived from the listen addresses when
// unset, the room's pause threshold raised to three tick periods for slow tick rates, and the cluster view's
// staleness made membership's.
func (c Config) Resolved() Config {
	c.Mesh.Name, c.Room.Node, c.Gateway.Node = c.Name, c.Name, c.Name
	c.Mesh.InsecureRoutes = c.DevInsecure
	if c.Mesh.DataDir == "" {
		c.Mesh.DataDir = filepath.Join("data", c.Name)
	}
	if c.PublicURL == "" {
		c.PublicURL = urlFor(c.HTTPAddr)
	}
	if c.AdminPublicURL == "" {
		c.AdminPublicURL = urlFor(c.AdminAddr)
	}
	if c.Room.TickRate > 0 {
		c.Room.PauseThreshold = max(c.Room.PauseThreshold, 3*time.Second/time.Duration(c.Room.TickRate))
	}
	if c.Members.Stale > 0 {
		c.View.Stale = c.Members.Stale
	}
	return c
}

// urlFor is the http base URL of a listen address: an unspecified host becomes the host name.
func urlFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
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

// Secret returns the key that signs resume tokens: SESSION_SECRET, or the public development key under the
// development switch.
func (c Config) Secret() []byte {
	if c.SessionSecret == "" && c.DevInsecure {
		return []byte(DevSessionSecret)
	}
	return []byte(c.SessionSecret)
}

// Insecurities lists what the development switch opens in c, one line each; nil when it opens nothing.
func (c Config) Insecurities() []string {
	if !c.DevInsecure {
		return nil
	}
	var out []string
	if c.Mesh.Clustered() && !c.Mesh.RouteAuth() {
		out = append(out, fmt.Sprintf("routes on %s accept ANY peer without credentials: a stranger's node can join the cluster, read and write every stream and bucket and become a JetStream peer (set CLUSTER_USER/CLUSTER_PASSWORD or CLUSTER_TOKEN)", c.Mesh.ClusterAddr))
	}
	if c.SessionSecret == "" {
		out = append(out, "resume tokens are signed with the PUBLIC development key: anyone can forge a token for any player id and take over that player's session (set SESSION_SECRET)")
	}
	if len(out) == 0 {
		out = append(out, "-dev-insecure is set but opens nothing here: route credentials and SESSION_SECRET are set")
	}
	return out
}

// Validate checks every setting of c.Resolved() and the relations between them, naming the setting in its
// error (*setting.Error). It checks that files named by settings exist; it does not touch the network.
func (c Config) Validate() error {
	c = c.Resolved()
	if !wire.ValidNode(c.Name) {
		return setting.Errorf("-name", "%q: use lowercase letters, digits, '-' and '_' (at most 64)", c.Name)
	}
	if err := setting.Addr("-http", c.HTTPAddr); err != nil {
		return err
	}
	if err := setting.Addr("-admin-http", c.AdminAddr); err != nil {
		return err
	}
	if c.AdminAddr == c.HTTPAddr && !portZero(c.HTTPAddr) {
		return setting.Errorf("-admin-http", "%q is also -http: the admin listener needs its own address", c.AdminAddr)
	}
	for _, u := range []struct{ name, url string }{{"-public-url", c.PublicURL}, {"-admin-public-url", c.AdminPublicURL}} {
		if err := checkURL(u.name, u.url); err != nil {
			return err
		}
	}
	switch {
	case c.SessionSecret == "" && !c.DevInsecure:
		return setting.Errorf("SESSION_SECRET", "not set: the key that signs resume tokens, the same on every node (at least %d random bytes, e.g. `openssl rand -hex 32`); -dev-insecure uses a public development key", MinSessionSecretLen)
	case c.SessionSecret != "":
		if err := setting.Secret("SESSION_SECRET", c.SessionSecret, MinSessionSecretLen); err != nil {
			return err
		}
	}
	h := c.HTTP
	if h.ReadHeaderTimeout <= 0 || h.WriteTimeout <= 0 || h.AdminWriteTimeout <= 0 || h.IdleTimeout <= 0 {
		return setting.Errorf("http", "timeouts must be positive: %+v", h)
	}
	if err := c.Mesh.Validate(); err != nil {
		return err
	}
	if err := validateRoom(c.Room); err != nil {
		return err
	}
	if _, err := newGames(c); err != nil {
		return err
	}
	if err := validateGateway(c.Gateway); err != nil {
		return err
	}
	if err := c.View.Validate(); err != nil {
		return setting.Errorf("cluster view", "%v", err)
	}
	return nil
}

func validateRoom(r room.Config) error {
	if r.TickRate < 1 || r.TickRate > 120 {
		return setting.Errorf("-tick-rate", "%d: want 1 to 120 ticks per second", r.TickRate)
	}
	if r.LeaseTTL < time.Second || r.LeaseTTL%time.Second != 0 {
		return setting.Errorf("-lease-ttl", "%v: want whole seconds, at least 1s (JetStream TTLs are whole seconds)", r.LeaseTTL)
	}
	if r.SnapshotInterval < 50*time.Millisecond {
		return setting.Errorf("-snapshot-interval", "%v: want at least 50ms", r.SnapshotInterval)
	}
	if r.SnapshotInterval >= r.LeaseTTL*10 {
		return setting.Errorf("-snapshot-interval", "must be well below the lease TTL")
	}
	if r.StealAfter < 0 || r.StealAfter >= r.LeaseTTL {
		return setting.Errorf("-steal-after", "%v: want 0 or more and below -lease-ttl %v", r.StealAfter, r.LeaseTTL)
	}
	if r.Sim.GraceTicks < int64(r.TickRate) {
		return setting.Errorf("-grace", "%v: want at least 1s", time.Duration(r.Sim.GraceTicks)*time.Second/time.Duration(r.TickRate))
	}
	if r.Sim.TombstoneCap < 1 {
		return setting.Errorf("-max-tombstones", "%d: want at least 1", r.Sim.TombstoneCap)
	}
	if err := r.Validate(); err != nil {
		return setting.Errorf("rooms", "%v", err)
	}
	return nil
}

func validateGateway(g gateway.Config) error {
	for _, o := range g.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return setting.Errorf("-allowed-origins", "%q: want scheme://host[:port] or *", o)
		}
	}
	switch {
	case g.MaxConns < 1:
		return setting.Errorf("-max-conns", "must be at least 1")
	case g.MaxConnsPerIP < 1 || g.MaxConnsPerIP > g.MaxConns:
		return setting.Errorf("-max-conns-per-ip", "%d: want 1 to -max-conns (%d)", g.MaxConnsPerIP, g.MaxConns)
	case g.MaxRooms < 1:
		return setting.Errorf("-max-rooms", "must be at least 1")
	case g.MaxRoomsPerIP < 1 || g.MaxRoomsPerIP > g.MaxRooms:
		return setting.Errorf("-max-rooms-per-ip", "%d: want 1 to -max-rooms (%d)", g.MaxRoomsPerIP, g.MaxRooms)
	case g.ReadLimit < 256 || g.ReadLimit > 1<<20:
		return setting.Errorf("-read-limit", "%d: want 256 to 1048576 bytes", g.ReadLimit)
	case g.InputRate < 1 || g.InputBurst < 1:
		return setting.Errorf("-input-rate", "input rate and burst must be at least 1")
	case g.DrainTimeout < 0 || g.DrainTimeout > 9*time.Second:
		return setting.Errorf("-drain-timeout", "want 0 to 9s (shutdown must finish within 10 s)")
	case g.TokenTTL < time.Minute:
		return setting.Errorf("-token-ttl", "%v: want at least 1m", g.TokenTTL)
	case g.BatchWindow < 0 || g.BatchWindow > 100*time.Millisecond:
		return setting.Errorf("-input-batch-window", "%v: want 0 to 100ms", g.BatchWindow)
	case g.BatchMax < 1 || g.BatchMax > wire.MaxBatch:
		return setting.Errorf("-input-batch-max", "%d: want 1 to %d", g.BatchMax, wire.MaxBatch)
	case g.MaxPending < g.BatchMax:
		return setting.Errorf("-max-pending-inputs", "%d: want at least -input-batch-max (%d)", g.MaxPending, g.BatchMax)
	}
	if err := g.Validate(); err != nil {
		return setting.Errorf("gateway", "%v", err)
	}
	return nil
}

// newGames is the games this node runs, with the rule that says which room plays which (-games): the arena,
// and collect with rounds of a minute at the room's tick rate.
func newGames(c Config) (*sim.Games, error) {
	a, err := arena.New(arena.DefaultConfig())
	if err != nil {
		return nil, err
	}
	cc := collect.DefaultConfig()
	cc.RoundTicks = 60 * int64(max(c.Room.TickRate, 1))
	col, err := collect.New(cc)
	if err != nil {
		return nil, err
	}
	rules, err := sim.ParseGameRules(c.Games)
	if err != nil {
		return nil, setting.Errorf("-games", "%q: %v", c.Games, err)
	}
	gs, err := sim.NewGames(rules, a, col)
	if err != nil {
		return nil, setting.Errorf("-games", "%q: %v", c.Games, err)
	}
	return gs, nil
}

func checkURL(name, raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return setting.Errorf(name, "%q: want http(s)://host[:port]", raw)
	}
	return nil
}

func portZero(addr string) bool {
	_, p, err := net.SplitHostPort(addr)
	return err == nil && p == "0"
}
