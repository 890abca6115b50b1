package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/sim"
	"github.com/tickmesh/tickmesh/pkg/wire"
)

// Connect opens a NATS connection to node n only, logged in with login (AsAdmin, AsViewer): the servers
// advertise each other's client URLs, and a reconnect to another node (after n was killed) would silently make
// an observer watch the wrong one, so discovered servers are ignored. It reconnects to n forever, every 100 ms;
// opts come last and override these.
func Connect(n Node, login nats.Option, name string, opts ...nats.Option) (*nats.Conn, error) {
	base := []nats.Option{
		nats.Name(name), login,
		nats.IgnoreDiscoveredServers(), nats.DontRandomize(),
		nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond), nats.ReconnectJitter(0, 0),
		nats.Timeout(2 * time.Second),
	}
	nc, err := nats.Connect(n.NATSURL(), append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s at %s: %w", n.Name, n.NATSURL(), err)
	}
	return nc, nil
}

// ConnectSys opens a connection to any of nodes as the system account's user (server list, meta leader
// stepdown).
func ConnectSys(nodes []Node, s Secrets, name string) (*nats.Conn, error) {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.NATSURL())
	}
	return nats.Connect(strings.Join(urls, ","), nats.Name(name), nats.UserInfo(s.SysUser, s.SysPassword), nats.Timeout(2*time.Second))
}

// StreamLeader asks the server behind js for stream's leader ("" when it has none), within a second.
func StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := js.Stream(sctx, stream)
	if err != nil {
		return "", err
	}
	info := s.CachedInfo()
	if info.Cluster == nil {
		return "", fmt.Errorf("stream %s is not clustered", stream)
	}
	return info.Cluster.Leader, nil
}

// MoveStreamLeader asks stream's leader to step down in favour of node to; the election that follows decides.
func MoveStreamLeader(ctx context.Context, nc *nats.Conn, stream, to string) error {
	return stepDown(ctx, nc, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, to)
}

// MoveMetaLeader asks the JetStream meta leader to step down in favour of node to; nc must be a system-account
// connection.
func MoveMetaLeader(ctx context.Context, nc *nats.Conn, to string) error {
	return stepDown(ctx, nc, "$JS.API.META.LEADER.STEPDOWN", to)
}

func stepDown(ctx context.Context, nc *nats.Conn, subject, to string) error {
	req, _ := json.Marshal(map[string]any{"placement": map[string]any{"preferred": to}})
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := nc.RequestWithContext(rctx, subject, req); err != nil {
		return fmt.Errorf("step down (%s) in favour of %s: %w", subject, to, err)
	}
	return nil
}

// PublishEvent sends a player event to room below the gateway, the way the gateway's publisher does: the live
// copy on core NATS (best effort: the stream delivers the event anyway), then the durable publish with the
// event's message id, which returns once INPUTS has stored it (or ctx ends).
func PublishEvent(ctx context.Context, js jetstream.JetStream, room string, ev sim.Event) error {
	m, err := wire.EventMsg(room, ev)
	if err != nil {
		return err
	}
	_ = js.Conn().Publish(wire.LiveSubject(room), m.Data)
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("publish event: %w", err)
	}
	return nil
}
