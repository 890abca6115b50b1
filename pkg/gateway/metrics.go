package gateway

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sockets        prometheus.Gauge
	accepted       prometheus.Counter
	rejected       *prometheus.CounterVec
	closed         *prometheus.CounterVec
	ticksSent      prometheus.Counter
	tickFrames     *prometheus.CounterVec
	tickBytes      *prometheus.CounterVec
	sent           [numKinds]sentCounters // tickFrames and tickBytes by kind, resolved once
	ticksReplaced  prometheus.Counter
	clientErrors   *prometheus.CounterVec
	eventsAcked    prometheus.Counter
	publishRetries prometheus.Counter
	publishErrors  prometheus.Counter
	publishDropped prometheus.Counter
	batchesStored  prometheus.Counter
	eventsGivenUp  prometheus.Counter
	eventsPending  prometheus.GaugeFunc // set by New: it reads the publisher's count
}

func newMetrics() *metrics {
	ns := "tickmesh_gateway_"
	m := &metrics{
		sockets:        prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "sockets", Help: "Open WebSocket connections."}),
		accepted:       prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "connections_total", Help: "WebSocket connections upgraded."}),
		rejected:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "rejected_total", Help: "Connections refused, by reason."}, []string{"reason"}),
		closed:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "closed_total", Help: "Connections closed by the server, by close code."}, []string{"code"}),
		ticksSent:      prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "ticks_sent_total", Help: "Tick frames written to sockets."}),
		tickFrames:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "tick_frames_total", Help: "Tick frames written to sockets, by kind: json (protocol 1), keyframe or delta (protocol 2)."}, []string{"kind"}),
		tickBytes:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "tick_bytes_total", Help: "Bytes of tick frames written to sockets (WebSocket framing included), by kind: json (protocol 1), keyframe or delta (protocol 2)."}, []string{"kind"}),
		ticksReplaced:  prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "ticks_replaced_total", Help: "Unsent ticks replaced by a newer one (slow sockets)."}),
		clientErrors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "client_errors_total", Help: "Error frames sent to clients, by code."}, []string{"code"}),
		eventsAcked:    prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "events_acked_total", Help: "Player events acknowledged by JetStream."}),
		publishRetries: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "event_publish_retries_total", Help: "Durable publishes (batches) sent again after a failed attempt."}),
		publishErrors:  prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "event_publish_errors_total", Help: "Fast-path event publishes that failed."}),
		publishDropped: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "events_dropped_total", Help: "Inputs refused (answered not_ready) because the node held its maximum of inputs not yet stored."}),
		batchesStored:  prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "input_batches_total", Help: "Durable publishes (batches of a room's events) stored by INPUTS."}),
		eventsGivenUp:  prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "events_given_up_total", Help: "Events whose batch was not stored within the give-up time (their sockets are told)."}),
	}
	for k, name := range kindNames {
		m.sent[k] = sentCounters{frames: m.tickFrames.WithLabelValues(name), bytes: m.tickBytes.WithLabelValues(name)}
	}
	return m
}

// sentCounters count the tick frames of one kind written to sockets.
type sentCounters struct {
	frames, bytes prometheus.Counter
}

// frameKind is what a tick frame is, for the metrics.
type frameKind uint8

const (
	kindJSON frameKind = iota
	kindKeyframe
	kindDelta
	numKinds
)

var kindNames = [numKinds]string{"json", "keyframe", "delta"}

// tickWritten counts a tick frame of n bytes written whole.
func (m *metrics) tickWritten(k frameKind, n int) {
	m.ticksSent.Inc()
	m.sent[k].frames.Inc()
	m.sent[k].bytes.Add(float64(n))
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.sockets, m.accepted, m.rejected, m.closed, m.ticksSent, m.tickFrames, m.tickBytes, m.ticksReplaced,
		m.clientErrors, m.eventsAcked, m.publishRetries, m.publishErrors, m.publishDropped, m.batchesStored, m.eventsGivenUp,
		m.eventsPending}
}
