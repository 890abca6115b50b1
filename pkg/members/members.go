// Package members keeps the list of live Tickmesh nodes in the JetStream KV bucket `nodes`: every node writes
// a heartbeat (its name, public URL, readiness and socket count) under its own key, the bucket's TTL removes the
// keys of nodes that stop writing, and every node watches the bucket to know the others. Membership is
// discovered through NATS, never from static settings.
//
// A node's own heartbeat coming back through its watcher is the watcher's proof of life. Staleness is judged
// against the last such echo, not the wall clock: while the watcher is cut off (the server feeding it died, the
// bucket's stream holds an election, or this node is partitioned), the view keeps the last nodes it knew
// instead of forgetting healthy ones. A watcher that delivers nothing for Config.Stall is started again
// (package kvwatch).
//
// Run owns the heartbeat loop and the watcher; both stop when its context ends, and Run then deletes this
// node's key so that others drop it at once.
package members

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/kvwatch"
)

// Info is one node as other nodes see it.
type Info struct {
	Name    string `json:"name"`
	URL     string `json:"url"`     // http(s) base URL where browsers reach the node
	Admin   string `json:"admin"`   // http(s) base URL of the node's admin listener (metrics, cluster view)
	Ready   bool   `json:"ready"`   // the node's /readyz verdict when it wrote this
	Sockets int    `json:"sockets"` // WebSocket connections on the node
	Updated int64  `json:"updated"` // writer's Unix time in ms
}

// KV is the part of a JetStream key-value bucket the registry needs.
type KV interface {
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	Delete(ctx context.Context, key string, opts ...jetstream.KVDeleteOpt) error
	WatchAll(ctx context.Context, opts ...jetstream.WatchOpt) (jetstream.KeyWatcher, error)
}

// Config of a registry. Zero durations and a nil clock are replaced by DefaultConfig's.
type Config struct {
	Interval time.Duration    // heartbeat period
	Stale    time.Duration    // an entry not refreshed for this long before the last echo is ignored
	Stall    time.Duration    // a watcher that delivers nothing for this long is restarted
	Self     func() Info      // this node's current info; Updated is filled in
	Now      func() time.Time // clock
}

// DefaultConfig is a heartbeat a second, entries stale after five missed heartbeats, watchers restarted after
// three silent seconds, and the wall clock. Self is the caller's.
func DefaultConfig() Config {
	return Config{Interval: time.Second, Stale: 5 * time.Second, Stall: 3 * time.Second, Now: time.Now}
}

// Registry is the membership view of one node.
type Registry struct {
	kv  KV
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	nodes map[string]entry
	echo  time.Time // when the watcher last delivered this node's own heartbeat; zero before the first
}

// entry is a node's last heartbeat and when this node received it: staleness is judged on the local clock, so
// clock skew between hosts does not matter.
type entry struct {
	info Info
	seen time.Time
}

// New makes a registry; call Run to start it.
func New(kv KV, cfg Config, log *slog.Logger) *Registry {
	def := DefaultConfig()
	if cfg.Interval <= 0 {
		cfg.Interval = def.Interval
	}
	if cfg.Stale <= 0 {
		cfg.Stale = def.Stale
	}
	if cfg.Stall <= 0 {
		cfg.Stall = def.Stall
	}
	if cfg.Now == nil {
		cfg.Now = def.Now
	}
	return &Registry{kv: kv, cfg: cfg, log: log, nodes: map[string]entry{}}
}

// Run writes heartbeats and watches the bucket until ctx ends, then deletes this node's key.
func (r *Registry) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.watch(ctx)
	}()
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	r.beat(ctx)
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := r.kv.Delete(dctx, r.cfg.Self().Name); err != nil {
				r.log.Debug("delete own heartbeat", "err", err)
			}
			return nil
		case <-t.C:
			r.beat(ctx)
		}
	}
}

func (r *Registry) beat(ctx context.Context) {
	self := r.cfg.Self()
	self.Updated = r.cfg.Now().UnixMilli()
	r.store(self)
	b, _ := json.Marshal(self)
	pctx, cancel := context.WithTimeout(ctx, r.cfg.Interval)
	defer cancel()
	if _, err := r.kv.Put(pctx, self.Name, b); err != nil && ctx.Err() == nil {
		r.log.Debug("write heartbeat", "err", err)
	}
}

// watch follows the bucket. Every node, this one included, writes once per Interval, so a watcher quiet for
// Stall is cut off and is restarted.
func (r *Registry) watch(ctx context.Context) {
	self := r.cfg.Self().Name
	_ = kvwatch.Follow(ctx, r.kv, kvwatch.Config{
		Stall: r.cfg.Stall,
		Retry: r.cfg.Interval,
		Resync: func(present map[string]bool) {
			r.mu.Lock()
			for name := range r.nodes {
				if name != self && !present[name] { // deleted while no watcher ran
					delete(r.nodes, name)
				}
			}
			r.mu.Unlock()
		},
		OnRestart: func(reason error, quiet time.Duration) {
			r.log.Info("restarting the membership watcher", "reason", reason, "quiet", quiet.Round(time.Millisecond))
		},
	}, func(e jetstream.KeyValueEntry) {
		if e == nil { // end of the current values
			return
		}
		if e.Operation() != jetstream.KeyValuePut {
			if e.Key() != self {
				r.mu.Lock()
				delete(r.nodes, e.Key())
				r.mu.Unlock()
			}
			return
		}
		var in Info
		if err := json.Unmarshal(e.Value(), &in); err != nil || in.Name != e.Key() {
			r.log.Warn("ignoring malformed heartbeat", "key", e.Key())
			return
		}
		if in.Name == self {
			// The watcher has delivered everything written before this node's last heartbeat.
			r.mu.Lock()
			r.echo = r.cfg.Now()
			r.mu.Unlock()
			return // this node's own entry comes from Self, never from the bucket
		}
		r.store(in)
	})
}

// store records a heartbeat. The same heartbeat delivered again (a restarted watcher replays every key) keeps
// the time it first arrived: a replay is no sign of life.
func (r *Registry) store(in Info) {
	r.mu.Lock()
	if old, ok := r.nodes[in.Name]; !ok || old.info != in {
		r.nodes[in.Name] = entry{info: in, seen: r.cfg.Now()}
	}
	r.mu.Unlock()
}

// Nodes lists the nodes whose heartbeat is fresh, sorted by name. This node is always included.
//
// A heartbeat is fresh when it arrived at most Stale before the watcher last proved current (this node's own
// heartbeat came back through it), or at most Stale ago. A cut-off watcher therefore freezes the view rather
// than emptying it.
func (r *Registry) Nodes() []Info {
	now := r.cfg.Now()
	self := r.cfg.Self().Name
	r.mu.Lock()
	out := make([]Info, 0, len(r.nodes))
	for _, e := range r.nodes {
		if e.info.Name == self || fresh(e.seen, r.echo, now, r.cfg.Stale) {
			out = append(out, e.info)
		}
	}
	r.mu.Unlock()
	slices.SortFunc(out, func(a, b Info) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// fresh reports whether a heartbeat received at seen still counts, given the last echo of this node's own
// heartbeat (zero before the first) and the current time.
func fresh(seen, echo, now time.Time, stale time.Duration) bool {
	return now.Sub(seen) <= stale || !echo.After(seen.Add(stale))
}
