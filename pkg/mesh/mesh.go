// Package mesh runs the embedded NATS server of a Tickmesh node and hands out what the rest of the node needs
// from it: an in-process client connection, a JetStream handle, helpers that create or bind the project's
// streams and buckets safely from several nodes at once, and the cluster facts other packages decide on (which
// peers are routed, whether this node sees a majority, who leads a stream).
//
// Contract:
//   - Start returns only when the server accepts connections (or fails with a clear error); the server installs
//     no signal handlers and logs through the given slog.Logger.
//   - JetStream syncs every write to disk before acknowledging it (sync_interval: always) for every stream.
//   - The client port always requires credentials: the node's own in-process user (a password drawn at every
//     start), and the admin, viewer and sys users whose passwords are set (accounts.go says what each may do).
//   - A clustered server authenticates its routes (CLUSTER_USER/CLUSTER_PASSWORD or CLUSTER_TOKEN) unless
//     Config.InsecureRoutes is set; with route TLS, peers are verified against CLUSTER_TLS_CA both ways.
//   - Shutdown puts the server in lame-duck mode, which hands Raft leadership to peers before exiting, and waits
//     for it to finish or for its context to end.
//   - The package owns no goroutines of its own beyond those of the NATS server and client it starts; cached
//     cluster facts are refreshed on demand.
package mesh

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/setting"
)

// ErrNotReady is returned when the embedded server does not accept connections in time.
var ErrNotReady = errors.New("embedded NATS server not ready")

// Mesh is a running embedded NATS server and its in-process client.
type Mesh struct {
	cfg Config
	log *slog.Logger
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream

	mu        sync.Mutex
	cachedAt  time.Time
	routed    map[string]bool
	metaPeers map[string]bool
	metaLead  string
	inbound   map[string]routeIn // cluster.go: inbound messages per routed peer, and when that count last moved
}

// Start starts the embedded server for cfg and connects to it in-process with the node's own user. Errors that
// come from settings (a port in use, a data directory that is not writable) are *setting.Error.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Mesh, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nodePassword, err := randomPassword()
	if err != nil {
		return nil, err
	}
	opts, err := serverOptions(cfg, nodePassword)
	if err != nil {
		return nil, err
	}
	if err := checkPorts(cfg); err != nil {
		return nil, err
	}
	if err := checkDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("create NATS server: %w", err)
	}
	srv.SetLoggerV2(&natsLogger{log: log.With("component", "nats")}, log.Enabled(ctx, slog.LevelDebug), false, false)
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyWait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("%w after %v (see the log for the server's reason)", ErrNotReady, cfg.ReadyWait)
	}
	nc, err := nats.Connect("",
		nats.InProcessServer(srv),
		nats.UserInfo(nodeUser, nodePassword),
		nats.Name(cfg.Name+"-app"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
	)
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("connect in-process: %w", err)
	}
	// Async publishes (the gateway's durable event path) fail after 2 s without an ack and are retried by the
	// caller; without a timeout a publish lost with a stream leader would wait forever.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(2*time.Second), jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("open JetStream: %w", err)
	}
	m := &Mesh{cfg: cfg, log: log, srv: srv, nc: nc, js: js}
	log.Info("nats server started", "name", cfg.Name, "client", clientAddr(srv, cfg), "cluster", cfg.ClusterAddr,
		"routes", len(cfg.Routes), "route_auth", cfg.RouteAuth(), "route_tls", cfg.RouteTLSCert != "", "data", cfg.DataDir,
		"users", m.Users())
	return m, nil
}

// Users lists the client port's users other than the node's own, as "name (account, rights)".
func (m *Mesh) Users() []string {
	var out []string
	if m.cfg.Admin.Password != "" {
		out = append(out, m.cfg.Admin.Name+" ("+AppAccount+", all)")
	}
	if m.cfg.Viewer.Password != "" {
		out = append(out, m.cfg.Viewer.Name+" ("+AppAccount+", read-only)")
	}
	if m.cfg.Sys.Password != "" {
		out = append(out, m.cfg.Sys.Name+" ("+SysAccount+")")
	}
	return out
}

func clientAddr(srv *server.Server, cfg Config) string {
	if cfg.ClientAddr == "off" {
		return "off"
	}
	if a := srv.Addr(); a != nil {
		return a.String()
	}
	return cfg.ClientAddr
}

// Name is this node's (and NATS server's) name.
func (m *Mesh) Name() string { return m.cfg.Name }

// Conn is the in-process client connection. Callers must not close it.
func (m *Mesh) Conn() *nats.Conn { return m.nc }

// JetStream is the JetStream handle on Conn.
func (m *Mesh) JetStream() jetstream.JetStream { return m.js }

// Server is the embedded server, for metrics and tests.
func (m *Mesh) Server() *server.Server { return m.srv }

// ClientURL is a nats:// URL for the client port ("" when -nats off).
func (m *Mesh) ClientURL() string {
	if m.cfg.ClientAddr == "off" {
		return ""
	}
	return m.srv.ClientURL()
}

// ClusterURL is the nats-route:// URL this node listens on for routes ("" when standalone).
func (m *Mesh) ClusterURL() string {
	a := m.srv.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats-route://" + a.String()
}

// Shutdown closes the in-process connection, puts the server in lame-duck mode (Raft leaders are handed over
// before it stops) and waits until the server is down or ctx ends, in which case it shuts down at once.
func (m *Mesh) Shutdown(ctx context.Context) {
	if err := m.nc.FlushTimeout(time.Second); err != nil {
		m.log.Debug("flush before shutdown", "err", err)
	}
	m.nc.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.srv.LameDuckShutdown()
		m.srv.WaitForShutdown()
	}()
	select {
	case <-done:
	case <-ctx.Done():
		m.srv.Shutdown()
		<-done
	}
}

// Kill stops the server abruptly without lame duck (tests use it to stand for a crash).
func (m *Mesh) Kill() {
	m.nc.Close()
	m.srv.Shutdown()
	m.srv.WaitForShutdown()
}

func serverOptions(cfg Config, nodePassword string) (*server.Options, error) {
	opts := &server.Options{}
	if cfg.ServerConfig != "" {
		var err error
		opts, err = server.ProcessConfigFile(cfg.ServerConfig)
		if err != nil {
			return nil, setting.Errorf("-nats-config", "%v", err)
		}
		if len(opts.Accounts) > 0 || len(opts.Users) > 0 || len(opts.Nkeys) > 0 || opts.SystemAccount != "" || opts.Authorization != "" || opts.NoAuthUser != "" {
			return nil, setting.Errorf("-nats-config", "%q defines accounts, users or authorization: the node defines them (ADMIN_*, VIEWER_*, SYS_*)", cfg.ServerConfig)
		}
	}
	opts.ServerName = cfg.Name
	opts.NoSigs = true
	opts.NoLog = false
	opts.JetStream = true
	opts.StoreDir = cfg.DataDir
	opts.SyncAlways = true
	opts.LameDuckDuration = 2 * time.Second
	opts.LameDuckGracePeriod = 100 * time.Millisecond
	opts.HTTPPort = 0

	if cfg.ClientAddr == "off" {
		// No operator port, but lame-duck mode only acts when a client listener exists: listen on an ephemeral
		// loopback port that nothing advertises.
		opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
	} else {
		host, port, err := hostPort(cfg.ClientAddr)
		if err != nil {
			return nil, setting.Errorf("-nats", "%v", err)
		}
		if host == "" {
			host = "0.0.0.0"
		}
		opts.Host, opts.Port = host, port
		if port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	if err := opts.ProcessConfigString(accountsConfig(cfg, nodePassword)); err != nil {
		return nil, fmt.Errorf("configure accounts: %w", err)
	}

	if cfg.ClusterAddr != "" {
		if err := clusterOptions(opts, cfg); err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// clusterOptions sets the route listener, its authentication and TLS, and the seed routes.
func clusterOptions(opts *server.Options, cfg Config) error {
	host, port, err := hostPort(cfg.ClusterAddr)
	if err != nil {
		return setting.Errorf("-cluster", "%v", err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	opts.Cluster.Name = cfg.ClusterName
	opts.Cluster.Host = host
	opts.Cluster.Port = port
	if port == 0 {
		opts.Cluster.Port = server.RANDOM_PORT
	}
	opts.Cluster.Advertise = cfg.ClusterAdvertise
	// Detect a frozen or cut-off peer within a few seconds (a SIGSTOPped peer keeps its TCP routes open).
	opts.Cluster.PingInterval = time.Second
	opts.Cluster.MaxPingsOut = 2
	opts.Cluster.ConnectRetries = 0
	user, pass := cfg.RouteUser, cfg.RoutePassword
	if cfg.RouteToken != "" {
		// A route token is a password with a fixed user name on both sides.
		user, pass = "route", cfg.RouteToken
	}
	// With a user set, the route listener refuses peers that do not present these credentials (nats-server
	// checks them in isRouterAuthorized); without one (-dev-insecure) it accepts any peer.
	opts.Cluster.Username, opts.Cluster.Password = user, pass
	if cfg.RouteTLSCert != "" {
		tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
			CertFile: cfg.RouteTLSCert, KeyFile: cfg.RouteTLSKey, CaFile: cfg.RouteTLSCA,
			Verify: true, Timeout: 2,
		})
		if err != nil {
			return setting.Errorf("CLUSTER_TLS_CERT", "%v", err)
		}
		// Routes dial as well as accept: the peers this node dials are verified with the same CA as those that
		// dial it (as nats-server's own config parsing does for cluster TLS).
		tc.RootCAs = tc.ClientCAs
		opts.Cluster.TLSConfig = tc
		opts.Cluster.TLSTimeout = 2
	}
	opts.Routes = nil
	for _, r := range cfg.Routes {
		u := *r
		u.Scheme = "nats-route"
		if user != "" && u.User == nil {
			u.User = url.UserPassword(user, pass)
		}
		opts.Routes = append(opts.Routes, &u)
	}
	return nil
}

// checkPorts fails with a configuration error naming the setting when a listen address is in use.
func checkPorts(cfg Config) error {
	check := func(name, addr string) error {
		if addr == "" || addr == "off" {
			return nil
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return setting.Errorf(name, "%s: %v", addr, unwrapOpError(err))
		}
		return l.Close()
	}
	if err := check("-nats", cfg.ClientAddr); err != nil {
		return err
	}
	return check("-cluster", cfg.ClusterAddr)
}

func unwrapOpError(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		var se *os.SyscallError
		if errors.As(oe.Err, &se) {
			return se.Err
		}
		return oe.Err
	}
	return err
}

// checkDataDir makes sure the data directory exists and is writable.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return setting.Errorf("-data", "%q: %v", dir, unwrapPathErr(err))
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return setting.Errorf("-data", "%q is not writable: %v", dir, unwrapPathErr(err))
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	return nil
}
