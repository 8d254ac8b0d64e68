package operator

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// scrape is one parsed /metrics response.
type scrape map[string]*dto.MetricFamily

// value returns the value of the series of family with exactly the given
// labels, and whether it exists.
func (s scrape) value(family string, labels map[string]string) (float64, bool) {
	mf, ok := s[family]
	if !ok {
		return 0, false
	}
	for _, m := range mf.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			if got[k] != v {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

// series lists the label sets of family that have name=name and
// namespace=namespace.
func (s scrape) series(family, namespace, name string) []string {
	var out []string
	mf, ok := s[family]
	if !ok {
		return nil
	}
	for _, m := range mf.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if got["name"] == name && got["namespace"] == namespace {
			out = append(out, fmt.Sprint(got))
		}
	}
	return out
}

func scrapeMetrics(ctx context.Context, url string) (scrape, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return nil, "", fmt.Errorf("parsing metrics: %w", err)
	}
	return mfs, string(body), nil
}

// waitMetrics scrapes until check accepts the scrape.
func waitMetrics(t *testing.T, url, what string, check func(scrape) (bool, string)) (scrape, string) {
	t.Helper()
	var last scrape
	var body string
	testenv.Eventually(t, what, func(ctx context.Context) (bool, string) {
		s, b, err := scrapeMetrics(ctx, url)
		if err != nil {
			return false, err.Error()
		}
		last, body = s, b
		return check(s)
	})
	return last, body
}

// TestESOMetricNamesOnTheMetricsEndpoint: ESO's metric names, types and
// labels appear on /metrics beside keyferry's own after a sync and after a
// failure, and a deleted object's series go away.
func TestESOMetricNamesOnTheMetricsEndpoint(t *testing.T) {
	addr := testenv.FreeAddr(t)
	startOperator(t, func(o *operator.Options) { o.MetricsAddr = addr })
	url := "http://" + addr + "/metrics"
	ctx := context.Background()
	ns := env.Namespace(t, "metrics-test", "yes")
	const canary = "metrics-canary-value-7f3a"
	css := "css-" + ns
	ces := "ces-" + ns
	env.Apply(t, ns, fakeStore("SecretStore", "store", "", "good", canary))
	env.Apply(t, "", fakeStore("ClusterSecretStore", css, "", "good", canary))
	env.Apply(t, ns, externalSecret("ok", "SecretStore", "store", "good"))
	env.Apply(t, ns, externalSecret("broken", "SecretStore", "store", "missing"))
	env.Apply(t, "", fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ClusterExternalSecret
metadata:
  name: %s
spec:
  namespaceSelectors:
    - matchLabels: {kubernetes.io/metadata.name: %s}
  externalSecretName: from-ces
  externalSecretSpec:
    secretStoreRef: {kind: ClusterSecretStore, name: %s}
    data:
      - secretKey: value
        remoteRef: {key: good}
`, ces, ns, css))
	env.WaitReady(t, ns, "ok", metav1.ConditionTrue, "SecretSynced")
	env.WaitReady(t, ns, "broken", metav1.ConditionFalse, "RemoteSecretNotFound")
	env.WaitReady(t, ns, "from-ces", metav1.ConditionTrue, "SecretSynced")

	obj := func(name string, extra ...string) map[string]string {
		m := map[string]string{"name": name, "namespace": ns}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return m
	}
	ready := func(name, namespace, status string) map[string]string {
		return map[string]string{"name": name, "namespace": namespace, "condition": "Ready", "status": status}
	}
	type want struct {
		family string
		labels map[string]string
		check  func(float64) bool
		desc   string
	}
	eq := func(v float64) func(float64) bool { return func(x float64) bool { return x == v } }
	atLeast := func(v float64) func(float64) bool { return func(x float64) bool { return x >= v } }
	wants := []want{
		{"externalsecret_status_condition", ready("ok", ns, "True"), eq(1), "1"},
		{"externalsecret_status_condition", ready("ok", ns, "False"), eq(0), "0"},
		{"externalsecret_status_condition", ready("broken", ns, "False"), eq(1), "1"},
		{"externalsecret_status_condition", ready("broken", ns, "True"), eq(0), "0"},
		{"externalsecret_sync_calls_total", obj("ok"), atLeast(1), ">= 1"},
		{"externalsecret_sync_calls_total", obj("broken"), atLeast(1), ">= 1"},
		{"externalsecret_sync_calls_error", obj("broken"), atLeast(1), ">= 1"},
		{"externalsecret_reconcile_duration", obj("ok"), atLeast(1), "> 0 (nanoseconds)"},
		{"secretstore_status_condition", ready("store", ns, "True"), eq(1), "1"},
		{"secretstore_status_condition", ready("store", ns, "False"), eq(0), "0"},
		{"secretstore_reconcile_duration", obj("store"), atLeast(1), "> 0"},
		{"clustersecretstore_status_condition", ready(css, "", "True"), eq(1), "1"},
		{"clustersecretstore_reconcile_duration", map[string]string{"name": css, "namespace": ""}, atLeast(1), "> 0"},
		{"clusterexternalsecret_status_condition", ready(ces, "", "True"), eq(1), "1"},
		{"clusterexternalsecret_status_condition", ready(ces, "", "False"), eq(0), "0"},
		{"clusterexternalsecret_reconcile_duration", map[string]string{"name": ces, "namespace": ""}, atLeast(1), "> 0"},
		{"externalsecret_provider_api_calls_count", map[string]string{"provider": "Fake", "call": "", "status": "success"}, atLeast(1), ">= 1"},
		// keyferry's own metrics stay.
		{"keyferry_syncs_total", map[string]string{"kind": "ExternalSecret", "result": "success", "reason": ""}, atLeast(1), ">= 1"},
		{"keyferry_provider_calls_total", map[string]string{"provider": "fake", "outcome": "ok"}, atLeast(1), ">= 1"},
		// Every status decided has been written.
		{"keyferry_statuses_pending", map[string]string{"kind": "ExternalSecret"}, eq(0), "0"},
	}
	s, body := waitMetrics(t, url, "ESO's metrics after a sync and a failure", func(s scrape) (bool, string) {
		for _, w := range wants {
			v, ok := s.value(w.family, w.labels)
			if !ok {
				return false, fmt.Sprintf("no series %s%v; have %v", w.family, w.labels, s.series(w.family, w.labels["namespace"], w.labels["name"]))
			}
			if !w.check(v) {
				return false, fmt.Sprintf("%s%v = %v, want %s", w.family, w.labels, v, w.desc)
			}
		}
		return true, ""
	})
	types := map[string]dto.MetricType{
		"externalsecret_sync_calls_total": dto.MetricType_COUNTER, "externalsecret_sync_calls_error": dto.MetricType_COUNTER,
		"externalsecret_provider_api_calls_count": dto.MetricType_COUNTER,
		"externalsecret_status_condition":         dto.MetricType_GAUGE, "externalsecret_reconcile_duration": dto.MetricType_GAUGE,
		"secretstore_status_condition": dto.MetricType_GAUGE, "secretstore_reconcile_duration": dto.MetricType_GAUGE,
		"clustersecretstore_status_condition": dto.MetricType_GAUGE, "clustersecretstore_reconcile_duration": dto.MetricType_GAUGE,
		"clusterexternalsecret_status_condition": dto.MetricType_GAUGE, "clusterexternalsecret_reconcile_duration": dto.MetricType_GAUGE,
	}
	for name, typ := range types {
		if mf := s[name]; mf == nil || mf.GetType() != typ {
			t.Errorf("%s: type %v, want %v", name, mf.GetType(), typ)
		}
	}
	if strings.Contains(body, canary) {
		t.Fatal("a secret value appears on /metrics")
	}

	// Deleted objects leave no series behind.
	for _, o := range []client.Object{
		&esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ok"}},
		&esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "broken"}},
		&esv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "store"}},
		&esv1.ClusterExternalSecret{ObjectMeta: metav1.ObjectMeta{Name: ces}},
	} {
		if err := env.Client.Delete(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	gone := []struct{ family, namespace, name string }{
		{"externalsecret_status_condition", ns, "ok"},
		{"externalsecret_status_condition", ns, "broken"},
		{"externalsecret_sync_calls_total", ns, "ok"},
		{"externalsecret_sync_calls_error", ns, "broken"},
		{"externalsecret_reconcile_duration", ns, "ok"},
		{"secretstore_status_condition", ns, "store"},
		{"secretstore_reconcile_duration", ns, "store"},
		{"clusterexternalsecret_status_condition", "", ces},
		{"clusterexternalsecret_reconcile_duration", "", ces},
	}
	waitMetrics(t, url, "the deleted objects' series gone", func(s scrape) (bool, string) {
		var left []string
		for _, g := range gone {
			if ss := s.series(g.family, g.namespace, g.name); len(ss) > 0 {
				left = append(left, g.family+fmt.Sprint(ss))
			}
		}
		sort.Strings(left)
		return len(left) == 0, "still there: " + strings.Join(left, "; ")
	})
	// The ClusterSecretStore, still there, keeps its series.
	s, _, err := scrapeMetrics(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.value("clustersecretstore_status_condition", ready(css, "", "True")); !ok {
		t.Error("a live ClusterSecretStore lost its series")
	}
}

// TestMetricsEndpointIsAuthenticatedAndAuthorised: with --metrics-secure
// (the default) /metrics answers 401 without a token, 403 to a
// ServiceAccount that may not get /metrics, and 200 to one that may.
func TestMetricsEndpointIsAuthenticatedAndAuthorised(t *testing.T) {
	addr := testenv.FreeAddr(t)
	startOperator(t, func(o *operator.Options) { o.MetricsAddr, o.MetricsSecure = addr, true })
	ctx := context.Background()
	ns := env.Namespace(t)
	cs, err := kubernetes.NewForConfig(env.Cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"scraper", "nobody"} {
		if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	role := "metrics-reader-" + ns
	if err := env.Client.Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		Rules:      []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}},
	}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "scraper"}},
	}); err != nil {
		t.Fatal(err)
	}
	token := func(sa string) string {
		tr, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, sa, &authenticationv1.TokenRequest{
			Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(600))},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("requesting a token for %s: %v", sa, err)
		}
		return tr.Status.Token
	}
	// The endpoint serves a self-signed certificate when none is given.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	get := func(ctx context.Context, bearer string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	cases := []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"a ServiceAccount without get on /metrics", token("nobody"), http.StatusForbidden},
		{"a ServiceAccount allowed to get /metrics", token("scraper"), http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var body string
			testenv.Eventually(t, fmt.Sprintf("HTTP %d", c.want), func(ctx context.Context) (bool, string) {
				code, b, err := get(ctx, c.token)
				if err != nil {
					return false, err.Error() // not listening yet
				}
				body = b
				return code == c.want, fmt.Sprintf("HTTP %d: %.200s", code, b)
			})
			if c.want == http.StatusOK && !strings.Contains(body, "controller_runtime_reconcile_total") {
				t.Errorf("200 without metrics: %.300s", body)
			}
		})
	}
	// Plain HTTP is not served on the secure port.
	if resp, err := http.Get("http://" + addr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("metrics served over plain HTTP with --metrics-secure")
		}
	}
}

func ptr[T any](v T) *T { return &v }
