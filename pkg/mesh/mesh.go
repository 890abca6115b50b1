// Package mesh runs the embedded NATS server of a Tickmesh node and hands out what the rest of the node needs
// from it: an in-process client connection, a JetStream handle, helpers that create or bind the project's
// streams and buckets safely from several nodes at once, and the cluster facts other packages decide on (which
// peers are routed, whether this node sees a majority, who leads a stream).
//
// Contract:
//   - Start returns only when the server accepts connections (or fails with a clear error); the server installs
//     no signal handlers and logs through the given slog.Logger.
//   - JetStream syncs every write to disk before acknowledging it (sync_interval: always) for every stream.
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
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/config"
)

// AppAccount is the NATS account that holds the game's subjects, streams and buckets.
const AppAccount = "TICKMESH"

// SysAccount is the NATS system account; operators log in to it with SYS_USER/SYS_PASSWORD.
const SysAccount = "SYS"

// ErrNotReady is returned when the embedded server does not accept connections in time.
var ErrNotReady = errors.New("embedded NATS server not ready")

// Mesh is a running embedded NATS server and its in-process client.
type Mesh struct {
	cfg config.Config
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

// Start starts the embedded server for cfg and connects to it in-process.
func Start(ctx context.Context, cfg config.Config, log *slog.Logger) (*Mesh, error) {
	opts, err := serverOptions(cfg)
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
	srv.SetLoggerV2(&natsLogger{log: log.With("component", "nats")}, cfg.LogLevel == "debug", false, false)
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyWait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("%w after %v (see the log for the server's reason)", ErrNotReady, cfg.ReadyWait)
	}
	copts := []nats.Option{
		nats.InProcessServer(srv),
		nats.Name(cfg.Name + "-app"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100 * time.Millisecond),
	}
	if cfg.ClientUser != "" {
		copts = append(copts, nats.UserInfo(cfg.ClientUser, cfg.ClientPassword))
	}
	nc, err := nats.Connect("", copts...)
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
	log.Info("nats server started", "name", cfg.Name, "client", clientAddr(srv, cfg), "cluster", cfg.ClusterAddr, "routes", len(cfg.Routes), "data", cfg.DataDir)
	return m, nil
}

func clientAddr(srv *server.Server, cfg config.Config) string {
	if cfg.NATSAddr == "off" {
		return "off"
	}
	if a := srv.Addr(); a != nil {
		return a.String()
	}
	return cfg.NATSAddr
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
	if m.cfg.NATSAddr == "off" {
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

func serverOptions(cfg config.Config) (*server.Options, error) {
	opts := &server.Options{}
	if cfg.NATSConfig != "" {
		var err error
		opts, err = server.ProcessConfigFile(cfg.NATSConfig)
		if err != nil {
			return nil, &config.Error{Setting: "-nats-config", Problem: err.Error()}
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

	if cfg.NATSAddr == "off" {
		// No operator port, but lame-duck mode only acts when a client listener exists: listen on an ephemeral
		// loopback port that nothing advertises.
		opts.Host, opts.Port = "127.0.0.1", server.RANDOM_PORT
		opts.NoHeaderSupport = false
	} else {
		host, port, err := config.HostPort(cfg.NATSAddr)
		if err != nil {
			return nil, &config.Error{Setting: "-nats", Problem: err.Error()}
		}
		if host == "" {
			host = "0.0.0.0"
		}
		opts.Host, opts.Port = host, port
		if port == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}

	if len(opts.Accounts) == 0 {
		if err := opts.ProcessConfigString(accountsConfig(cfg)); err != nil {
			return nil, fmt.Errorf("configure accounts: %w", err)
		}
	}

	if cfg.ClusterAddr != "" {
		host, port, err := config.HostPort(cfg.ClusterAddr)
		if err != nil {
			return nil, &config.Error{Setting: "-cluster", Problem: err.Error()}
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
		opts.Cluster.Advertise = cfg.ClusterAdv
		// Detect a frozen or cut-off peer within a few seconds (a SIGSTOPped peer keeps its TCP routes open).
		opts.Cluster.PingInterval = time.Second
		opts.Cluster.MaxPingsOut = 2
		opts.Cluster.ConnectRetries = 0
		user, pass := cfg.ClusterUser, cfg.ClusterPassword
		if cfg.ClusterToken != "" {
			// A route token is a password with a fixed user name on both sides.
			user, pass = "route", cfg.ClusterToken
		}
		opts.Cluster.Username, opts.Cluster.Password = user, pass
		if cfg.ClusterTLSCert != "" {
			tc, err := server.GenTLSConfig(&server.TLSConfigOpts{
				CertFile: cfg.ClusterTLSCert, KeyFile: cfg.ClusterTLSKey, CaFile: cfg.ClusterTLSCA,
				Verify: cfg.ClusterTLSCA != "", Timeout: 2,
			})
			if err != nil {
				return nil, &config.Error{Setting: "CLUSTER_TLS_CERT", Problem: err.Error()}
			}
			// Routes dial as well as accept: verify the peers we dial with the same CA (as nats-server's own
			// config parsing does for cluster TLS).
			if tc.ClientCAs != nil {
				tc.RootCAs = tc.ClientCAs
			}
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
	}
	return opts, nil
}

// accountsConfig is the accounts block of the embedded server: the app account (JetStream enabled) whose user
// clients without credentials become (unless CLIENT_USER is set), and the system account for operators.
func accountsConfig(cfg config.Config) string {
	appUser, appPass := "app", randomPassword()
	if cfg.ClientUser != "" {
		appUser, appPass = cfg.ClientUser, cfg.ClientPassword
	}
	sysPass := cfg.SysPassword
	if sysPass == "" {
		sysPass = config.DevSysPassword
	}
	q := strconv.Quote
	s := fmt.Sprintf(`accounts: {
  %s: { jetstream: enabled, users: [ {user: %s, password: %s} ] }
  %s: { users: [ {user: %s, password: %s} ] }
}
system_account: %s
`, AppAccount, q(appUser), q(appPass), SysAccount, q(cfg.SysUser), q(sysPass), SysAccount)
	if cfg.ClientUser == "" {
		s += "no_auth_user: " + q(appUser) + "\n"
	}
	return s
}

func randomPassword() string {
	// The in-process connection authenticates as NoAuthUser, so this password is never used by anyone; it only
	// keeps the app user from having a guessable one.
	return strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.Itoa(os.Getpid())
}

// checkPorts fails with a configuration error naming the setting when a listen address is in use.
func checkPorts(cfg config.Config) error {
	check := func(setting, addr string) error {
		if addr == "" || addr == "off" {
			return nil
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return &config.Error{Setting: setting, Problem: fmt.Sprintf("%s: %v", addr, unwrapOpError(err))}
		}
		return l.Close()
	}
	if err := check("-nats", cfg.NATSAddr); err != nil {
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
		return &config.Error{Setting: "-data", Problem: fmt.Sprintf("%q: %v", dir, unwrapPathErr(err))}
	}
	f, err := os.CreateTemp(dir, ".write-check-*")
	if err != nil {
		return &config.Error{Setting: "-data", Problem: fmt.Sprintf("%q is not writable: %v", dir, unwrapPathErr(err))}
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	if abs, err := filepath.Abs(dir); err == nil {
		_ = abs
	}
	return nil
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
