package node

import (
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/pkg/clusterview"
	"github.com/tickmesh/tickmesh/pkg/fence"
	"github.com/tickmesh/tickmesh/pkg/members"
	"github.com/tickmesh/tickmesh/pkg/room"
)

// viewSource is the node as the cluster view samples it.
type viewSource struct {
	n        *Node
	settled  atomic.Bool // the node has been ready once
	draining atomic.Bool // the node is shutting down
}

func (s *viewSource) Observe(withPlayers bool, maxRooms int) clusterview.Observation {
	n := s.n
	r := n.prober.readiness()
	if r.Ready {
		s.settled.Store(true)
	}
	routed := map[string]bool{}
	for _, p := range n.mesh.RoutedPeers() {
		routed[p] = true
	}
	leaders := map[string]string{clusterview.MetaStream: r.MetaLeader}
	for stream, leader := range r.Streams {
		leaders[stream] = leader
	}
	all := n.rooms.Rooms() // sorted by name
	rooms := make([]clusterview.RoomView, 0, min(len(all), maxRooms))
	add := func(i room.Info) {
		v := clusterview.RoomView{Room: i.Room, Owner: i.Owner, Epoch: i.Epoch}
		// The relay's state of the room is read while it holds the room (With).
		n.rooms.Relay().With(i.Room, func(last *room.Tick) {
			if last != nil && last.Pos.Epoch > i.Epoch {
				// The new owner's ticks arrived before its lease did (this node's owners watcher may be
				// restarting after the death of the server that fed it): fenced ticks prove the newer owner.
				v.Owner, v.Epoch = last.State().Owner, last.Pos.Epoch
			}
			if withPlayers {
				v.Players, v.Online = players(last)
			}
		})
		rooms = append(rooms, v)
	}
	for _, i := range all {
		if i.Room == room.Lobby {
			add(i)
		}
	}
	for _, i := range all {
		if i.Room != room.Lobby && len(rooms) < maxRooms {
			add(i)
		}
	}
	return clusterview.Observation{
		Nodes:   clusterview.NodesObs{Members: n.members.Nodes(), Routed: routed, Majority: n.mesh.HasMajority(), Draining: s.draining.Load()},
		Settled: s.settled.Load(), Leaders: leaders, Rooms: rooms, RoomsTotal: len(all),
	}
}

// players counts the players (and those online) in a relayed tick; nil when there is none. The relay must hold
// the room (Relay.With).
func players(t *room.Tick) (total, online *int) {
	if t == nil {
		return nil, nil
	}
	s := t.State()
	p, o := s.Players(), 0
	for i := range p {
		if r, _, _ := s.Player(i); r.Online {
			o++
		}
	}
	return &p, &o
}

// viewObserver hands the room manager's observations to the cluster view.
type viewObserver struct{ h *clusterview.Hub }

func (o viewObserver) LeaseChanged(c room.LeaseChange) {
	obs := clusterview.LeaseObs{Room: c.Room, Rev: c.Revision, Node: c.Lease.Node, Epoch: c.Lease.Epoch, Corrupt: c.Corrupt}
	switch c.Op {
	case jetstream.KeyValuePut:
		obs.Op = clusterview.LeasePut
	case jetstream.KeyValueDelete:
		obs.Op = clusterview.LeaseDelete
	default:
		obs.Op = clusterview.LeasePurge
	}
	o.h.Lease(obs)
}

func (o viewObserver) LeasesCurrent() { o.h.LeasesCurrent() }

func (o viewObserver) EpochChanged(r string, from fence.Position, to *room.Tick, gap time.Duration) {
	o.h.Resumed(r, from.Epoch, to.Pos.Epoch, to.State().Owner, gap)
}

// handleEvents is GET /api/cluster/events: the cluster view's Server-Sent Events (package clusterview).
func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request) {
	allowAdminOrigin(w, r, n.members.Nodes())
	n.view.ServeHTTP(w, r)
}

// allowAdminOrigin lets the pages served by the cluster's admin listeners, and only those, read the response
// across origins: the cluster view served by one node's admin listener moves to the others' when its own stops
// answering.
func allowAdminOrigin(w http.ResponseWriter, r *http.Request, nodes []members.Info) {
	o := r.Header.Get("Origin")
	if o == "" {
		return
	}
	w.Header().Add("Vary", "Origin")
	for _, m := range nodes {
		if m.Admin != "" && strings.EqualFold(originOf(m.Admin), o) {
			w.Header().Set("Access-Control-Allow-Origin", o)
			return
		}
	}
}
