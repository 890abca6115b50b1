package mesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

// factsTTL is how long cached cluster facts (routes, meta peers) are reused.
const factsTTL = 100 * time.Millisecond

func (m *Mesh) refreshLocked() {
	if time.Since(m.cachedAt) < factsTTL && m.routed != nil {
		return
	}
	m.cachedAt = time.Now()
	routed := map[string]bool{}
	in := map[string]routeIn{}
	if rz, err := m.srv.Routez(nil); err == nil {
		for _, r := range rz.Routes {
			if r.RemoteName != "" {
				routed[r.RemoteName] = true
				// A peer may have several route connections (pooling): add their counts, keep the newest start.
				c := in[r.RemoteName]
				c.msgs += r.InMsgs
				if r.Start.After(c.start) {
					c.start = r.Start
				}
				in[r.RemoteName] = c
			}
		}
	}
	m.routed = routed
	inbound := make(map[string]routeIn, len(in))
	for name, c := range in {
		prev, ok := m.inbound[name]
		if !ok || prev.msgs != c.msgs || !prev.start.Equal(c.start) {
			c.movedAt = m.cachedAt
			prev = c
		}
		inbound[name] = prev
	}
	m.inbound = inbound
	peers := map[string]bool{}
	lead := ""
	if jz, err := m.srv.Jsz(&server.JSzOptions{}); err == nil && jz.Meta != nil {
		lead = jz.Meta.Leader
		for _, p := range jz.Meta.Replicas {
			if p.Name != "" && p.Name != m.cfg.Name {
				peers[p.Name] = true
			}
		}
	}
	m.metaPeers = peers
	m.metaLead = lead
}

// routeIn is what a peer's routes have brought in: their message count, when that count was last seen to move,
// and when the newest of the routes started.
type routeIn struct {
	msgs    int64
	movedAt time.Time
	start   time.Time
}

// QuietPeers maps the routed peers whose routes have brought in no message for at least d to when their newest
// route connection started, as far as this node has looked (the count is sampled whenever cluster facts are
// refreshed). Every node sends beacons several times a second, so on a healthy route the count moves all the
// time; a route that stays up but brings nothing is a partition, a frozen peer, or a peer still starting (the
// start time tells the last from the others).
func (m *Mesh) QuietPeers(d time.Duration) map[string]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshLocked()
	out := map[string]time.Time{}
	for name, r := range m.inbound {
		if m.cachedAt.Sub(r.movedAt) >= d {
			out[name] = r.start
		}
	}
	return out
}

// Routed reports whether this node has a live route to the named node (always true for itself).
func (m *Mesh) Routed(name string) bool {
	if name == m.cfg.Name {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshLocked()
	return m.routed[name]
}

// RoutedPeers lists the nodes this node has a live route to.
func (m *Mesh) RoutedPeers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshLocked()
	out := make([]string, 0, len(m.routed))
	for n := range m.routed {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ClusterSize is the number of JetStream peers this node knows of, itself and offline peers included (at least
// the number of configured routes plus one, before the meta group has formed).
func (m *Mesh) ClusterSize() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshLocked()
	return m.clusterSizeLocked()
}

func (m *Mesh) clusterSizeLocked() int {
	known := map[string]bool{}
	for n := range m.metaPeers {
		known[n] = true
	}
	for n := range m.routed {
		known[n] = true
	}
	size := len(known) + 1
	if c := len(m.cfg.Routes) + 1; m.cfg.ClusterAddr != "" && c > size {
		size = c
	}
	return size
}

// Reachable is the number of cluster members this node can reach, itself included.
func (m *Mesh) Reachable() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshLocked()
	return len(m.routed) + 1
}

// HasMajority reports whether this node reaches a strict majority of the cluster (itself included). A
// standalone node always has.
func (m *Mesh) HasMajority() bool {
	if m.cfg.ClusterAddr == "" {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshLocked()
	return (len(m.routed)+1)*2 > m.clusterSizeLocked()
}

// MetaLeader is the name of the JetStream meta leader, "" when there is none.
func (m *Mesh) MetaLeader() string {
	if m.cfg.ClusterAddr == "" {
		return m.cfg.Name
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refreshLocked()
	return m.metaLead
}

// Replicas is the replica count for the project's streams and buckets: the -replicas setting, or
// min(3, cluster size).
func (m *Mesh) Replicas() int {
	if m.cfg.Replicas > 0 {
		return m.cfg.Replicas
	}
	if m.cfg.ClusterAddr == "" {
		return 1
	}
	return min(3, m.ClusterSize())
}

// createTimeout bounds one create attempt: when several nodes create the same bucket at once only one gets a
// reply and the others time out (nats-server issues 3677/3679/7210), so we retry by binding.
const createTimeout = 2 * time.Second

// EnsureKV binds the bucket, creating it when it does not exist, and retries until ctx ends. Replicas 0 in cfg
// means Replicas().
func (m *Mesh) EnsureKV(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = m.Replicas()
	}
	var last error
	for attempt := 0; ; attempt++ {
		kv, err := m.bindOrCreateKV(ctx, cfg)
		if err == nil {
			return kv, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ensure bucket %s: %w (last error: %v)", cfg.Bucket, ctx.Err(), last)
		case <-time.After(retryDelay(attempt)):
		}
	}
}

func (m *Mesh) bindOrCreateKV(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	bctx, cancel := context.WithTimeout(ctx, createTimeout)
	defer cancel()
	kv, err := m.js.KeyValue(bctx, cfg.Bucket)
	if err == nil {
		return kv, nil
	}
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, fmt.Errorf("bind bucket %s: %w", cfg.Bucket, err)
	}
	cctx, cancel2 := context.WithTimeout(ctx, createTimeout)
	defer cancel2()
	kv, err = m.js.CreateKeyValue(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", cfg.Bucket, err)
	}
	m.log.Info("created bucket", "bucket", cfg.Bucket, "replicas", cfg.Replicas)
	return kv, nil
}

// EnsureStream binds the stream, creating it when it does not exist, and retries until ctx ends. A stream that
// exists keeps its configuration, except that cfg's RePublish is set on it when it differs: nodes from before
// INPUTS republished stored inputs created it without, and owners now follow their rooms by that republish.
func (m *Mesh) EnsureStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	if cfg.Replicas == 0 {
		cfg.Replicas = m.Replicas()
	}
	var last error
	for attempt := 0; ; attempt++ {
		bctx, cancel := context.WithTimeout(ctx, createTimeout)
		s, err := m.js.Stream(bctx, cfg.Name)
		cancel()
		if err == nil {
			have := s.CachedInfo().Config
			if cfg.RePublish == nil || reflect.DeepEqual(have.RePublish, cfg.RePublish) {
				return s, nil
			}
			have.RePublish = cfg.RePublish
			uctx, cancel := context.WithTimeout(ctx, createTimeout)
			s, err = m.js.UpdateStream(uctx, have)
			cancel()
			if err == nil {
				m.log.Info("updated stream", "stream", cfg.Name, "republish", cfg.RePublish.Destination)
				return s, nil
			}
			err = fmt.Errorf("update stream %s: %w", cfg.Name, err)
		}
		last = err
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			cctx, cancel := context.WithTimeout(ctx, createTimeout)
			s, err = m.js.CreateStream(cctx, cfg)
			cancel()
			if err == nil {
				m.log.Info("created stream", "stream", cfg.Name, "replicas", cfg.Replicas)
				return s, nil
			}
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ensure stream %s: %w (last error: %v)", cfg.Name, ctx.Err(), last)
		case <-time.After(retryDelay(attempt)):
		}
	}
}

func retryDelay(attempt int) time.Duration {
	d := 100 * time.Millisecond << min(attempt, 4)
	return min(d, time.Second)
}

// StreamLeader returns the name of the stream's leader and of its current (caught-up, online) followers.
func (m *Mesh) StreamLeader(ctx context.Context, stream string) (leader string, current []string, err error) {
	s, err := m.js.Stream(ctx, stream)
	if err != nil {
		return "", nil, fmt.Errorf("stream info %s: %w", stream, err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		return m.cfg.Name, nil, nil
	}
	for _, r := range info.Cluster.Replicas {
		if r.Current && !r.Offline {
			current = append(current, r.Name)
		}
	}
	return info.Cluster.Leader, current, nil
}

// LeadsStream reports whether this node's server leads the stream now: its own Raft state, no request (a
// standalone server leads every stream).
func (m *Mesh) LeadsStream(stream string) bool {
	if m.cfg.ClusterAddr == "" {
		return true
	}
	return m.srv.JetStreamIsStreamLeader(AppAccount, stream)
}

// StepDownStreamLeader asks the stream's leader to hand leadership to preferred.
func (m *Mesh) StepDownStreamLeader(ctx context.Context, stream, preferred string) error {
	req, _ := json.Marshal(map[string]any{"placement": map[string]any{"preferred": preferred}})
	msg, err := m.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, req)
	if err != nil {
		return fmt.Errorf("step down leader of %s: %w", stream, err)
	}
	var resp struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return fmt.Errorf("step down leader of %s: decode reply: %w", stream, err)
	}
	if resp.Error != nil {
		return fmt.Errorf("step down leader of %s: %s", stream, resp.Error.Description)
	}
	return nil
}

// Interest reports whether any subscription in the cluster matches subject, in the game's account: this
// server's clients' and, through the routes, the other servers' (each server propagates its interest to its
// peers). Owners publish a room's protocol 1 JSON ticks only while something listens (pkg/room).
func (m *Mesh) Interest(subject string) bool {
	acc, err := m.srv.LookupAccount(AppAccount)
	if err != nil {
		return true // unknown: publish, as before this check
	}
	return acc.SubscriptionInterest(subject)
}
