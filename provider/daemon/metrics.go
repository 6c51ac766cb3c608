package daemon

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are served on /metrics in Prometheus' text format.
type metrics struct {
	reg          *prometheus.Registry
	bids         *prometheus.CounterVec
	leasesWon    prometheus.Counter
	leasesClosed *prometheus.CounterVec
	leases       prometheus.Gauge
	containers   prometheus.Gauge
	attestations *prometheus.CounterVec
	earnings     prometheus.Counter
	height       prometheus.Gauge
	lag          prometheus.Gauge
	evictions    prometheus.Counter
}

func newMetrics() *metrics {
	m := &metrics{
		reg:          prometheus.NewRegistry(),
		bids:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gpunet_provider_bids_total", Help: "Orders considered, by outcome (placed, skipped, refused, closed_<reason>)."}, []string{"outcome"}),
		leasesWon:    prometheus.NewCounter(prometheus.CounterOpts{Name: "gpunet_provider_leases_won_total", Help: "Leases won."}),
		leasesClosed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gpunet_provider_leases_closed_total", Help: "Leases closed, by reason."}, []string{"reason"}),
		leases:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "gpunet_provider_leases", Help: "Live leases (pending or active) of this provider."}),
		containers:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "gpunet_provider_containers_running", Help: "Lease containers running."}),
		attestations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gpunet_provider_attestations_total", Help: "Attestations of the active leases, by outcome (sent, failed)."}, []string{"outcome"}),
		earnings:     prometheus.NewCounter(prometheus.CounterOpts{Name: "gpunet_provider_earnings_ugpn_total", Help: "Net ugpn paid to this provider since the daemon started."}),
		height:       prometheus.NewGauge(prometheus.GaugeOpts{Name: "gpunet_provider_processed_height", Help: "Last block height processed."}),
		lag:          prometheus.NewGauge(prometheus.GaugeOpts{Name: "gpunet_provider_chain_lag_blocks", Help: "Blocks between the node's head and the last processed."}),
		evictions:    prometheus.NewCounter(prometheus.CounterOpts{Name: "gpunet_provider_storage_evictions_total", Help: "Replicas the storage watch stopped for passing their storage size."}),
	}
	m.reg.MustRegister(m.bids, m.leasesWon, m.leasesClosed, m.leases, m.containers, m.attestations, m.earnings, m.height, m.lag, m.evictions)
	// The daemon's own footprint: heap, stacks, goroutines and GC (go_*),
	// resident memory, CPU and open files (process_*).
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
