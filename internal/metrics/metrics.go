// Package metrics defines keyferry's Prometheus metrics. keyferry's own
// metrics (keyferry_*) carry kinds, provider names, results and reasons
// (and, for workload restarts, the namespace), never object names. Beside
// them it exposes the metrics External Secrets Operator users' dashboards
// and alert rules read (eso.go), under
// ESO's names and with ESO's labels, which include the object's name and
// namespace. No label ever carries a secret value. docs/metrics.md lists
// every metric.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the operator's collectors.
type Metrics struct {
	// Syncs counts syncs by front-end kind, result (success, error) and
	// reason (the status reason).
	Syncs *prometheus.CounterVec
	// ProviderCalls counts calls to stores by provider and outcome (ok,
	// error).
	ProviderCalls *prometheus.CounterVec
	// CacheLookups counts fetch-layer lookups by result (hit, miss,
	// coalesced).
	CacheLookups *prometheus.CounterVec
	// SecretWrites counts Secret writes by operation (create, update,
	// delete).
	SecretWrites *prometheus.CounterVec
	// StoreProbes counts probes of failing stores by provider and outcome
	// (recovered, failed).
	StoreProbes *prometheus.CounterVec
	// WorkloadRestarts counts workloads restarted because a Secret they use
	// changed content, by kind (Deployment, StatefulSet, DaemonSet,
	// Rollout) and namespace (docs/restarts.md).
	WorkloadRestarts *prometheus.CounterVec
	// EventsSuppressed counts Normal Events left out because the Event
	// budget was spent (internal/eventbudget).
	EventsSuppressed prometheus.Counter
	// StatusesPending is the number of statuses decided but not yet
	// written, by kind (internal/controller/statuswrite).
	StatusesPending *prometheus.GaugeVec
	// ESO holds the metrics under External Secrets Operator's names.
	ESO *ESO
}

// New creates the collectors and registers them with reg (nil registers
// nothing). Collectors already registered by an earlier New in the same
// process are reused.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyferry_syncs_total", Help: "Syncs by kind, result and reason.",
		}, []string{"kind", "result", "reason"}),
		ProviderCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyferry_provider_calls_total", Help: "Calls to secret stores by provider and outcome.",
		}, []string{"provider", "outcome"}),
		CacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyferry_fetch_lookups_total", Help: "Fetch-layer lookups by result: hit (cached within the window), coalesced (joined an in-flight call) or miss (called the store).",
		}, []string{"result"}),
		SecretWrites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyferry_secret_writes_total", Help: "Secret writes by operation.",
		}, []string{"operation"}),
		StoreProbes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyferry_store_probes_total", Help: "Probes of failing stores by provider and outcome: recovered (the store answered; its waiting objects are re-synced) or failed.",
		}, []string{"provider", "outcome"}),
		WorkloadRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyferry_workload_restarts_total", Help: "Workloads restarted because a Secret they use changed content, by kind and namespace.",
		}, []string{"kind", "namespace"}),
		StatusesPending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyferry_statuses_pending", Help: "Statuses decided but not yet written, by kind: while many objects sync, statuses are written behind their Secrets.",
		}, []string{"kind"}),
		EventsSuppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyferry_events_suppressed_total", Help: "Normal Events left out because the Event budget was spent (--normal-events-per-second, --normal-event-burst); Warning Events are never left out.",
		}),
	}
	if reg != nil {
		m.Syncs = register(reg, m.Syncs)
		m.ProviderCalls = register(reg, m.ProviderCalls)
		m.CacheLookups = register(reg, m.CacheLookups)
		m.SecretWrites = register(reg, m.SecretWrites)
		m.StoreProbes = register(reg, m.StoreProbes)
		m.WorkloadRestarts = register(reg, m.WorkloadRestarts)
		m.EventsSuppressed = register(reg, m.EventsSuppressed)
		m.StatusesPending = register(reg, m.StatusesPending)
	}
	m.ESO = newESO(reg, m.ProviderCalls)
	return m
}

// register registers c with reg, or returns the collector of the same
// description an earlier call registered.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}
