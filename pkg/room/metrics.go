package room

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics of room ownership on one node. Labels are room names (validated, bounded by the rooms that exist).
type metrics struct {
	owned            *prometheus.GaugeVec
	epoch            *prometheus.GaugeVec
	ticks            *prometheus.CounterVec
	tickSeconds      *prometheus.HistogramVec
	renewSeconds     *prometheus.HistogramVec
	renewErrors      *prometheus.CounterVec
	stepDowns        *prometheus.CounterVec
	applied          *prometheus.CounterVec
	badEvents        *prometheus.CounterVec
	liveDropped      *prometheus.CounterVec
	snapshotAge      *prometheus.GaugeVec
	snapshotErrors   *prometheus.CounterVec
	publishErrors    *prometheus.CounterVec
	pauses           *prometheus.CounterVec
	withheld         *prometheus.CounterVec
	handoffs         *prometheus.CounterVec
	sessions         prometheus.Counter
	sessionsFenced   prometheus.Counter
	fenceNoticeDrops prometheus.Counter
	snapshotBatches  prometheus.Counter
	storedGaps       prometheus.Counter
	bundles          prometheus.Counter
	bundleErrors     prometheus.Counter
	badBundles       prometheus.Counter
	restoredFromTick *prometheus.CounterVec
	lost             *prometheus.CounterVec
	jsonTicks        *prometheus.CounterVec
	fenced           *prometheus.CounterVec
	acquired         *prometheus.CounterVec
	purges           *prometheus.CounterVec
	inputToTick      *prometheus.HistogramVec
	delivery         *prometheus.HistogramVec
	tickGap          *prometheus.HistogramVec
}

// latencyBuckets span 0.5 ms to 4 s: a tick period at 20 Hz is 50 ms, a takeover pause up to a few seconds.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 14)

// gapBuckets span 25 ms to 12.8 s: one tick period at 20 Hz (50 ms) falls in the second and third, a crash
// takeover (0.3-0.6 s), a frozen owner's (2-3 s) and a Raft election (4-9 s) each in their own.
var gapBuckets = prometheus.ExponentialBuckets(0.025, 2, 10)

func newMetrics() *metrics {
	ns := "tickmesh_room_"
	return &metrics{
		owned:            prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "owned", Help: "1 while this node owns the room."}, []string{"room"}),
		epoch:            prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "epoch", Help: "Highest epoch of the room this node has seen."}, []string{"room"}),
		ticks:            prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "ticks_total", Help: "Ticks published by this node as the room's owner."}, []string{"room"}),
		tickSeconds:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ns + "tick_duration_seconds", Help: "Time to step and publish one tick.", Buckets: prometheus.ExponentialBuckets(0.00001, 4, 9)}, []string{"room"}),
		renewSeconds:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ns + "lease_renew_seconds", Help: "Lease renewal round trip (room \"\": the session of the node, which holds its rooms' leases).", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9)}, []string{"room"}),
		renewErrors:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "lease_renew_errors_total", Help: "Lease renewals with an unknown outcome (room \"\": the session of the node)."}, []string{"room"}),
		stepDowns:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "step_downs_total", Help: "Ownership terms ended, by cause."}, []string{"room", "cause"}),
		applied:          prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "events_applied_total", Help: "Player events applied by this node as owner."}, []string{"room", "kind"}),
		badEvents:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "events_rejected_total", Help: "Player events that did not decode or validate."}, []string{"room"}),
		liveDropped:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "live_events_dropped_total", Help: "Live event copies dropped because the owner loop was behind (the stream redelivers them)."}, []string{"room"}),
		snapshotAge:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "snapshot_age_seconds", Help: "Age of the owner's last successful snapshot."}, []string{"room"}),
		snapshotErrors:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "snapshot_errors_total", Help: "Snapshot writes that failed with an unknown outcome."}, []string{"room"}),
		publishErrors:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "publish_errors_total", Help: "Tick publishes that failed."}, []string{"room"}),
		pauses:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "pauses_total", Help: "Times the owner loop confirmed its lease before a tick (after a pause, or without contact)."}, []string{"room"}),
		handoffs:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "handoffs_total", Help: "Rooms this node handed over to another node (balance, shutdown)."}, []string{"room"}),
		sessions:         prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "sessions_total", Help: "Sessions this node opened (one at start, one more after each session it lost)."}),
		sessionsFenced:   prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "sessions_fenced_total", Help: "Sessions of silent nodes this node ended (fenced), freeing their rooms."}),
		fenceNoticeDrops: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "fence_notices_dropped_total", Help: "Peers' fence notices dropped because too many waited to be read (the owners watcher still shows the fence)."}),
		snapshotBatches:  prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "snapshot_batches_total", Help: "Atomic batches of snapshots this node wrote (one replicated write each)."}),
		storedGaps:       prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "stored_gaps_total", Help: "Owner only: times a room's stream follower found stored inputs whose stored copy never came (lost, or stored before its subscription reached the INPUTS leader) and read them from INPUTS."}),
		bundles:          prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "tick_bundles_total", Help: "Tick bundles this node published (each carries the ticks its rooms made within one bundle window)."}),
		bundleErrors:     prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "tick_bundle_errors_total", Help: "Tick bundles that could not be published (their ticks are lost; relays ask for keyframes)."}),
		badBundles:       prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "tick_bundles_malformed_total", Help: "Tick bundles this node's relay received that did not decode (the entries before the bad one were taken)."}),
		withheld:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "ticks_withheld_total", Help: "Ticks not published because this node was out of contact with a majority of the cluster."}, []string{"room"}),
		restoredFromTick: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "restored_from_tick_total", Help: "Takeovers restored from a relayed tick newer than the snapshot."}, []string{"room"}),
		jsonTicks:        prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "json_ticks_total", Help: "Owner only: ticks also published as protocol 1 JSON on the room's tick subject, because something listened there (a node from before protocol 2, the nats CLI, a tool)."}, []string{"room"}),
		lost:             prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "ticks_lost_total", Help: "Ticks this node's relay accepted but could not apply (a delta after a missed tick, before the room's first keyframe here): a keyframe was asked for."}, []string{"room"}),
		fenced:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "ticks_fenced_total", Help: "Ticks dropped by this node's relay fence (stale epoch or seq)."}, []string{"room"}),
		acquired:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "acquired_total", Help: "Leases acquired, by how."}, []string{"room", "how"}),
		purges:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "input_purges_total", Help: "Purges of a room's stored events that two snapshots cover."}, []string{"room"}),
		inputToTick:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ns + "input_to_tick_seconds", Help: "Owner only: from a player event's arrival at this node to the publish of the first tick that carries it.", Buckets: latencyBuckets}, []string{"room"}),
		tickGap:          prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ns + "tick_gap_seconds", Help: "Time between consecutive ticks of a room accepted by this node's relay: one tick period normally, the pause players saw at a failover.", Buckets: gapBuckets}, []string{"room"}),
		delivery:         prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ns + "tick_delivery_seconds", Help: "Age of a tick, from its owner's publish (the owner's clock) to the end of this node's fan-out to its sockets.", Buckets: latencyBuckets}, []string{"room"}),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.owned, m.epoch, m.ticks, m.tickSeconds, m.renewSeconds, m.renewErrors, m.stepDowns,
		m.applied, m.badEvents, m.liveDropped, m.snapshotAge, m.snapshotErrors, m.publishErrors, m.pauses, m.withheld, m.handoffs, m.sessions, m.sessionsFenced, m.fenceNoticeDrops, m.snapshotBatches,
		m.storedGaps, m.bundles, m.bundleErrors, m.badBundles,
		m.restoredFromTick, m.lost, m.jsonTicks, m.fenced, m.acquired, m.purges, m.inputToTick, m.delivery, m.tickGap}
}

// roomSeries are the series of one room that its owner loop updates on every tick or event, looked up once per
// term: the term keeps the room active, so forget does not delete them meanwhile.
type roomSeries struct {
	ticks       prometheus.Counter
	tickSeconds prometheus.Observer
	snapshotAge prometheus.Gauge
	inputToTick prometheus.Observer
	jsonTicks   prometheus.Counter
	badEvents   prometheus.Counter
	liveDropped prometheus.Counter
	applied     map[string]prometheus.Counter // by event kind, filled as kinds come (sim's four at most)
}

func (m *metrics) room(room string) *roomSeries {
	return &roomSeries{
		ticks: m.ticks.WithLabelValues(room), tickSeconds: m.tickSeconds.WithLabelValues(room),
		snapshotAge: m.snapshotAge.WithLabelValues(room), inputToTick: m.inputToTick.WithLabelValues(room),
		jsonTicks: m.jsonTicks.WithLabelValues(room), badEvents: m.badEvents.WithLabelValues(room),
		liveDropped: m.liveDropped.WithLabelValues(room), applied: map[string]prometheus.Counter{},
	}
}

// relayHooks are the relay's per-tick reports of room, on the room's series looked up once: the series live
// while the relay serves the room (forget runs only for a room this node no longer serves).
func (m *metrics) relayHooks(room string) RoomHooks {
	gap, delivery := m.tickGap.WithLabelValues(room), m.delivery.WithLabelValues(room)
	return RoomHooks{
		Gap:    func(d time.Duration) { gap.Observe(d.Seconds()) },
		Fanout: func(age time.Duration) { delivery.Observe(age.Seconds()) },
	}
}

// forget deletes every series of room: a node that no longer serves a room keeps no metrics of it, so the number
// of series stays bounded by the rooms that exist.
func (m *metrics) forget(room string) {
	l := prometheus.Labels{"room": room}
	for _, c := range m.collectors() {
		if v, ok := c.(interface{ DeletePartialMatch(prometheus.Labels) int }); ok {
			v.DeletePartialMatch(l)
		}
	}
}
