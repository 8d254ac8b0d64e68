package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestESOStatusConditionFollowsTheReadyStatus(t *testing.T) {
	tests := []struct {
		name   string
		status []string // successive statuses
		want   string
	}{
		{"ready", []string{"True"}, `
externalsecret_status_condition{condition="Ready",name="db",namespace="app",status="False"} 0
externalsecret_status_condition{condition="Ready",name="db",namespace="app",status="True"} 1
`},
		{"failing", []string{"True", "False"}, `
externalsecret_status_condition{condition="Ready",name="db",namespace="app",status="False"} 1
externalsecret_status_condition{condition="Ready",name="db",namespace="app",status="True"} 0
`},
		{"unknown", []string{"Unknown"}, `
externalsecret_status_condition{condition="Ready",name="db",namespace="app",status="False"} 0
externalsecret_status_condition{condition="Ready",name="db",namespace="app",status="True"} 0
externalsecret_status_condition{condition="Ready",name="db",namespace="app",status="Unknown"} 1
`},
		{"unknown then ready drops Unknown", []string{"Unknown", "True"}, `
externalsecret_status_condition{condition="Ready",name="db",namespace="app",status="False"} 0
externalsecret_status_condition{condition="Ready",name="db",namespace="app",status="True"} 1
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := New(reg)
			for _, s := range tt.status {
				m.ESO.SetCondition(KindExternalSecret, "app", "db", "Ready", s)
			}
			want := "# HELP externalsecret_status_condition The status condition of a specific External Secret\n# TYPE externalsecret_status_condition gauge" + tt.want
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "externalsecret_status_condition"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestESOForgetDeletesEverySeriesOfTheObject(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	for _, k := range Kinds {
		m.ESO.SetCondition(k, "app", "gone", "Ready", "True")
		m.ESO.SetCondition(k, "app", "kept", "Ready", "False")
		m.ESO.ObserveReconcile(k, "app", "gone", time.Now())
		m.ESO.ObserveReconcile(k, "app", "kept", time.Now())
	}
	m.ESO.SyncFailed("app", "gone")
	for _, k := range Kinds {
		m.ESO.Forget(k, "app", "gone")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, mf := range mfs {
		for _, mt := range mf.Metric {
			for _, l := range mt.Label {
				if l.GetName() == "name" {
					if l.GetValue() == "gone" {
						t.Errorf("%s still has a series of the deleted object", mf.GetName())
					}
					seen++
				}
			}
		}
	}
	// kept: 2 condition series + 1 duration per kind, + 1 sync call.
	if want := len(Kinds)*3 + 1; seen != want {
		t.Errorf("series of the kept object = %d, want %d", seen, want)
	}
}

func TestESOSyncCountersAndDuration(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.ESO.ObserveReconcile(KindExternalSecret, "app", "db", time.Now().Add(-time.Second))
	m.ESO.ObserveReconcile(KindExternalSecret, "app", "db", time.Now())
	m.ESO.SyncFailed("app", "db")
	db := map[string]string{"name": "db", "namespace": "app"}
	if got, n := gathered(t, reg, "externalsecret_sync_calls_total", db); got != 2 || n != 1 {
		t.Errorf("sync calls = %v in %d series, want 2 in one", got, n)
	}
	if got, n := gathered(t, reg, "externalsecret_sync_calls_error", db); got != 1 || n != 1 {
		t.Errorf("sync errors = %v in %d series, want 1 in one", got, n)
	}
	m.ESO.ObserveReconcile(KindSecretStore, "app", "vault", time.Now().Add(-time.Second))
	if got, _ := gathered(t, reg, "secretstore_reconcile_duration", map[string]string{"name": "vault", "namespace": "app"}); got < float64(time.Second) {
		t.Errorf("duration = %v, want at least 1e9 (nanoseconds, as ESO writes it)", got)
	}
	if _, n := gathered(t, reg, "externalsecret_sync_calls_total", nil); n != 1 {
		t.Errorf("store reconciles must not count as ExternalSecret sync calls: %d series", n)
	}
	if _, n := gathered(t, reg, "externalsecret_sync_calls_error", map[string]string{"name": "vault"}); n != 0 {
		t.Errorf("an object that never failed has %d sync error series, want none", n)
	}
}

// gathered returns the sum of the values of the series of metric name
// whose labels include labels, and how many there are.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (sum float64, n int) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, mt := range mf.Metric {
			have := map[string]string{}
			for _, l := range mt.Label {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			n++
			sum += mt.GetCounter().GetValue() + mt.GetGauge().GetValue()
		}
	}
	return sum, n
}

func TestESOProviderAPICallsMirrorKeyferrysCounter(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.ProviderCalls.WithLabelValues("vault", "ok").Add(3)
	m.ProviderCalls.WithLabelValues("vault", "error").Inc()
	m.ProviderCalls.WithLabelValues("azurekv", "ok").Inc()
	want := `
# HELP externalsecret_provider_api_calls_count Number of API calls towards the secret provider
# TYPE externalsecret_provider_api_calls_count counter
externalsecret_provider_api_calls_count{call="",provider="Azure/KeyVault",status="success"} 1
externalsecret_provider_api_calls_count{call="",provider="HashiCorp/Vault",status="error"} 1
externalsecret_provider_api_calls_count{call="",provider="HashiCorp/Vault",status="success"} 3
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "externalsecret_provider_api_calls_count"); err != nil {
		t.Fatal(err)
	}
}

func TestNewTwiceReusesRegisteredCollectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := New(reg), New(reg)
	a.ESO.SetCondition(KindSecretStore, "ns", "s", "Ready", "True")
	if a.ESO.objects != b.ESO.objects {
		t.Fatal("a second New registered new collectors instead of reusing the first ones")
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
