package azurekv

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

func TestParseKey(t *testing.T) {
	cases := []struct {
		key, wantType, wantName string
		wantErr                 error
	}{
		{"db-password", objectSecret, "db-password", nil},
		{"secret/db-password", objectSecret, "db-password", nil},
		{"cert/tls", objectCert, "tls", nil},
		{"key/signing", objectKey, "signing", nil},
		{"secret/name/ignored", objectSecret, "name", nil}, // as in ESO
		{"certificate/tls", "", "", provider.ErrNotSupported},
		{"key/", "", "", provider.ErrInvalidConfig},
		{"", "", "", provider.ErrInvalidConfig},
	}
	for _, tc := range cases {
		typ, name, err := parseKey(tc.key)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("parseKey(%q) error = %v, want %v", tc.key, err, tc.wantErr)
			}
			continue
		}
		if err != nil || typ != tc.wantType || name != tc.wantName {
			t.Errorf("parseKey(%q) = %q, %q, %v; want %q, %q", tc.key, typ, name, err, tc.wantType, tc.wantName)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		header map[string]string
		want   time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{"zero seconds", map[string]string{"Retry-After": "0"}, 0},
		{"negative seconds", map[string]string{"Retry-After": "-3"}, 0},
		{"http date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"http date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"milliseconds win", map[string]string{"Retry-After": "7", "retry-after-ms": "1500"}, 1500 * time.Millisecond},
		{"x-ms milliseconds", map[string]string{"x-ms-retry-after-ms": "250"}, 250 * time.Millisecond},
	}
	for _, tc := range cases {
		h := http.Header{}
		for k, v := range tc.header {
			h.Set(k, v)
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("%s: retryAfter = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestCloudFor(t *testing.T) {
	cases := []struct {
		name          string
		env           esv1.AzureEnvironmentType
		custom        *esv1.AzureCustomCloudConfig
		override      string
		wantAuthority string
		wantResource  string
		wantNoDisc    bool
		wantErr       error
	}{
		{"default is public", "", nil, "", "https://login.microsoftonline.com/", "https://vault.azure.net", false, nil},
		{"us government", esv1.AzureEnvironmentUSGovernmentCloud, nil, "", "https://login.microsoftonline.us/", "https://vault.usgovcloudapi.net", false, nil},
		{"china", esv1.AzureEnvironmentChinaCloud, nil, "", "https://login.chinacloudapi.cn/", "https://vault.azure.cn", false, nil},
		{"german is closed", esv1.AzureEnvironmentGermanCloud, nil, "", "", "", false, provider.ErrInvalidConfig},
		{"azure stack needs custom config", esv1.AzureEnvironmentAzureStackCloud, nil, "", "", "", false, provider.ErrInvalidConfig},
		{"azure stack", esv1.AzureEnvironmentAzureStackCloud,
			&esv1.AzureCustomCloudConfig{ActiveDirectoryEndpoint: "https://login.local.azurestack.external", KeyVaultDNSSuffix: ".vault.local.azurestack.external"}, "",
			"https://login.local.azurestack.external/", "https://vault.local.azurestack.external", true, nil},
		{"azure stack resource from the vault URL", esv1.AzureEnvironmentAzureStackCloud,
			&esv1.AzureCustomCloudConfig{ActiveDirectoryEndpoint: "https://adfs.local.azurestack.external/"}, "",
			"https://adfs.local.azurestack.external/", "https://vault.local.azurestack.external", true, nil},
		{"china with a custom authority", esv1.AzureEnvironmentChinaCloud,
			&esv1.AzureCustomCloudConfig{ActiveDirectoryEndpoint: "https://login.partner.microsoftonline.cn/"}, "",
			"https://login.partner.microsoftonline.cn/", "https://vault.azure.cn", true, nil},
		{"internal override wins", esv1.AzureEnvironmentChinaCloud, nil, "https://127.0.0.1:8443",
			"https://127.0.0.1:8443/", "https://vault.azure.cn", true, nil},
	}
	for _, tc := range cases {
		got, err := cloudFor(tc.env, tc.custom, "https://myvault.vault.local.azurestack.external/", tc.override)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: error = %v, want %v", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.config.ActiveDirectoryAuthorityHost != tc.wantAuthority || got.vaultResource != tc.wantResource || got.disableInstanceDiscovery != tc.wantNoDisc {
			t.Errorf("%s: got authority %q, resource %q, no discovery %v, err %v; want %q, %q, %v",
				tc.name, got.config.ActiveDirectoryAuthorityHost, got.vaultResource, got.disableInstanceDiscovery, err, tc.wantAuthority, tc.wantResource, tc.wantNoDisc)
		}
	}
}

func TestSecretProviderClassHelpers(t *testing.T) {
	clouds := []struct {
		name    string
		want    esv1.AzureEnvironmentType
		wantErr error
	}{
		{"", esv1.AzureEnvironmentPublicCloud, nil},
		{"AzurePublicCloud", esv1.AzureEnvironmentPublicCloud, nil},
		{"azureusgovernmentcloud", esv1.AzureEnvironmentUSGovernmentCloud, nil},
		{"AzureChinaCloud", esv1.AzureEnvironmentChinaCloud, nil},
		{"AzureGermanCloud", "", provider.ErrInvalidConfig},
		{"AzureStackCloud", "", provider.ErrNotSupported},
		{"Mars", "", provider.ErrInvalidConfig},
	}
	for _, tc := range clouds {
		got, err := CloudFromName(tc.name)
		if got != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("CloudFromName(%q) = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
	urls := []struct {
		name string
		env  esv1.AzureEnvironmentType
		want string
	}{
		{"my-kv", "", "https://my-kv.vault.azure.net/"},
		{"My-KV", esv1.AzureEnvironmentUSGovernmentCloud, "https://my-kv.vault.usgovcloudapi.net/"},
		{"kv1", esv1.AzureEnvironmentChinaCloud, "https://kv1.vault.azure.cn/"},
		{"-bad", "", ""},
		{"a", "", ""},
		{"has_underscore", "", ""},
	}
	for _, tc := range urls {
		got, err := VaultURLFromName(tc.name, tc.env)
		if got != tc.want || (tc.want == "") != (err != nil) {
			t.Errorf("VaultURLFromName(%q, %q) = %q, %v; want %q", tc.name, tc.env, got, err, tc.want)
		}
	}
}

func TestValidateSpec(t *testing.T) {
	sel := func(name, ns string) *esv1.SecretKeySelector {
		s := &esv1.SecretKeySelector{Name: name, Key: "k"}
		if ns != "" {
			s.Namespace = ptr(ns)
		}
		return s
	}
	sp := func(mut func(*esv1.AzureKVProvider)) *esv1.AzureKVProvider {
		p := &esv1.AzureKVProvider{
			TenantID:      ptr("tenant"),
			VaultURL:      ptr("https://v.vault.azure.net/"),
			AuthSecretRef: &esv1.AzureKVAuth{ClientID: sel("c", ""), ClientSecret: sel("c", "")},
		}
		if mut != nil {
			mut(p)
		}
		return p
	}
	cases := []struct {
		name    string
		store   provider.Store
		wantErr string // "" for valid
	}{
		{"blog cluster store", clusterStore(sp(func(p *esv1.AzureKVProvider) {
			p.AuthSecretRef = &esv1.AzureKVAuth{ClientID: sel("azure-credentials", "external-secrets"), ClientSecret: sel("azure-credentials", "external-secrets")}
		})), ""},
		{"service principal with certificate", clusterStore(sp(func(p *esv1.AzureKVProvider) {
			p.AuthSecretRef.ClientSecret, p.AuthSecretRef.ClientCertificate = nil, sel("c", "")
		})), ""},
		{"tenant in the secret", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.TenantID, p.AuthSecretRef.TenantID = nil, sel("c", "") })), ""},
		{"workload identity without anything else", clusterStore(&esv1.AzureKVProvider{AuthType: ptr(esv1.AzureWorkloadIdentity), VaultURL: ptr("https://v.vault.azure.net")}), ""},
		{"managed identity", clusterStore(&esv1.AzureKVProvider{AuthType: ptr(esv1.AzureManagedIdentity), VaultURL: ptr("https://v.vault.azure.net"), IdentityID: ptr("id")}), ""},
		{"azure stack", clusterStore(sp(func(p *esv1.AzureKVProvider) {
			p.EnvironmentType = esv1.AzureEnvironmentAzureStackCloud
			p.CustomCloudConfig = &esv1.AzureCustomCloudConfig{ActiveDirectoryEndpoint: "https://login.local.azurestack.external/"}
		})), ""},
		{"no provider", provider.Store{Kind: esv1.SecretStoreKind, Spec: &esv1.SecretStoreSpec{}}, "not set"},
		{"no vault URL", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.VaultURL = nil })), "vaultUrl is required"},
		{"plain http vault", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.VaultURL = ptr("http://v.vault.azure.net") })), "must use https"},
		{"unknown auth type", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.AuthType = ptr(esv1.AzureAuthType("Password")) })), "authType"},
		{"no authSecretRef", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.AuthSecretRef = nil })), "needs authSecretRef"},
		{"no client ID", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.AuthSecretRef.ClientID = nil })), "clientId"},
		{"no client secret", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.AuthSecretRef.ClientSecret = nil })), "clientSecret or"},
		{"secret and certificate", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.AuthSecretRef.ClientCertificate = sel("c", "") })), "both"},
		{"no tenant", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.TenantID = nil })), "tenantId"},
		{"german cloud", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.EnvironmentType = esv1.AzureEnvironmentGermanCloud })), "GermanCloud"},
		{"azure stack without custom config", clusterStore(sp(func(p *esv1.AzureKVProvider) { p.EnvironmentType = esv1.AzureEnvironmentAzureStackCloud })), "customCloudConfig"},
		{"custom cloud over http", clusterStore(sp(func(p *esv1.AzureKVProvider) {
			p.CustomCloudConfig = &esv1.AzureCustomCloudConfig{ActiveDirectoryEndpoint: "http://login"}
		})), "activeDirectoryEndpoint"},
		{"namespaced store reading another namespace", namespacedStore("team-a", sp(func(p *esv1.AzureKVProvider) {
			p.AuthSecretRef.ClientSecret = sel("c", "team-b")
		})), "own namespace"},
		{"namespaced store naming its own namespace", namespacedStore("team-a", sp(func(p *esv1.AzureKVProvider) {
			p.AuthSecretRef.ClientSecret = sel("c", "team-a")
		})), ""},
		{"namespaced store with a foreign service account", namespacedStore("team-a", &esv1.AzureKVProvider{
			AuthType: ptr(esv1.AzureWorkloadIdentity), VaultURL: ptr("https://v.vault.azure.net"),
			ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa", Namespace: ptr("team-b")},
		}), "own namespace"},
	}
	p := New()
	for _, tc := range cases {
		err := p.ValidateSpec(tc.store)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: ValidateSpec = %v, want valid", tc.name, err)
		case tc.wantErr != "" && (err == nil || !errors.Is(err, provider.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: ValidateSpec = %v, want an invalid-config error mentioning %q", tc.name, err, tc.wantErr)
		}
	}
}
