package operator

import "testing"

func TestMetricsOptions(t *testing.T) {
	tests := []struct {
		name       string
		opts       Options
		wantAddr   string
		wantSecure bool
	}{
		{"disabled by default in process", Options{}, "0", false},
		{"plain HTTP", Options{MetricsAddr: ":8080"}, ":8080", false},
		{"authenticated HTTPS", Options{MetricsAddr: ":8443", MetricsSecure: true, MetricsCertDir: "/certs"}, ":8443", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := metricsOptions(tt.opts)
			if o.BindAddress != tt.wantAddr || o.SecureServing != tt.wantSecure || (o.FilterProvider != nil) != tt.wantSecure {
				t.Fatalf("metricsOptions = addr %q secure %v filter %v", o.BindAddress, o.SecureServing, o.FilterProvider != nil)
			}
			if tt.wantSecure && (o.CertDir != tt.opts.MetricsCertDir || len(o.TLSOpts) == 0) {
				t.Fatalf("cert dir %q, %d TLS options", o.CertDir, len(o.TLSOpts))
			}
		})
	}
}

func TestServedNamespaces(t *testing.T) {
	if got := servedNamespaces(""); got != nil {
		t.Errorf(`servedNamespaces("") = %v, want all namespaces (nil)`, got)
	}
	if got := servedNamespaces("team-a"); len(got) != 1 {
		t.Errorf(`servedNamespaces("team-a") = %v`, got)
	} else if _, ok := got["team-a"]; !ok {
		t.Errorf(`servedNamespaces("team-a") = %v`, got)
	}
}
