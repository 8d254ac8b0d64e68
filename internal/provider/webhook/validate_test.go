package webhook

import (
	"errors"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestValidateSpec(t *testing.T) {
	files := &esv1.SPIFFEFiles{CertPath: "/run/svid.pem", KeyPath: "/run/key.pem", BundlePath: "/run/bundle.pem"}
	clientTLS := &esv1.WebhookClientTLS{
		CertSecretRef: esv1.SecretKeySelector{Name: "tls", Key: "tls.crt"},
		KeySecretRef:  esv1.SecretKeySelector{Name: "tls", Key: "tls.key"},
	}
	const url = "https://safe.example/{{ .remoteRef.key }}"
	tests := []struct {
		name string
		spec esv1.WebhookProvider
		want error // nil: valid
	}{
		{"minimal", esv1.WebhookProvider{URL: url}, nil},
		{"ESO example", esv1.WebhookProvider{
			URL:     "http://httpbin.org/get?parameter={{ .remoteRef.key }}",
			Result:  esv1.WebhookResult{JSONPath: "$.args.parameter"},
			Headers: map[string]string{"Content-Type": "application/json", "Authorization": `Basic {{ print .auth.username ":" .auth.password | b64enc }}`},
			Secrets: []esv1.WebhookSecret{{Name: "auth", SecretRef: esv1.SecretKeySelector{Name: "webhook-credentials"}}},
		}, nil},
		{"templated jsonPath", esv1.WebhookProvider{URL: url, Result: esv1.WebhookResult{JSONPath: "$.data.{{ .remoteRef.property }}"}}, nil},
		{"spiffe files with server ID", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{Files: files, ServerID: "spiffe://example.org/safe"}}, nil},
		{"spiffe socket with trust domain", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{WorkloadAPISocket: "unix:///run/spire/agent.sock", TrustDomain: "example.org"}}, nil},
		{"clientTLS", esv1.WebhookProvider{URL: url, ClientTLS: clientTLS, CABundle: []byte("x")}, nil},

		{"no url", esv1.WebhookProvider{}, provider.ErrInvalidConfig},
		{"bad url template", esv1.WebhookProvider{URL: "https://x/{{ .remoteRef.key"}, provider.ErrInvalidConfig},
		{"unknown template function", esv1.WebhookProvider{URL: "https://x/{{ env \"HOME\" }}"}, provider.ErrInvalidConfig},
		{"bad header template", esv1.WebhookProvider{URL: url, Headers: map[string]string{"X": "{{ }"}}, provider.ErrInvalidConfig},
		{"bad body template", esv1.WebhookProvider{URL: url, Body: "{{ if }}"}, provider.ErrInvalidConfig},
		{"unsupported jsonPath", esv1.WebhookProvider{URL: url, Result: esv1.WebhookResult{JSONPath: "$.a[0,1]"}}, provider.ErrInvalidConfig},
		{"method with a space", esv1.WebhookProvider{URL: url, Method: "GET X"}, provider.ErrInvalidConfig},
		{"zero timeout", esv1.WebhookProvider{URL: url, Timeout: &esv1.Duration{}}, provider.ErrInvalidConfig},
		{"ntlm", esv1.WebhookProvider{URL: url, Auth: &esv1.WebhookAuth{NTLM: &esv1.NTLMAuth{}}}, provider.ErrNotSupported},
		{"secret without a name", esv1.WebhookProvider{URL: url, Secrets: []esv1.WebhookSecret{{SecretRef: esv1.SecretKeySelector{Name: "s"}}}}, provider.ErrInvalidConfig},
		{"secret named remoteRef", esv1.WebhookProvider{URL: url, Secrets: []esv1.WebhookSecret{{Name: "remoteRef", SecretRef: esv1.SecretKeySelector{Name: "s"}}}}, provider.ErrInvalidConfig},
		{"secret listed twice", esv1.WebhookProvider{URL: url, Secrets: []esv1.WebhookSecret{{Name: "a", SecretRef: esv1.SecretKeySelector{Name: "s"}}, {Name: "a", SecretRef: esv1.SecretKeySelector{Name: "t"}}}}, provider.ErrInvalidConfig},
		{"secret without a Secret", esv1.WebhookProvider{URL: url, Secrets: []esv1.WebhookSecret{{Name: "a"}}}, provider.ErrInvalidConfig},
		{"clientTLS without key", esv1.WebhookProvider{URL: url, ClientTLS: &esv1.WebhookClientTLS{CertSecretRef: clientTLS.CertSecretRef}}, provider.ErrInvalidConfig},
		{"clientTLS over http", esv1.WebhookProvider{URL: "http://x/{{ .remoteRef.key }}", ClientTLS: clientTLS}, provider.ErrInvalidConfig},
		{"clientTLS and spiffe", esv1.WebhookProvider{URL: url, ClientTLS: clientTLS, SPIFFE: &esv1.WebhookSPIFFE{Files: files, TrustDomain: "example.org"}}, provider.ErrInvalidConfig},
		{"spiffe over http", esv1.WebhookProvider{URL: "HTTP://x/", SPIFFE: &esv1.WebhookSPIFFE{Files: files, TrustDomain: "example.org"}}, provider.ErrInvalidConfig},
		{"spiffe with caBundle", esv1.WebhookProvider{URL: url, CABundle: []byte("x"), SPIFFE: &esv1.WebhookSPIFFE{Files: files, TrustDomain: "example.org"}}, provider.ErrInvalidConfig},
		{"spiffe with neither source", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{TrustDomain: "example.org"}}, provider.ErrInvalidConfig},
		{"spiffe with both sources", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{Files: files, WorkloadAPISocket: "unix:///s", TrustDomain: "example.org"}}, provider.ErrInvalidConfig},
		{"spiffe socket without scheme", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{WorkloadAPISocket: "/run/spire/agent.sock", TrustDomain: "example.org"}}, provider.ErrInvalidConfig},
		{"spiffe relative file", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{Files: &esv1.SPIFFEFiles{CertPath: "svid.pem", KeyPath: "/k", BundlePath: "/b"}, TrustDomain: "example.org"}}, provider.ErrInvalidConfig},
		{"spiffe without server ID or trust domain", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{Files: files}}, provider.ErrInvalidConfig},
		{"spiffe with server ID and trust domain", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{Files: files, ServerID: "spiffe://example.org/a", TrustDomain: "example.org"}}, provider.ErrInvalidConfig},
		{"server ID not a SPIFFE ID", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{Files: files, ServerID: "https://example.org/safe"}}, provider.ErrInvalidConfig},
		{"server ID with a bad trust domain", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{Files: files, ServerID: "spiffe://Example.ORG/safe"}}, provider.ErrInvalidConfig},
		{"bad trust domain", esv1.WebhookProvider{URL: url, SPIFFE: &esv1.WebhookSPIFFE{Files: files, TrustDomain: "not a domain"}}, provider.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := provider.Store{Kind: esv1.SecretStoreKind, Name: "s", Namespace: "ns",
				Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Webhook: &tt.spec}}}
			err := New().ValidateSpec(store)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("got %v, want an error wrapping %q", err, tt.want)
			}
		})
	}
	if err := New().ValidateSpec(provider.Store{Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{}}}); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Fatalf("a store without spec.provider.webhook: got %v", err)
	}
}

func TestEscapeURLValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"a b", "a%20b"},
		{"a/b", "a%2Fb"},
		{"a+b", "a%2Bb"},
		{"k?x=1&y=2#f", "k%3Fx%3D1%26y%3D2%23f"},
		{"é", "%C3%A9"},
	}
	for _, tt := range tests {
		if got := escapeURLValue(tt.in); got != tt.want {
			t.Errorf("escapeURLValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
