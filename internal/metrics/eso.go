package metrics

import (
	"sync"
	"time"
	"unique"

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
//
// The per-object series are kept as a few numbers per object and turned
// into metrics when scraped (objectMetrics): a client_golang series per
// label set costs about 600 bytes, and ESO has four per ExternalSecret.
type ESO struct {
	objects *objectMetrics
}

func newESO(reg prometheus.Registerer, providerCalls *prometheus.CounterVec) *ESO {
	e := &ESO{objects: newObjectMetrics()}
	if reg == nil {
		return e
	}
	e.objects = register(reg, e.objects)
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
	d := float64(time.Since(start))
	e.objects.update(kind, namespace, name, func(s *objectSeries) {
		s.duration, s.has = d, s.has|hasDuration
		if kind == KindExternalSecret {
			s.syncCalls++
			s.has |= hasSyncCalls
		}
	})
}

// SyncFailed counts one failed sync of an ExternalSecret
// (externalsecret_sync_calls_error).
func (e *ESO) SyncFailed(namespace, name string) {
	e.objects.update(KindExternalSecret, namespace, name, func(s *objectSeries) {
		s.syncErrors++
		s.has |= hasSyncErrors
	})
}

// SetCondition records an object's condition as ESO does: the series of
// the current status is 1 and the series of the opposite status is 0, so
// `<kind>_status_condition{condition="Ready",status="False"} == 1` selects
// the failing objects. status is "True", "False" or "Unknown" (the
// Unknown series exists only while the status is Unknown).
func (e *ESO) SetCondition(kind Kind, namespace, name, condition, status string) {
	switch status {
	case statusTrue, statusFalse:
	default:
		status = statusUnknown
	}
	e.objects.update(kind, namespace, name, func(s *objectSeries) {
		for i := range s.conditions {
			if s.conditions[i].condition == condition {
				s.conditions[i].status = status
				return
			}
		}
		s.conditions = append(s.conditions, conditionStatus{condition: unique.Make(condition).Value(), status: status})
	})
}

// Forget deletes every series of a deleted object (or of one keyferry no
// longer serves).
func (e *ESO) Forget(kind Kind, namespace, name string) {
	e.objects.forget(kind, namespace, name)
}

// objectMetrics holds the per-object series of every kind and is their
// collector: externalsecret_sync_calls_total, externalsecret_sync_calls_error,
// <kind>_status_condition and <kind>_reconcile_duration.
type objectMetrics struct {
	syncCalls, syncErrors *prometheus.Desc
	conditions, durations map[Kind]*prometheus.Desc

	mu      sync.Mutex
	objects map[Kind]map[objectKey]*objectSeries
}

type objectKey struct{ namespace, name string }

// objectSeries is what one object's series say.
type objectSeries struct {
	has                   seriesSet
	syncCalls, syncErrors float64
	duration              float64
	conditions            []conditionStatus
}

// seriesSet says which of an object's series exist: a series appears when
// first set, as a client_golang vector's does.
type seriesSet uint8

const (
	hasSyncCalls seriesSet = 1 << iota
	hasSyncErrors
	hasDuration
)

type conditionStatus struct{ condition, status string }

func newObjectMetrics() *objectMetrics {
	m := &objectMetrics{
		syncCalls:  prometheus.NewDesc("externalsecret_sync_calls_total", "Total number of the External Secret sync calls", objectLabels, nil),
		syncErrors: prometheus.NewDesc("externalsecret_sync_calls_error", "Total number of the External Secret sync errors", objectLabels, nil),
		conditions: map[Kind]*prometheus.Desc{},
		durations:  map[Kind]*prometheus.Desc{},
		objects:    map[Kind]map[objectKey]*objectSeries{},
	}
	help := map[Kind]string{
		KindExternalSecret:        "External Secret",
		KindClusterExternalSecret: "Cluster External Secret",
		KindSecretStore:           "Secret Store",
		KindClusterSecretStore:    "Cluster Secret Store",
	}
	for _, k := range Kinds {
		m.conditions[k] = prometheus.NewDesc(string(k)+"_status_condition", "The status condition of a specific "+help[k], conditionLabels, nil)
		m.durations[k] = prometheus.NewDesc(string(k)+"_reconcile_duration", "The duration time to reconcile the "+help[k]+" (nanoseconds)", objectLabels, nil)
		m.objects[k] = map[objectKey]*objectSeries{}
	}
	return m
}

// update changes an object's series, creating its record on first use.
func (m *objectMetrics) update(kind Kind, namespace, name string, change func(*objectSeries)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	objs, ok := m.objects[kind]
	if !ok {
		return
	}
	key := objectKey{namespace: namespace, name: name}
	s, ok := objs[key]
	if !ok {
		s = &objectSeries{}
		key.namespace = unique.Make(namespace).Value()
		objs[key] = s
	}
	change(s)
}

func (m *objectMetrics) forget(kind Kind, namespace, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objects[kind], objectKey{namespace: namespace, name: name})
}

// Describe sends the descriptions of every per-object metric.
func (m *objectMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.syncCalls
	ch <- m.syncErrors
	for _, k := range Kinds {
		ch <- m.conditions[k]
		ch <- m.durations[k]
	}
}

// Collect sends every object's series.
func (m *objectMetrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, k := range Kinds {
		for key, s := range m.objects[k] {
			if s.has&hasSyncCalls != 0 {
				ch <- prometheus.MustNewConstMetric(m.syncCalls, prometheus.CounterValue, s.syncCalls, key.name, key.namespace)
			}
			if s.has&hasSyncErrors != 0 {
				ch <- prometheus.MustNewConstMetric(m.syncErrors, prometheus.CounterValue, s.syncErrors, key.name, key.namespace)
			}
			if s.has&hasDuration != 0 {
				gauge(m.durations[k], s.duration, key.name, key.namespace)
			}
			for _, c := range s.conditions {
				// ESO's pattern: the current status 1, the opposite 0.
				gauge(m.conditions[k], boolValue(c.status == statusTrue), key.name, key.namespace, c.condition, statusTrue)
				gauge(m.conditions[k], boolValue(c.status == statusFalse), key.name, key.namespace, c.condition, statusFalse)
				if c.status == statusUnknown {
					gauge(m.conditions[k], 1, key.name, key.namespace, c.condition, statusUnknown)
				}
			}
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
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
