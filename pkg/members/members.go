// Package members keeps the list of live Tickmesh nodes in the JetStream KV bucket `nodes`: every node writes
// a heartbeat (its name, public URL, readiness and socket count) under its own key, the bucket's TTL removes the
// keys of nodes that stop writing, and every node watches the bucket to know the others. Membership is
// discovered through NATS, never from static settings.
//
// Run owns the heartbeat loop and the watcher; both stop when its context ends, and Run then deletes this
// node's key so that others drop it at once.
package members

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket of node heartbeats.
const Bucket = "nodes"

// Info is one node as other nodes see it.
type Info struct {
	Name    string `json:"name"`
	URL     string `json:"url"`     // http(s) base URL where browsers reach the node
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

// Config of a registry.
type Config struct {
	Interval time.Duration    // heartbeat period; default 1 s
	Stale    time.Duration    // an entry not refreshed for this long is ignored; default 5 s
	Self     func() Info      // this node's current info; Updated is filled in
	Now      func() time.Time // clock; default time.Now
}

// BucketConfig is the `nodes` bucket: entries expire three heartbeats after a node stops.
func BucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      Bucket,
		Description: "Tickmesh node heartbeats",
		History:     1,
		TTL:         5 * time.Second,
		Storage:     jetstream.FileStorage,
	}
}

// Registry is the membership view of one node.
type Registry struct {
	kv  KV
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	nodes map[string]entry
}

// entry is a node's last heartbeat and when this node received it: staleness is judged on the local clock, so
// clock skew between hosts does not matter.
type entry struct {
	info Info
	seen time.Time
}

// New makes a registry; call Run to start it.
func New(kv KV, cfg Config, log *slog.Logger) *Registry {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Stale <= 0 {
		cfg.Stale = 5 * cfg.Interval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
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

func (r *Registry) watch(ctx context.Context) {
	for ctx.Err() == nil {
		if err := r.watchOnce(ctx); err != nil && ctx.Err() == nil {
			r.log.Debug("watch nodes", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(r.cfg.Interval):
			}
		}
	}
}

var errWatchClosed = errors.New("watcher closed")

func (r *Registry) watchOnce(ctx context.Context) error {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("start watcher: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errWatchClosed
			}
			if e == nil { // end of initial values
				continue
			}
			if e.Operation() != jetstream.KeyValuePut {
				r.mu.Lock()
				delete(r.nodes, e.Key())
				r.mu.Unlock()
				continue
			}
			var in Info
			if err := json.Unmarshal(e.Value(), &in); err != nil || in.Name != e.Key() {
				r.log.Warn("ignoring malformed heartbeat", "key", e.Key())
				continue
			}
			r.store(in)
		}
	}
}

func (r *Registry) store(in Info) {
	r.mu.Lock()
	r.nodes[in.Name] = entry{info: in, seen: r.cfg.Now()}
	r.mu.Unlock()
}

// Nodes lists the nodes whose heartbeat is fresh, sorted by name. This node is always included.
func (r *Registry) Nodes() []Info {
	now := r.cfg.Now()
	self := r.cfg.Self().Name
	r.mu.Lock()
	out := make([]Info, 0, len(r.nodes))
	for _, e := range r.nodes {
		if e.info.Name == self || now.Sub(e.seen) <= r.cfg.Stale {
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
