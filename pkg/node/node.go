// Package node composes one Tickmesh node: the embedded NATS server (pkg/mesh), the membership registry
// (pkg/members), room ownership (pkg/room), the WebSocket gateway (pkg/gateway) and two HTTP servers: the
// public listener (-http: the browser client, /ws, /healthz, /readyz) and the admin listener (-admin-http:
// /metrics, /api/cluster, the cluster view with its event stream /api/cluster/events (pkg/clusterview),
// /debug/pprof/ with -pprof, /healthz, /readyz).
//
// New validates the configuration (a missing or placeholder secret, or routes without credentials outside
// the development switch, is a *setting.Error), binds both listeners and starts the NATS server, so that
// configuration problems (ports in use, data directory not writable) surface before Run. Both HTTP servers
// answer 503 (and /healthz 200) until the node has joined the cluster. Run owns every long-running part through
// an errgroup and, when its context ends, shuts them down in order: stop accepting and drain WebSockets,
// release room leases, end the cluster view's streams, stop the HTTP servers, delete the heartbeat, then
// lame-duck the NATS server.
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
	"runtime"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/tickmesh/tickmesh/frontend"
	"github.com/tickmesh/tickmesh/pkg/clusterview"
	"github.com/tickmesh/tickmesh/pkg/gateway"
	"github.com/tickmesh/tickmesh/pkg/members"
	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/room"
	"github.com/tickmesh/tickmesh/pkg/session"
	"github.com/tickmesh/tickmesh/pkg/setting"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Node is one running Tickmesh node.
type Node struct {
	cfg      Config
	log      *slog.Logger
	mesh     *mesh.Mesh
	members  *members.Registry
	prober   *prober
	rooms    *room.Manager
	gateway  *gateway.Gateway
	view     *clusterview.Hub
	viewSrc  *viewSource
	registry *prometheus.Registry
	public   *httpServer // the game, /ws, /healthz, /readyz
	admin    *httpServer // metrics, cluster view, profiles, /healthz, /readyz
	started  atomic.Bool // setup done: the muxes serve; before that, 503 (and /healthz 200)
	joined   atomic.Bool // readiness saw every routed peer ready in the membership view once (readiness)
	parts    []part      // long-running parts started by Run, in start order
}

// httpServer is one listener, its routes and the result of its Serve, started by New.
type httpServer struct {
	ln      net.Listener
	mux     *http.ServeMux
	srv     *http.Server
	serving chan error
}

// part is a long-running component of the node.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// New validates cfg, binds the HTTP listeners, starts the embedded NATS server and binds the project's streams
// and buckets. Errors that come from settings are *setting.Error.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Node, error) {
	cfg = cfg.Resolved()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	games, err := newGames(cfg)
	if err != nil {
		return nil, err
	}
	cfg.Room.Games = games
	for _, line := range cfg.Insecurities() {
		log.Warn("INSECURE DEVELOPMENT MODE (-dev-insecure): " + line)
	}
	pub, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, setting.Errorf("-http", "%s: %v", cfg.HTTPAddr, err)
	}
	adm, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		pub.Close()
		return nil, setting.Errorf("-admin-http", "%s: %v", cfg.AdminAddr, err)
	}
	if portZero(cfg.HTTPAddr) {
		cfg.PublicURL = withPort(cfg.PublicURL, pub.Addr())
	}
	if portZero(cfg.AdminAddr) {
		cfg.AdminPublicURL = withPort(cfg.AdminPublicURL, adm.Addr())
	}
	m, err := mesh.Start(ctx, cfg.Mesh, log)
	if err != nil {
		pub.Close()
		adm.Close()
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, mesh: m, registry: prometheus.NewRegistry()}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	n.public = n.serve(pub, &http.Server{ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, WriteTimeout: cfg.HTTP.WriteTimeout,
		IdleTimeout: cfg.HTTP.IdleTimeout, ErrorLog: errLog})
	n.admin = n.serve(adm, &http.Server{ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, WriteTimeout: cfg.HTTP.AdminWriteTimeout,
		IdleTimeout: cfg.HTTP.IdleTimeout, ErrorLog: errLog})
	if err := n.setup(ctx); err != nil {
		n.closeHTTP()
		m.Shutdown(context.Background())
		return nil, err
	}
	n.started.Store(true)
	return n, nil
}

// serve starts srv on ln at once, so that a load balancer gets a quick 503 rather than a hanging connection
// while the node joins the cluster. Upgraded WebSockets are hijacked, so srv's idle and header timeouts stop
// applying to them, and the gateway sets a write deadline of its own before every write, replacing the one
// srv's WriteTimeout leaves on the connection.
func (n *Node) serve(ln net.Listener, srv *http.Server) *httpServer {
	h := &httpServer{ln: ln, mux: http.NewServeMux(), srv: srv, serving: make(chan error, 1)}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.started.Load() {
			h.mux.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/healthz" {
			n.handleHealthz(w, r)
			return
		}
		writeJSON(w, http.StatusServiceUnavailable, Readiness{Node: n.cfg.Name, Missing: []string{"starting: joining the cluster"}})
	})
	go func() { h.serving <- srv.Serve(ln) }()
	return h
}

// closeHTTP closes both HTTP servers at once and waits for their Serve to return.
func (n *Node) closeHTTP() {
	for _, h := range []*httpServer{n.public, n.admin} {
		h.srv.Close()
		<-h.serving
	}
}

// withPort is base with the port of a (a listener bound to port 0), or http://<a> when base is empty.
func withPort(base string, a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return base
	}
	if base != "" {
		if u, err := url.Parse(base); err == nil {
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
	mcfg := n.cfg.Members
	mcfg.Self = n.self
	n.members = members.New(kv, mcfg, n.log.With("component", "members"))

	owners, err := n.mesh.EnsureKV(sctx, wire.OwnersConfig(n.cfg.Room.LeaseTTL))
	if err != nil {
		return fmt.Errorf("set up ownership: %w", err)
	}
	snaps, err := n.mesh.EnsureKV(sctx, wire.SnapshotsConfig())
	if err != nil {
		return fmt.Errorf("set up snapshots: %w", err)
	}
	if err := retrying(sctx, statusTimeout, func(ctx context.Context) error { return room.PrepareStores(ctx, n.mesh.JetStream()) }); err != nil {
		return fmt.Errorf("set up ownership: %w", err)
	}
	inputs, err := n.mesh.EnsureStream(sctx, wire.InputsConfig())
	if err != nil {
		return fmt.Errorf("set up input stream: %w", err)
	}
	n.rooms, err = room.NewManager(n.cfg.Room, n.mesh.Conn(), n.mesh.JetStream(),
		room.Stores{Owners: owners, Snapshots: snaps, Inputs: inputs}, n.mesh, n.log.With("component", "rooms"))
	if err != nil {
		return setting.Errorf("rooms", "%v", err)
	}
	n.prober = newProber(n.mesh, []string{wire.KVStream(wire.NodesBucket), wire.KVStream(wire.OwnersBucket),
		wire.KVStream(wire.SnapshotsBucket), wire.InputsStream})

	n.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.registry.MustRegister(newNATSCollector(n.mesh, n.prober.readiness))
	n.registry.MustRegister(n.rooms.Collectors()...)

	signer, err := session.NewSigner(n.cfg.Secret())
	if err != nil {
		return setting.Errorf("SESSION_SECRET", "%v", err)
	}
	n.gateway, err = gateway.New(n.cfg.Gateway, signer, n.rooms, n.mesh.Conn(), n.mesh.JetStream(), n.wsNodes, n.log.With("component", "gateway"))
	if err != nil {
		return setting.Errorf("gateway", "%v", err)
	}
	n.registry.MustRegister(n.gateway.Collectors()...)

	n.viewSrc = &viewSource{n: n}
	n.view, err = clusterview.NewHub(n.cfg.View, n.cfg.Name, n.viewSrc)
	if err != nil {
		return setting.Errorf("cluster view", "%v", err)
	}
	n.rooms.SetObserver(viewObserver{n.view})
	n.registry.MustRegister(n.view.Collectors()...)

	client := frontend.Handler()
	pub := n.public.mux
	pub.HandleFunc("GET /healthz", n.handleHealthz)
	pub.HandleFunc("GET /readyz", n.handleReadyz)
	pub.Handle("GET /ws", n.gateway)
	pub.HandleFunc("GET /cluster.html", http.NotFound) // the cluster view is the admin listener's
	pub.Handle("GET /", client)

	adm := n.admin.mux
	adm.HandleFunc("GET /healthz", n.handleHealthz)
	adm.HandleFunc("GET /readyz", n.handleReadyz)
	adm.Handle("GET /metrics", promhttp.HandlerFor(n.registry, promhttp.HandlerOpts{Registry: n.registry}))
	adm.HandleFunc("GET /api/cluster", n.handleCluster)
	adm.HandleFunc("GET /api/cluster/events", n.handleEvents)
	adm.Handle("GET /cluster.html", client)
	adm.Handle("GET /assets/", client)
	adm.Handle("GET /{$}", http.RedirectHandler("/cluster.html", http.StatusFound))
	if n.cfg.Pprof {
		// /debug/pprof/mutex shows who holds the locks others wait for (a mass takeover's lock waits); one
		// contention event in mutexProfileFraction is sampled, for the process, while profiles are served.
		runtime.SetMutexProfileFraction(mutexProfileFraction)
		adm.HandleFunc("GET /debug/pprof/", pprof.Index)
		adm.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		adm.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		adm.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		adm.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	n.parts = append(n.parts, part{"members", n.members.Run}, part{"readiness", n.prober.Run}, part{"rooms", n.rooms.Run}, part{"gateway", n.gateway.Run})
	return nil
}

// mutexProfileFraction is the sampling of lock contention with -pprof: low enough to leave a loaded node's
// timing as it is.
const mutexProfileFraction = 100

// self is this node's membership entry.
func (n *Node) self() members.Info {
	sockets := 0
	if n.gateway != nil {
		sockets = n.gateway.Count()
	}
	return members.Info{Name: n.cfg.Name, URL: n.cfg.PublicURL, Admin: n.cfg.AdminPublicURL, Ready: n.announced().Ready, Sockets: sockets}
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

// AdminURL is the base URL of the node's admin listener.
func (n *Node) AdminURL() string { return n.cfg.AdminPublicURL }

// Config is the node's resolved configuration.
func (n *Node) Config() Config { return n.cfg }

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
	// The cluster view outlives the drain (it shows this node draining), and ends its streams before the admin
	// listener's Shutdown, which would otherwise wait for them.
	vctx, stopView := context.WithCancel(context.Background())
	defer stopView()
	g.Go(func() error { return n.view.Run(vctx) })
	for _, h := range []*httpServer{n.public, n.admin} {
		g.Go(func() error {
			if err := <-h.serving; err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("serve http on %s: %w", h.ln.Addr(), err)
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		n.viewSrc.draining.Store(true)
		// Clients move before the process exits: http.Server.Shutdown does not close WebSockets.
		n.gateway.Drain()
		stopView()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, h := range []*httpServer{n.public, n.admin} {
			if err := h.srv.Shutdown(sctx); err != nil {
				h.srv.Close()
			}
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
	n.closeHTTP()
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
	// Owners is the number of rooms each node holds, every node with a session listed (0 included): the
	// distribution that balancing keeps even.
	Owners map[string]int `json:"owners"`
}

func (n *Node) handleCluster(w http.ResponseWriter, r *http.Request) {
	v := ClusterView{Node: n.cfg.Name, Nodes: n.members.Nodes(), Rooms: n.rooms.Rooms(), Owners: n.rooms.Distribution()}
	allowAdminOrigin(w, r, v.Nodes)
	writeJSON(w, http.StatusOK, v)
}

// originOf is the scheme://host[:port] of a base URL.
func originOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
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
	n.public.srv.Close()
	n.admin.srv.Close()
	n.gateway.Kill()
}

// statusTimeout bounds one attempt of a setup request that a fresh cluster may not answer yet.
const statusTimeout = 2 * time.Second

// retrying runs fn, with attempt as its deadline, until it succeeds or ctx ends. Right after several nodes
// created the buckets at once, their streams can be briefly unknown here, or have no leader yet to answer: a
// request nobody answers must not use up the whole setup time.
func retrying(ctx context.Context, attempt time.Duration, fn func(context.Context) error) error {
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := fn(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(250 * time.Millisecond):
		}
	}
}
