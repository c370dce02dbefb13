package serve

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus collectors, on a registry of its own
// (so two servers in one process, as in tests, do not collide).
type metrics struct {
	reg                   *prometheus.Registry
	requests              *prometheus.CounterVec
	promptTokens          prometheus.Counter
	genTokens             prometheus.Counter
	ttft, interToken, dur prometheus.Histogram
	stepSeconds           *prometheus.HistogramVec
	stepTokens            *prometheus.CounterVec
}

func newMetrics(queued, active func() float64) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "armor_requests_total",
			Help: "HTTP requests by endpoint and status code."}, []string{"endpoint", "code"}),
		promptTokens: prometheus.NewCounter(prometheus.CounterOpts{Name: "armor_prompt_tokens_total",
			Help: "Prompt tokens of the requests admitted to a slot."}),
		genTokens: prometheus.NewCounter(prometheus.CounterOpts{Name: "armor_generated_tokens_total",
			Help: "Tokens generated."}),
		ttft: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "armor_time_to_first_token_seconds",
			Help:    "From a request's arrival in the queue to its first generated token.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		interToken: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "armor_inter_token_seconds",
			Help:    "Time between consecutive generated tokens of a request.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		dur: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "armor_request_duration_seconds",
			Help:    "Generation requests from arrival to their last byte.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}),
		stepSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "armor_step_seconds",
			Help:    "Scheduler steps (one batched forward pass and its sampling) by kind: decode (only decoding sequences) or mixed (with a prompt chunk).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}, []string{"kind"}),
		stepTokens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "armor_step_tokens_total",
			Help: "Tokens run through the model by step kind (decode or mixed)."}, []string{"kind"}),
	}
	reg.MustRegister(m.requests, m.promptTokens, m.genTokens, m.ttft, m.interToken, m.dur, m.stepSeconds, m.stepTokens,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "armor_queue_depth",
			Help: "Requests waiting for a slot."}, queued),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "armor_active_sequences",
			Help: "Sequences holding a slot (prefilling or decoding)."}, active),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
