package provider_test

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// One rule for every provider: a SecretStore's references to Secrets,
// ConfigMaps and ServiceAccounts stay in its namespace.
func TestNamespacedStoreReferencesStayInItsNamespace(t *testing.T) {
	other, own := ptr("kube-system"), ptr("team-a")
	tests := []struct {
		name string
		spec esv1.SecretStoreProvider
		// field is the path the refusal names; "" means admitted.
		field string
	}{
		{"vault tokenSecretRef into another namespace",
			esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Server: "https://v", Auth: &esv1.VaultAuth{TokenSecretRef: &esv1.SecretKeySelector{Name: "t", Key: "k", Namespace: other}}}},
			"spec.provider.vault.auth.tokenSecretRef.namespace"},
		{"vault tokenSecretRef naming its own namespace",
			esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Server: "https://v", Auth: &esv1.VaultAuth{TokenSecretRef: &esv1.SecretKeySelector{Name: "t", Key: "k", Namespace: own}}}},
			""},
		{"vault's own namespace field is a Vault namespace, not a Kubernetes one",
			esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Server: "https://v", Namespace: other, Auth: &esv1.VaultAuth{Namespace: other, TokenSecretRef: &esv1.SecretKeySelector{Name: "t", Key: "k"}}}},
			""},
		{"vault kubernetes serviceAccountRef",
			esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Server: "https://v", Auth: &esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Role: "r", ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa", Namespace: other}}}}},
			"spec.provider.vault.auth.kubernetes.serviceAccountRef.namespace"},
		{"vault caProvider",
			esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Server: "https://v", CAProvider: &esv1.CAProvider{Type: esv1.CAProviderTypeConfigMap, Name: "ca", Key: "ca.crt", Namespace: other}}},
			"spec.provider.vault.caProvider.namespace"},
		{"aws accessKeyIDSecretRef",
			esv1.SecretStoreProvider{AWS: &esv1.AWSProvider{Auth: esv1.AWSAuth{SecretRef: &esv1.AWSAuthSecretRef{AccessKeyID: esv1.SecretKeySelector{Name: "c", Key: "id", Namespace: other}}}}},
			"spec.provider.aws.auth.secretRef.accessKeyIDSecretRef.namespace"},
		{"aws jwt serviceAccountRef",
			esv1.SecretStoreProvider{AWS: &esv1.AWSProvider{Auth: esv1.AWSAuth{JWTAuth: &esv1.AWSJWTAuth{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa", Namespace: other}}}}},
			"spec.provider.aws.auth.jwt.serviceAccountRef.namespace"},
		{"gcp workloadIdentity serviceAccountRef",
			esv1.SecretStoreProvider{GCPSM: &esv1.GCPSMProvider{Auth: esv1.GCPSMAuth{WorkloadIdentity: &esv1.GCPWorkloadIdentity{ServiceAccountRef: esv1.ServiceAccountSelector{Name: "sa", Namespace: other}}}}},
			"spec.provider.gcpsm.auth.workloadIdentity.serviceAccountRef.namespace"},
		{"azure serviceAccountRef",
			esv1.SecretStoreProvider{AzureKV: &esv1.AzureKVProvider{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa", Namespace: other}}},
			"spec.provider.azurekv.serviceAccountRef.namespace"},
		{"webhook secrets[1]",
			esv1.SecretStoreProvider{Webhook: &esv1.WebhookProvider{URL: "https://h", Secrets: []esv1.WebhookSecret{
				{Name: "a", SecretRef: esv1.SecretKeySelector{Name: "s", Namespace: own}},
				{Name: "b", SecretRef: esv1.SecretKeySelector{Name: "s", Namespace: other}},
			}}},
			"spec.provider.webhook.secrets[1].secretRef.namespace"},
		{"kubernetes server caProvider",
			esv1.SecretStoreProvider{Kubernetes: &esv1.KubernetesProvider{Server: esv1.KubernetesServer{CAProvider: &esv1.CAProvider{Type: esv1.CAProviderTypeSecret, Name: "ca", Namespace: other}}}},
			"spec.provider.kubernetes.server.caProvider.namespace"},
		{"no references", esv1.SecretStoreProvider{Fake: &esv1.FakeProvider{}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := provider.ReferencesStayInNamespace(namespaced("team-a", tt.spec))
			if tt.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
			} else {
				if !errors.Is(err, provider.ErrInvalidConfig) {
					t.Fatalf("admitted (err %v), want ErrInvalidConfig", err)
				}
				want := tt.field + ` "kube-system": a SecretStore may only reference its own namespace "team-a"`
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q, want it to contain %q", err, want)
				}
			}
			if err := provider.ReferencesStayInNamespace(cluster(tt.spec)); err != nil {
				t.Errorf("a ClusterSecretStore was refused: %v", err)
			}
		})
	}
}

// Every type under SecretStoreProvider with a namespace field is either a
// reference the rule checks, or one whose namespace is not a Kubernetes
// namespace; a new reference type cannot slip past the rule unnoticed.
func TestEveryReferenceTypeIsChecked(t *testing.T) {
	checked := map[reflect.Type]bool{
		reflect.TypeFor[esv1.SecretKeySelector]():      true,
		reflect.TypeFor[esv1.ServiceAccountSelector](): true,
		reflect.TypeFor[esv1.CAProvider]():             true,
		reflect.TypeFor[esv1.ConfigMapReference]():     true,
		reflect.TypeFor[esv1.SecretObjectRef]():        true,
	}
	notKubernetes := map[reflect.Type]string{
		reflect.TypeFor[esv1.VaultProvider](): "a Vault Enterprise namespace",
		reflect.TypeFor[esv1.VaultAuth]():     "the Vault namespace to log in to",
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map || typ.Kind() == reflect.Array {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] || typ.PkgPath() != reflect.TypeFor[esv1.SecretStoreProvider]().PkgPath() {
			return
		}
		seen[typ] = true
		if _, ok := typ.FieldByName("Namespace"); ok && !checked[typ] && notKubernetes[typ] == "" {
			t.Errorf("%s has a Namespace field the namespace rule does not check: add it to refTypes (refs.go) or explain here why it is not a Kubernetes namespace", typ)
		}
		for i := range typ.NumField() {
			walk(typ.Field(i).Type)
		}
	}
	walk(reflect.TypeFor[esv1.SecretStoreProvider]())
	// Each checked type really is visited by the rule.
	for typ := range checked {
		if !seen[typ] {
			t.Logf("%s is not used by any provider yet", typ)
		}
	}
}

func TestCheckInsecureHTTP(t *testing.T) {
	tests := []struct {
		url   string
		allow bool
		ok    bool
	}{
		{"https://vault.example:8200", false, true},
		{"http://127.0.0.1:8200", false, true},
		{"http://[::1]:8200", false, true},
		{"http://localhost:8200", false, true},
		{"http://vault.vault.svc:8200", false, false},
		{"HTTP://vault.example", false, false},
		{"http://127.0.0.1.nip.io:8200", false, false},
		{"http://vault.vault.svc:8200", true, true},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		err = provider.Options{Policy: provider.Policy{AllowInsecureHTTP: tt.allow}}.CheckInsecureHTTP("vault.server", u)
		if (err == nil) != tt.ok {
			t.Errorf("%s (allow %v): err %v, want ok=%v", tt.url, tt.allow, err, tt.ok)
		}
		if err != nil && (!errors.Is(err, provider.ErrInvalidConfig) || !strings.Contains(err.Error(), "--allow-insecure-http")) {
			t.Errorf("%s: message %q does not name the opt-in", tt.url, err)
		}
	}
}
