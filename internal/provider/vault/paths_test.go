package vault

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestKVPaths(t *testing.T) {
	tests := []struct {
		name     string
		paths    kvPaths
		key      string
		data     string
		metadata string
	}{
		{"v2 key relative to the mount", kvPaths{"secret", true}, "app/db", "secret/data/app/db", "secret/metadata/app/db"},
		{"v2 key including the mount", kvPaths{"secret", true}, "secret/app", "secret/data/app", "secret/metadata/app"},
		{"v2 key including mount and data", kvPaths{"secret", true}, "secret/data/app", "secret/data/app", "secret/metadata/app"},
		{"v2 nested mount", kvPaths{"team/kv", true}, "app", "team/kv/data/app", "team/kv/metadata/app"},
		{"v2 nested mount included in the key", kvPaths{"team/kv", true}, "team/kv/app", "team/kv/data/app", "team/kv/metadata/app"},
		{"v2 leading slash", kvPaths{"secret", true}, "/app", "secret/data/app", "secret/metadata/app"},
		{"v2 key named like the mount is kept", kvPaths{"secret", true}, "secret", "secret/data/secret", "secret/metadata/secret"},
		{"v1 key relative to the mount", kvPaths{"kv", false}, "app", "kv/app", "kv/app"},
		{"v1 key including the mount", kvPaths{"kv", false}, "kv/app", "kv/app", "kv/app"},
		{"v1 data folder is a folder", kvPaths{"kv", false}, "kv/data/app", "kv/data/app", "kv/data/app"},
		{"v2 without mount: first segment is the mount", kvPaths{"", true}, "secret/app/db", "secret/data/app/db", "secret/metadata/app/db"},
		{"v2 without mount: data already there", kvPaths{"", true}, "secret/data/app", "secret/data/app", "secret/metadata/app"},
		{"v1 without mount: key as it is", kvPaths{"", false}, "kv/app", "kv/app", "kv/app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.paths.data(tt.key); got != tt.data {
				t.Errorf("data(%q) = %q, want %q", tt.key, got, tt.data)
			}
			if got := tt.paths.metadata(tt.key); got != tt.metadata {
				t.Errorf("metadata(%q) = %q, want %q", tt.key, got, tt.metadata)
			}
		})
	}
}

func TestKVListPaths(t *testing.T) {
	tests := []struct {
		name   string
		paths  kvPaths
		folder string
		want   string
	}{
		{"v2 mount root", kvPaths{"secret", true}, "", "secret/metadata/"},
		{"v2 folder", kvPaths{"secret", true}, "app", "secret/metadata/app/"},
		{"v2 folder with slash and mount", kvPaths{"secret", true}, "secret/app/", "secret/metadata/app/"},
		{"v1 mount root", kvPaths{"kv", false}, "", "kv/"},
		{"v1 folder", kvPaths{"kv", false}, "app/x", "kv/app/x/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.paths.list(tt.folder); got != tt.want {
				t.Errorf("list(%q) = %q, want %q", tt.folder, got, tt.want)
			}
		})
	}
}

func TestValueOf(t *testing.T) {
	tests := []struct {
		name   string
		json   string
		fields map[string]string
	}{
		{"strings are kept as they are", `{"user":"admin","pass":"p<&>"}`, map[string]string{"user": "admin", "pass": "p<&>"}},
		{"numbers keep their text", `{"port":5432,"ratio":0.10}`, map[string]string{"port": "5432", "ratio": "0.10"}},
		{"booleans", `{"on":true}`, map[string]string{"on": "true"}},
		{"null is empty", `{"none":null}`, map[string]string{"none": ""}},
		{"objects and arrays are JSON", `{"obj":{"b":1,"a":"x"},"list":[1,"two"]}`, map[string]string{"obj": `{"a":"x","b":1}`, "list": `[1,"two"]`}},
		{"empty entry", `{}`, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := json.NewDecoder(strings.NewReader(tt.json))
			dec.UseNumber()
			var data map[string]any
			if err := dec.Decode(&data); err != nil {
				t.Fatal(err)
			}
			v, err := valueOf(data, "3")
			if err != nil {
				t.Fatal(err)
			}
			if v.Version != "3" {
				t.Errorf("version = %q", v.Version)
			}
			if len(v.Fields) != len(tt.fields) {
				t.Errorf("fields = %q, want %q", v.Fields, tt.fields)
			}
			for k, want := range tt.fields {
				if got, ok := v.Fields[k]; !ok || string(got) != want {
					t.Errorf("field %s = %q, want %q", k, got, want)
				}
			}
			// Data is what ESO returns for the whole entry: json.Marshal of
			// the decoded map.
			want, _ := json.Marshal(data)
			if string(v.Data) != string(want) {
				t.Errorf("data = %s, want %s", v.Data, want)
			}
		})
	}
}

func TestValidateSpec(t *testing.T) {
	const ns = "apps"
	sel := func(name, key string) *esv1.SecretKeySelector {
		return &esv1.SecretKeySelector{Name: name, Key: key}
	}
	base := func(mut func(v *esv1.VaultProvider)) *esv1.VaultProvider {
		v := &esv1.VaultProvider{Server: "https://vault.example:8200", Path: ptr("secret"), Version: esv1.VaultKVStoreV2,
			Auth: &esv1.VaultAuth{TokenSecretRef: sel("vault-token", "token")}}
		if mut != nil {
			mut(v)
		}
		return v
	}
	tests := []struct {
		name    string
		cluster bool
		spec    *esv1.VaultProvider
		want    error // nil: valid
		message string
	}{
		{name: "token auth is valid", spec: base(nil)},
		{name: "no auth is valid (Vault Agent)", spec: base(func(v *esv1.VaultProvider) { v.Auth = nil })},
		{name: "no path is valid", spec: base(func(v *esv1.VaultProvider) { v.Path = nil })},
		{name: "empty version defaults to v2", spec: base(func(v *esv1.VaultProvider) { v.Version = "" })},
		{name: "server is required", spec: base(func(v *esv1.VaultProvider) { v.Server = "" }), want: provider.ErrInvalidConfig, message: "vault.server"},
		{name: "server must be http or https", spec: base(func(v *esv1.VaultProvider) { v.Server = "vault:8200" }), want: provider.ErrInvalidConfig, message: "vault.server"},
		{name: "version must be v1 or v2", spec: base(func(v *esv1.VaultProvider) { v.Version = "v3" }), want: provider.ErrInvalidConfig, message: "v1 or v2"},
		{name: "path must name a mount", spec: base(func(v *esv1.VaultProvider) { v.Path = ptr("/") }), want: provider.ErrInvalidConfig, message: "vault.path"},
		{name: "tls needs cert and key", spec: base(func(v *esv1.VaultProvider) { v.TLS.CertSecretRef = sel("c", "tls.crt") }), want: provider.ErrInvalidConfig, message: "keySecretRef"},
		{name: "token secret needs a key", spec: base(func(v *esv1.VaultProvider) { v.Auth.TokenSecretRef.Key = "" }), want: provider.ErrInvalidConfig, message: "tokenSecretRef"},
		{name: "a SecretStore cannot reference another namespace", spec: base(func(v *esv1.VaultProvider) { v.Auth.TokenSecretRef.Namespace = ptr("other") }), want: provider.ErrInvalidConfig, message: "own namespace"},
		{name: "a SecretStore may name its own namespace", spec: base(func(v *esv1.VaultProvider) { v.Auth.TokenSecretRef.Namespace = ptr(ns) })},
		{name: "a ClusterSecretStore may reference any namespace", cluster: true, spec: base(func(v *esv1.VaultProvider) { v.Auth.TokenSecretRef.Namespace = ptr("other") })},
		{name: "appRole needs a role id", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{AppRole: &esv1.VaultAppRole{Path: "approle", SecretRef: *sel("s", "id")}}
		}), want: provider.ErrInvalidConfig, message: "roleId or roleRef"},
		{name: "appRole with roleRef", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{AppRole: &esv1.VaultAppRole{Path: "approle", RoleRef: sel("s", "role"), SecretRef: *sel("s", "id")}}
		})},
		{name: "kubernetes needs a role", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Path: "kubernetes"}}
		}), want: provider.ErrInvalidConfig, message: "role"},
		{name: "kubernetes service account needs a name", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Path: "kubernetes", Role: "r", ServiceAccountRef: &esv1.ServiceAccountSelector{}}}
		}), want: provider.ErrInvalidConfig, message: "serviceAccountRef.name"},
		{name: "kubernetes with the operator's own token", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Path: "kubernetes", Role: "r"}}
		})},
		{name: "jwt needs a token source", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{Jwt: &esv1.VaultJwtAuth{Path: "jwt", Role: "r"}}
		}), want: provider.ErrInvalidConfig, message: "kubernetesServiceAccountToken"},
		{name: "userPass needs a username", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{UserPass: &esv1.VaultUserPassAuth{Path: "userpass", SecretRef: *sel("s", "p")}}
		}), want: provider.ErrInvalidConfig, message: "username"},
		{name: "ldap needs a password", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{Ldap: &esv1.VaultLdapAuth{Path: "ldap", Username: "u"}}
		}), want: provider.ErrInvalidConfig, message: "ldap.secretRef"},
		{name: "cert needs https", spec: base(func(v *esv1.VaultProvider) {
			v.Server = "http://vault:8200"
			v.Auth = &esv1.VaultAuth{Cert: &esv1.VaultCertAuth{ClientCert: *sel("c", "tls.crt"), SecretRef: *sel("c", "tls.key")}}
		}), want: provider.ErrInvalidConfig, message: "https"},
		{name: "cert needs a certificate", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{Cert: &esv1.VaultCertAuth{}}
		}), want: provider.ErrInvalidConfig, message: "clientCert"},
		{name: "cert may use the tls client certificate", spec: base(func(v *esv1.VaultProvider) {
			v.TLS = esv1.VaultClientTLS{CertSecretRef: sel("c", "tls.crt"), KeySecretRef: sel("c", "tls.key")}
			v.Auth = &esv1.VaultAuth{Cert: &esv1.VaultCertAuth{}}
		})},
		{name: "iam is not supported", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{Iam: jsonObject()}
		}), want: provider.ErrNotSupported, message: "iam"},
		{name: "gcp is not supported", spec: base(func(v *esv1.VaultProvider) {
			v.Auth = &esv1.VaultAuth{GCP: jsonObject()}
		}), want: provider.ErrNotSupported, message: "gcp"},
		{name: "the first method set wins, as in ESO", spec: base(func(v *esv1.VaultProvider) {
			v.Auth.GCP = jsonObject()
		})},
		{name: "caProvider type", spec: base(func(v *esv1.VaultProvider) {
			v.CAProvider = &esv1.CAProvider{Type: "Vault", Name: "ca", Key: "ca.crt"}
		}), want: provider.ErrInvalidConfig, message: "caProvider.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := provider.Store{Kind: esv1.SecretStoreKind, Name: "vault", Namespace: ns,
				Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Vault: tt.spec}}}
			if tt.cluster {
				store.Kind, store.Namespace = esv1.ClusterSecretStoreKind, ""
			}
			err := New().ValidateSpec(store)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("want valid, got %v", err)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Fatalf("want an error wrapping %q, got %v", tt.want, err)
			case tt.want != nil && !strings.Contains(err.Error(), tt.message):
				t.Fatalf("error %q does not mention %q", err, tt.message)
			}
		})
	}
}

func jsonObject() *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(`{}`)} }
