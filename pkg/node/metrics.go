package node

import (
	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickmesh/tickmesh/pkg/mesh"
)

// natsCollector exposes the embedded server's state at scrape time (no background polling).
type natsCollector struct {
	m     *mesh.Mesh
	ready func() Readiness

	conns, routes, inMsgs, outMsgs, inBytes, outBytes, slow             *prometheus.Desc
	reach, size, majority, metaLeader, isMeta, streams, jsMsgs, jsBytes *prometheus.Desc
	readyD, streamLeader                                                *prometheus.Desc
	replicaLag, replicaCurrent                                          *prometheus.Desc
}

func newNATSCollector(m *mesh.Mesh, ready func() Readiness) *natsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("tickmesh_"+name, help, labels, nil)
	}
	return &natsCollector{
		m: m, ready: ready,
		conns:        d("nats_connections", "Client connections on the embedded NATS server."),
		routes:       d("nats_routes", "Route connections of the embedded NATS server."),
		inMsgs:       d("nats_in_msgs_total", "Messages received by the embedded NATS server."),
		outMsgs:      d("nats_out_msgs_total", "Messages sent by the embedded NATS server."),
		inBytes:      d("nats_in_bytes_total", "Bytes received by the embedded NATS server."),
		outBytes:     d("nats_out_bytes_total", "Bytes sent by the embedded NATS server."),
		slow:         d("nats_slow_consumers_total", "Slow consumers seen by the embedded NATS server."),
		reach:        d("cluster_reachable_nodes", "Cluster members this node reaches, itself included."),
		size:         d("cluster_size", "Cluster members this node knows of, itself included."),
		majority:     d("cluster_has_majority", "1 when this node reaches a strict majority of the cluster."),
		metaLeader:   d("jetstream_meta_leader_present", "1 when the JetStream meta group has a leader."),
		isMeta:       d("jetstream_meta_leader", "1 when this node is the JetStream meta leader."),
		streams:      d("jetstream_streams", "Streams known to this server."),
		jsMsgs:       d("jetstream_messages", "Messages stored by JetStream on this server."),
		jsBytes:      d("jetstream_bytes", "Bytes stored by JetStream on this server."),
		readyD:       d("ready", "1 when /readyz answers 200."),
		streamLeader: d("stream_leader", "1 for the leader of each stream the node depends on.", "stream", "leader"),
		// The leader of a stream is the only server that knows how far behind each replica is: these series
		// come from that node alone, one per stream it leads and replica.
		replicaLag:     d("jetstream_replica_lag", "Raft entries of a stream this node leads that a replica has not stored yet.", "stream", "replica"),
		replicaCurrent: d("jetstream_replica_current", "1 when a replica of a stream this node leads is caught up and seen recently.", "stream", "replica"),
	}
}

func (c *natsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.conns, c.routes, c.inMsgs, c.outMsgs, c.inBytes, c.outBytes, c.slow,
		c.reach, c.size, c.majority, c.metaLeader, c.isMeta, c.streams, c.jsMsgs, c.jsBytes, c.readyD, c.streamLeader,
		c.replicaLag, c.replicaCurrent} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (c *natsCollector) Collect(ch chan<- prometheus.Metric) {
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	cnt := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	srv := c.m.Server()
	if vz, err := srv.Varz(nil); err == nil {
		g(c.conns, float64(vz.Connections))
		g(c.routes, float64(vz.Routes))
		cnt(c.inMsgs, float64(vz.InMsgs))
		cnt(c.outMsgs, float64(vz.OutMsgs))
		cnt(c.inBytes, float64(vz.InBytes))
		cnt(c.outBytes, float64(vz.OutBytes))
		cnt(c.slow, float64(vz.SlowConsumers))
	}
	if jz, err := srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true, StreamLeaderOnly: true}); err == nil {
		g(c.streams, float64(jz.Streams))
		g(c.jsMsgs, float64(jz.Messages))
		g(c.jsBytes, float64(jz.Bytes))
		// The project's streams live in one account; a same-named stream of another account would make the
		// scrape fail on duplicate series, so only the first is reported.
		seen := map[string]bool{}
		for _, acc := range jz.AccountDetails {
			for _, st := range acc.Streams {
				if st.Cluster == nil || seen[st.Name] {
					continue
				}
				seen[st.Name] = true
				for _, p := range st.Cluster.Replicas {
					g(c.replicaLag, float64(p.Lag), st.Name, p.Name)
					g(c.replicaCurrent, b2f(p.Current), st.Name, p.Name)
				}
			}
		}
	}
	r := c.ready()
	g(c.reach, float64(r.Reachable))
	g(c.size, float64(r.ClusterSize))
	g(c.majority, b2f(c.m.HasMajority()))
	g(c.metaLeader, b2f(r.MetaLeader != ""))
	g(c.isMeta, b2f(r.MetaLeader == c.m.Name()))
	g(c.readyD, b2f(r.Ready))
	for s, l := range r.Streams {
		if l != "" {
			g(c.streamLeader, 1, s, l)
		}
	}
}
