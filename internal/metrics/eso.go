package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Kind is an object kind as it prefixes ESO's metric names.
type Kind string

// The kinds ESO reports per-object metrics for.
const (
	KindExternalSecret        Kind = "externalsecret"
	KindClusterExternalSecret Kind = "clusterexternalsecret"
	KindSecretStore           Kind = "secretstore"
	KindClusterSecretStore    Kind = "clustersecretstore"
)

// Kinds lists every Kind.
var Kinds = []Kind{KindExternalSecret, KindClusterExternalSecret, KindSecretStore, KindClusterSecretStore}

// The label names ESO uses: objectLabels on every per-object metric, plus
// the condition's type and status on <kind>_status_condition. A cluster
// object's namespace is "".
var (
	objectLabels    = []string{"name", "namespace"}
	conditionLabels = []string{"name", "namespace", "condition", "status"}
)

// Condition statuses as ESO writes them in the status label.
const (
	statusTrue    = "True"
	statusFalse   = "False"
	statusUnknown = "Unknown"
)

// ESO are the metrics External Secrets Operator exposes, under its names
// and labels, so its Grafana dashboard and users' alert rules keep working
// after a switch. A per-object series is deleted when its object is
// deleted (Forget), so no stale series is left behind.
type ESO struct {
	// SyncCalls is externalsecret_sync_calls_total: reconciles of an
	// ExternalSecret, by name and namespace.
	SyncCalls *prometheus.CounterVec
	// SyncErrors is externalsecret_sync_calls_error: failed syncs of an
	// ExternalSecret, by name and namespace.
	SyncErrors *prometheus.CounterVec
	// Conditions are <kind>_status_condition: 1 for the object's current
	// condition status, 0 for the opposite one.
	Conditions map[Kind]*prometheus.GaugeVec
	// Durations are <kind>_reconcile_duration: how long the object's last
	// reconcile took, in nanoseconds (the unit ESO writes).
	Durations map[Kind]*prometheus.GaugeVec
}

func newESO(reg prometheus.Registerer, providerCalls *prometheus.CounterVec) *ESO {
	e := &ESO{
		SyncCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "externalsecret_sync_calls_total", Help: "Total number of the External Secret sync calls",
		}, objectLabels),
		SyncErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "externalsecret_sync_calls_error", Help: "Total number of the External Secret sync errors",
		}, objectLabels),
		Conditions: map[Kind]*prometheus.GaugeVec{},
		Durations:  map[Kind]*prometheus.GaugeVec{},
	}
	help := map[Kind]string{
		KindExternalSecret:        "External Secret",
		KindClusterExternalSecret: "Cluster External Secret",
		KindSecretStore:           "Secret Store",
		KindClusterSecretStore:    "Cluster Secret Store",
	}
	for _, k := range Kinds {
		e.Conditions[k] = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: string(k) + "_status_condition", Help: "The status condition of a specific " + help[k],
		}, conditionLabels)
		e.Durations[k] = prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: string(k) + "_reconcile_duration", Help: "The duration time to reconcile the " + help[k] + " (nanoseconds)",
		}, objectLabels)
	}
	if reg == nil {
		return e
	}
	e.SyncCalls = register(reg, e.SyncCalls)
	e.SyncErrors = register(reg, e.SyncErrors)
	for _, k := range Kinds {
		e.Conditions[k] = register(reg, e.Conditions[k])
		e.Durations[k] = register(reg, e.Durations[k])
	}
	register[prometheus.Collector](reg, &providerAPICalls{
		src:  providerCalls,
		desc: prometheus.NewDesc("externalsecret_provider_api_calls_count", "Number of API calls towards the secret provider", []string{"provider", "call", "status"}, nil),
	})
	return e
}

// ObserveReconcile records one reconcile of an object that started at
// start: its <kind>_reconcile_duration and, for an ExternalSecret, one
// externalsecret_sync_calls_total. Call it for objects keyferry serves
// only (not for deleted ones, nor for those of another controller class).
func (e *ESO) ObserveReconcile(kind Kind, namespace, name string, start time.Time) {
	e.Durations[kind].WithLabelValues(name, namespace).Set(float64(time.Since(start)))
	if kind == KindExternalSecret {
		e.SyncCalls.WithLabelValues(name, namespace).Inc()
	}
}

// SyncFailed counts one failed sync of an ExternalSecret
// (externalsecret_sync_calls_error).
func (e *ESO) SyncFailed(namespace, name string) {
	e.SyncErrors.WithLabelValues(name, namespace).Inc()
}

// SetCondition records an object's condition as ESO does: the series of
// the current status is 1 and the series of the opposite status is 0, so
// `<kind>_status_condition{condition="Ready",status="False"} == 1` selects
// the failing objects. status is "True", "False" or "Unknown".
func (e *ESO) SetCondition(kind Kind, namespace, name, condition, status string) {
	vec := e.Conditions[kind]
	set := func(s string, v float64) { vec.WithLabelValues(name, namespace, condition, s).Set(v) }
	switch status {
	case statusTrue:
		set(statusTrue, 1)
		set(statusFalse, 0)
		vec.DeleteLabelValues(name, namespace, condition, statusUnknown)
	case statusFalse:
		set(statusFalse, 1)
		set(statusTrue, 0)
		vec.DeleteLabelValues(name, namespace, condition, statusUnknown)
	default:
		set(statusUnknown, 1)
		set(statusTrue, 0)
		set(statusFalse, 0)
	}
}

// Forget deletes every series of a deleted object (or of one keyferry no
// longer serves).
func (e *ESO) Forget(kind Kind, namespace, name string) {
	match := prometheus.Labels{"name": name, "namespace": namespace}
	e.Conditions[kind].DeletePartialMatch(match)
	e.Durations[kind].DeletePartialMatch(match)
	if kind == KindExternalSecret {
		e.SyncCalls.DeletePartialMatch(match)
		e.SyncErrors.DeletePartialMatch(match)
	}
}

// ESOProviderName is the provider label ESO writes for a keyferry provider
// (spec.provider field name). keyferry's aws provider serves both AWS
// services, so its calls are reported as "AWS".
func ESOProviderName(provider string) string {
	switch provider {
	case "vault":
		return "HashiCorp/Vault"
	case "azurekv":
		return "Azure/KeyVault"
	case "gcpsm":
		return "GCP/SecretManager"
	case "aws":
		return "AWS"
	case "kubernetes":
		return "Kubernetes"
	case "webhook":
		return "Webhook"
	case "fake":
		return "Fake"
	case "file":
		return "File"
	default:
		return provider
	}
}

// providerAPICalls is externalsecret_provider_api_calls_count, derived at
// scrape time from keyferry_provider_calls_total so the two never
// disagree. keyferry counts calls per store, not per provider API
// operation, so the call label is empty.
type providerAPICalls struct {
	src  *prometheus.CounterVec
	desc *prometheus.Desc
}

func (c *providerAPICalls) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *providerAPICalls) Collect(ch chan<- prometheus.Metric) {
	in := make(chan prometheus.Metric)
	go func() {
		c.src.Collect(in)
		close(in)
	}()
	for m := range in {
		var d dto.Metric
		if err := m.Write(&d); err != nil || d.Counter == nil {
			continue
		}
		var provider, outcome string
		for _, l := range d.Label {
			switch l.GetName() {
			case "provider":
				provider = l.GetValue()
			case "outcome":
				outcome = l.GetValue()
			}
		}
		status := "success"
		if outcome == "error" {
			status = "error"
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, d.Counter.GetValue(), ESOProviderName(provider), "", status)
	}
}
