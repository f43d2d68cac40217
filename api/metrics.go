package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus collectors, registered on the registry given
// in Options (never the global one).
type metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	assignments *prometheus.CounterVec
	exposures   *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "lift_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method and route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		assignments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_assignments_total",
			Help: "Units assigned through the API, by experiment.",
		}, []string{"experiment"}),
		exposures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "lift_exposures_logged_total",
			Help: "Exposures committed through the API, by source (assign or client).",
		}, []string{"source"}),
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.latency, m.assignments, m.exposures,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(d.Seconds())
}
