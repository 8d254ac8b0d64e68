package webhook

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-logr/logr/testr"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// tenantServer is a real TLS server that answers with the tenant the
// request names, in its query (ns), an X-Tenant header or its body.
func tenantServer(t *testing.T) (*httptest.Server, []byte) {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "answer for [%s%s%s]", r.URL.Query().Get("ns"), r.Header.Get("X-Tenant"), body)
	}))
	t.Cleanup(srv.Close)
	return srv, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func layerFor(t *testing.T, opts fetch.Options) *fetch.Layer {
	t.Helper()
	reg := provider.NewRegistry()
	reg.Register("webhook", New())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	opts.Registry, opts.Log = reg, testr.New(t)
	return fetch.New(ctx, opts)
}

// fetchAs fetches key through l as an object in namespace ns using store.
func fetchAs(t *testing.T, l *fetch.Layer, store provider.Store, ns, key string) string {
	t.Helper()
	ref := provider.Ref{Key: key}
	vals, errs := l.Get(context.Background(), fetch.Request{Store: store, Namespace: ns, Subscriber: ns + "/es", MaxAge: 1 << 40}, []provider.Ref{ref})
	if errs[ref] != nil {
		t.Fatalf("fetching %q as %s: %v", key, ns, errs[ref])
	}
	return string(vals[ref].Data)
}

// TestTenantsNeverSeeEachOthersWebhookValue: two tenants whose identical
// webhook stores (or one ClusterSecretStore) send the requester's namespace
// in the URL, a header or the body each get the answer for their own
// namespace, from the real fetch layer (shared clients, value cache) and a
// real TLS server, on the first fetch and from the cache.
func TestTenantsNeverSeeEachOthersWebhookValue(t *testing.T) {
	srv, ca := tenantServer(t)
	specs := map[string]*esv1.WebhookProvider{
		"url":             {URL: srv.URL + "/v1/{{ .remoteRef.key }}?ns={{ .remoteRef.namespace }}", CABundle: ca},
		"header":          {URL: srv.URL + "/v1/{{ .remoteRef.key }}", Headers: map[string]string{"X-Tenant": "{{ .remoteRef.namespace }}"}, CABundle: ca},
		"body":            {Method: "POST", URL: srv.URL + "/v1/{{ .remoteRef.key }}", Body: `{{ .remoteRef.namespace | upper | lower }}`, CABundle: ca},
		"whole remoteRef": {URL: srv.URL + "/v1/{{ .remoteRef.key }}", Headers: map[string]string{"X-Tenant": `{{ index .remoteRef "namespace" }}`}, CABundle: ca},
	}
	layouts := map[string]func(ns string, spec *esv1.WebhookProvider) provider.Store{
		"SecretStore copied into each namespace": func(ns string, spec *esv1.WebhookProvider) provider.Store {
			return provider.Store{Kind: esv1.SecretStoreKind, Namespace: ns, Name: "webhook",
				Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: spec}}}
		},
		"one ClusterSecretStore": func(_ string, spec *esv1.WebhookProvider) provider.Store {
			return provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "webhook",
				Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: spec}}}
		},
	}
	for specName, spec := range specs {
		for layoutName, store := range layouts {
			t.Run(specName+"/"+layoutName, func(t *testing.T) {
				l := layerFor(t, fetch.Options{})
				for round := range 2 {
					for _, ns := range []string{"tenant-a", "tenant-b"} {
						got := fetchAs(t, l, store(ns, spec), ns, "db")
						if want := "answer for [" + ns + "]"; got != want {
							t.Fatalf("round %d: %s received %q, want %q", round, ns, got, want)
						}
					}
				}
			})
		}
	}
}

// TestClusterStoreWithFixedSecretsIsScopedByTemplate: a ClusterSecretStore
// whose `secrets` name their namespace (so no credential resolves in the
// requester's namespace) but whose URL reads .remoteRef.namespace still
// gets one client per requesting namespace, against the real API server.
func TestClusterStoreWithFixedSecretsIsScopedByTemplate(t *testing.T) {
	kube := kubeFor(t)
	shared := newNamespace(t)
	createSecret(t, shared, "creds", webhookLabel, map[string]string{"token": canary})
	srv, ca := tenantServer(t)
	store := provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "webhook", Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: &esv1.WebhookProvider{
		URL:      srv.URL + "/v1/{{ .remoteRef.key }}?ns={{ .remoteRef.namespace }}",
		Headers:  map[string]string{"Authorization": "Bearer {{ .creds.token }}"},
		Secrets:  []esv1.WebhookSecret{{Name: "creds", SecretRef: esv1.SecretKeySelector{Name: "creds", Namespace: &shared}}},
		CABundle: ca,
	}}}}
	l := layerFor(t, fetch.Options{Kube: kube})
	a, b := newNamespace(t), newNamespace(t)
	for round := range 2 {
		for _, ns := range []string{a, b} {
			if got, want := fetchAs(t, l, store, ns, "db"), "answer for ["+ns+"]"; got != want {
				t.Fatalf("round %d: %s received %q, want %q", round, ns, got, want)
			}
		}
	}
}

func TestScopedToNamespaceFindsEveryWayToReadTheNamespace(t *testing.T) {
	for _, tt := range []struct {
		name string
		spec esv1.WebhookProvider
		want bool
	}{
		{"key only", esv1.WebhookProvider{URL: "https://s/{{ .remoteRef.key }}?v={{ .remoteRef.version }}"}, false},
		{"secrets and functions", esv1.WebhookProvider{URL: "https://s/x", Headers: map[string]string{"A": `{{ print .auth.user ":" .auth.token | b64enc }}`}}, false},
		{"url field", esv1.WebhookProvider{URL: "https://s/{{ .remoteRef.namespace }}"}, true},
		{"header field", esv1.WebhookProvider{URL: "https://s/", Headers: map[string]string{"X": "{{ .remoteRef.namespace }}"}}, true},
		{"body field", esv1.WebhookProvider{URL: "https://s/", Body: `{"ns":"{{ $.remoteRef.namespace }}"}`}, true},
		{"jsonPath field", esv1.WebhookProvider{URL: "https://s/", Result: esv1.WebhookResult{JSONPath: "$.{{ .remoteRef.namespace }}"}}, true},
		{"index of remoteRef", esv1.WebhookProvider{URL: `https://s/{{ index .remoteRef "namespace" }}`}, true},
		{"with remoteRef", esv1.WebhookProvider{URL: `https://s/{{ with .remoteRef }}{{ .namespace }}{{ end }}`}, true},
		{"variable", esv1.WebhookProvider{URL: `https://s/{{ $r := .remoteRef }}{{ $r.key }}`}, true},
		{"whole data", esv1.WebhookProvider{URL: `https://s/{{ toJson . | b64enc }}`}, true},
		{"whole data through $", esv1.WebhookProvider{URL: `https://s/{{ toJson $ }}`}, true},
		{"range over data", esv1.WebhookProvider{URL: `https://s/{{ range $k, $v := . }}{{ $k }}{{ end }}`}, true},
		{"nested template", esv1.WebhookProvider{URL: `{{ define "t" }}{{ .remoteRef.namespace }}{{ end }}https://s/{{ template "t" . }}`}, true},
		{"in an else branch", esv1.WebhookProvider{URL: `https://s/{{ if .remoteRef.key }}a{{ else }}{{ .remoteRef.namespace }}{{ end }}`}, true},
		{"invalid template", esv1.WebhookProvider{URL: "https://s/{{ .remoteRef.key "}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := provider.Store{Kind: esv1.SecretStoreKind, Namespace: "ns", Name: "s", Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: &tt.spec}}}
			if got := New().(*Provider).ScopedToNamespace(store); got != tt.want {
				t.Fatalf("ScopedToNamespace = %v, want %v", got, tt.want)
			}
		})
	}
}
