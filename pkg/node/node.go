// Package node composes one Tickmesh node: the embedded NATS server (pkg/mesh), the membership registry
// (pkg/members), room ownership (pkg/room), the WebSocket gateway (pkg/gateway) and the HTTP server that serves
// /healthz, /readyz, /metrics, /api/cluster, /ws and the browser client.
//
// New binds the HTTP listener and starts the NATS server, so that configuration problems (ports in use, data
// directory not writable) surface before Run. Run owns every long-running part through an errgroup and, when its
// context ends, shuts them down in order: stop accepting and drain WebSockets, release room leases, stop the
// HTTP server, delete the heartbeat, then lame-duck the NATS server.
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/tickmesh/tickmesh/frontend"
	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/gateway"
	"github.com/tickmesh/tickmesh/pkg/members"
	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/session"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Node is one running Tickmesh node.
type Node struct {
	cfg      config.Config
	log      *slog.Logger
	ln       net.Listener
	mesh     *mesh.Mesh
	members  *members.Registry
	prober   *prober
	rooms    *room.Manager
	gateway  *gateway.Gateway
	registry *prometheus.Registry
	mux      *http.ServeMux
	httpSrv  *http.Server
	serving  chan error  // the HTTP server's Serve result, started by New
	started  atomic.Bool // setup done: the mux serves; before that, 503 (and /healthz 200)
	joined   atomic.Bool // readiness saw every routed peer ready in the membership view once (readiness)
	parts    []part      // long-running parts started by Run, in start order
}

// part is a long-running component of the node.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// New validates cfg, binds the HTTP listener, starts the embedded NATS server and binds the project's streams
// and buckets. Errors that come from settings are *config.Error.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, &config.Error{Setting: "-http", Problem: fmt.Sprintf("%s: %v", cfg.HTTPAddr, err)}
	}
	if cfg.PublicURL == "" || portZero(cfg.HTTPAddr) {
		cfg.PublicURL = publicURLFor(cfg.PublicURL, ln.Addr())
	}
	m, err := mesh.Start(ctx, cfg, log)
	if err != nil {
		ln.Close()
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, ln: ln, mesh: m, registry: prometheus.NewRegistry(), mux: http.NewServeMux(),
		serving: make(chan error, 1)}
	n.httpSrv = &http.Server{
		Handler:           http.HandlerFunc(n.serveHTTP),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	// Serve at once, so that a load balancer gets a quick 503 rather than a hanging connection while the node
	// joins the cluster.
	go func() { n.serving <- n.httpSrv.Serve(ln) }()
	if err := n.setup(ctx); err != nil {
		n.httpSrv.Close()
		<-n.serving
		m.Shutdown(context.Background())
		return nil, err
	}
	n.started.Store(true)
	return n, nil
}

// serveHTTP answers 503 (and /healthz 200) until setup is done, then hands requests to the mux.
func (n *Node) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if n.started.Load() {
		n.mux.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == "/healthz" {
		n.handleHealthz(w, r)
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, Readiness{Node: n.cfg.Name, Missing: []string{"starting: joining the cluster"}})
}

func portZero(addr string) bool {
	_, p, err := config.HostPort(addr)
	return err == nil && p == 0
}

func publicURLFor(configured string, a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return configured
	}
	if configured != "" {
		if u, err := url.Parse(configured); err == nil {
			u.Host = net.JoinHostPort(u.Hostname(), fmt.Sprint(tcp.Port))
			return u.String()
		}
	}
	host := "127.0.0.1"
	if !tcp.IP.IsUnspecified() {
		host = tcp.IP.String()
	}
	return "http://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

// setupTimeout bounds binding the streams and buckets at start; a fresh cluster needs its meta leader first.
const setupTimeout = 60 * time.Second

func (n *Node) setup(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	kv, err := n.mesh.EnsureKV(sctx, wire.NodesConfig())
	if err != nil {
		return fmt.Errorf("set up membership: %w", err)
	}
	n.members = members.New(kv, members.Config{Self: n.self}, n.log.With("component", "members"))

	owners, err := n.mesh.EnsureKV(sctx, wire.OwnersConfig(n.cfg.LeaseTTL))
	if err != nil {
		return fmt.Errorf("set up ownership: %w", err)
	}
	if err := checkLeaseTTL(sctx, owners, n.cfg.LeaseTTL); err != nil {
		return err
	}
	snaps, err := n.mesh.EnsureKV(sctx, wire.SnapshotsConfig())
	if err != nil {
		return fmt.Errorf("set up snapshots: %w", err)
	}
	inputs, err := n.mesh.EnsureStream(sctx, wire.InputsConfig())
	if err != nil {
		return fmt.Errorf("set up input stream: %w", err)
	}
	rcfg := room.DefaultConfig(n.cfg.Name)
	rcfg.TickRate = n.cfg.TickRate
	rcfg.LeaseTTL = n.cfg.LeaseTTL
	rcfg.SnapshotInterval = n.cfg.SnapshotInterval
	rcfg.StealAfter = n.cfg.StealAfter
	rcfg.PauseThreshold = max(rcfg.PauseThreshold, 3*time.Second/time.Duration(n.cfg.TickRate))
	rcfg.Game.GraceTicks = int64(n.cfg.Grace.Seconds() * float64(n.cfg.TickRate))
	n.rooms, err = room.NewManager(rcfg, n.mesh.Conn(), n.mesh.JetStream(),
		room.Stores{Owners: owners, Snapshots: snaps, Inputs: inputs}, n.mesh, n.log.With("component", "rooms"))
	if err != nil {
		return &config.Error{Setting: "rooms", Problem: err.Error()}
	}
	n.prober = newProber(n.mesh, []string{wire.KVStream(wire.NodesBucket), wire.KVStream(wire.OwnersBucket),
		wire.KVStream(wire.SnapshotsBucket), wire.InputsStream})

	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.registry.MustRegister(newNATSCollector(n.mesh, n.prober.readiness))
	n.registry.MustRegister(n.rooms.Collectors()...)

	secret, _ := n.cfg.Secret()
	signer, err := session.NewSigner(secret)
	if err != nil {
		return &config.Error{Setting: "SESSION_SECRET", Problem: err.Error()}
	}
	gcfg := gateway.DefaultConfig(n.cfg.Name)
	gcfg.ReadLimit = n.cfg.ReadLimit
	gcfg.InputRate = n.cfg.InputRate
	gcfg.InputBurst = n.cfg.InputBurst
	gcfg.MaxConns = n.cfg.MaxConns
	gcfg.MaxConnsPerIP = n.cfg.MaxConnsPerIP
	gcfg.AllowedOrigins = n.cfg.AllowedOrigins
	gcfg.DrainTimeout = n.cfg.DrainTimeout
	n.gateway, err = gateway.New(gcfg, signer, n.rooms, n.mesh.Conn(), n.mesh.JetStream(), n.wsNodes, n.log.With("component", "gateway"))
	if err != nil {
		return &config.Error{Setting: "gateway", Problem: err.Error()}
	}
	n.registry.MustRegister(n.gateway.Collectors()...)

	n.mux.HandleFunc("GET /healthz", n.handleHealthz)
	n.mux.HandleFunc("GET /readyz", n.handleReadyz)
	n.mux.Handle("GET /metrics", promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{Registry: n.registry}))
	n.mux.HandleFunc("GET /api/cluster", n.handleCluster)
	n.mux.Handle("GET /ws", n.gateway)
	n.mux.Handle("GET /", frontend.Handler())
	if n.cfg.Pprof {
		n.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		n.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		n.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		n.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		n.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	n.parts = append(n.parts, part{"members", n.members.Run}, part{"readiness", n.prober.Run}, part{"rooms", n.rooms.Run}, part{"gateway", n.gateway.Run})
	return nil
}

// self is this node's membership entry.
func (n *Node) self() members.Info {
	sockets := 0
	if n.gateway != nil {
		sockets = n.gateway.Count()
	}
	return members.Info{Name: n.cfg.Name, URL: n.cfg.PublicURL, Ready: n.announced().Ready, Sockets: sockets}
}

// wsNodes lists the WebSocket endpoints of the ready nodes, for welcome and nodes messages.
func (n *Node) wsNodes() []protocol.NodeInfo {
	var out []protocol.NodeInfo
	for _, m := range n.members.Nodes() {
		if !m.Ready && m.Name != n.cfg.Name {
			continue
		}
		out = append(out, protocol.NodeInfo{Name: m.Name, URL: wsURL(m.URL)})
	}
	return out
}

// wsURL turns a node's http(s) base URL into its WebSocket endpoint.
func wsURL(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	switch u.Scheme {
	case "https":
		u.Scheme = "wss"
	default:
		u.Scheme = "ws"
	}
	u.Path = "/ws"
	return u.String()
}

// Gateway is the node's WebSocket gateway.
func (n *Node) Gateway() *gateway.Gateway { return n.gateway }

// Name of the node.
func (n *Node) Name() string { return n.cfg.Name }

// URL is the node's public HTTP base URL.
func (n *Node) URL() string { return n.cfg.PublicURL }

// Mesh gives tests and other parts the NATS side of the node.
func (n *Node) Mesh() *mesh.Mesh { return n.mesh }

// Rooms is the node's room ownership.
func (n *Node) Rooms() *room.Manager { return n.rooms }

// Ready reports the node's readiness.
func (n *Node) Ready() Readiness { return n.readiness() }

// shutdownBudget bounds the whole shutdown after the context ends: SIGTERM must exit within 10 s.
const shutdownBudget = 8 * time.Second

// Run serves until ctx ends, then shuts the node down in order. It returns the first error of any part.
func (n *Node) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range n.parts {
		g.Go(func() error {
			if err := p.run(gctx); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			return nil
		})
	}
	g.Go(func() error {
		if err := <-n.serving; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve http: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		// Clients move before the process exits: http.Server.Shutdown does not close WebSockets.
		n.gateway.Drain()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := n.httpSrv.Shutdown(sctx); err != nil {
			n.httpSrv.Close()
		}
		return nil
	})
	err := g.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownBudget/2)
	defer cancel()
	n.mesh.Shutdown(sctx)
	n.log.Info("node stopped", "name", n.cfg.Name)
	return err
}

// Close releases what New acquired when Run is never called.
func (n *Node) Close() {
	n.httpSrv.Close()
	<-n.serving
	n.mesh.Shutdown(context.Background())
}

func (n *Node) handleHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "node": n.cfg.Name})
}

func (n *Node) handleReadyz(w http.ResponseWriter, _ *http.Request) {
	r := n.readiness()
	code := http.StatusOK
	if !r.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

// ClusterView is the JSON of GET /api/cluster.
type ClusterView struct {
	Node  string         `json:"node"`
	Nodes []members.Info `json:"nodes"`
	Rooms []room.Info    `json:"rooms"`
}

func (n *Node) handleCluster(w http.ResponseWriter, _ *http.Request) {
	v := ClusterView{Node: n.cfg.Name, Nodes: n.members.Nodes(), Rooms: n.rooms.Rooms()}
	// The cluster view polls every node from one page: allow cross-origin reads of this public summary.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	writeJSON(w, http.StatusOK, v)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Kill stops the embedded NATS server abruptly, without lame duck and without releasing anything: tests use it
// to stand for SIGKILL. Run then returns once its parts notice.
func (n *Node) Kill() {
	n.mesh.Kill()
	n.httpSrv.Close()
	n.gateway.Kill()
}

// statusTimeout bounds one request for the owners bucket's status at start.
const statusTimeout = 2 * time.Second

// checkLeaseTTL fails when the owners bucket exists with another TTL than -lease-ttl: every node must agree on
// the lease length, or the local deadlines would not match what the bucket enforces.
func checkLeaseTTL(ctx context.Context, kv interface {
	Status(context.Context) (jetstream.KeyValueStatus, error)
}, want time.Duration) error {
	var st jetstream.KeyValueStatus
	var err error
	for {
		// Right after several nodes created the bucket at once, its stream can be briefly unknown here, or have
		// no leader yet to answer: a request nobody answers must not use up the whole setup time.
		actx, cancel := context.WithTimeout(ctx, statusTimeout)
		st, err = kv.Status(actx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("read owners bucket status: %w", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if got := st.TTL(); got != want {
		return &config.Error{Setting: "-lease-ttl", Problem: fmt.Sprintf("%v, but the cluster's owners bucket has TTL %v: every node must use the same lease TTL", want, got)}
	}
	return nil
}
