package provider_test

import (
	"errors"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/aws"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
	"github.com/keyferry/keyferry/internal/provider/gcpsm"
	"github.com/keyferry/keyferry/internal/provider/kubernetes"
	"github.com/keyferry/keyferry/internal/provider/vault"
	"github.com/keyferry/keyferry/internal/provider/webhook"
)

func ptr[T any](v T) *T { return &v }

func namespaced(ns string, p esv1.SecretStoreProvider) provider.Store {
	return provider.Store{Kind: esv1.SecretStoreKind, Name: "store", Namespace: ns, Spec: &esv1.SecretStoreSpec{Provider: &p}}
}

func cluster(p esv1.SecretStoreProvider) provider.Store {
	return provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "store", Spec: &esv1.SecretStoreSpec{Provider: &p}}
}

// Every way a store can make keyferry use its own identity, and the ways
// that look alike but use a credential of the store's namespace.
func TestNamespacedStoresCannotUseTheOperatorsIdentity(t *testing.T) {
	sa := &esv1.ServiceAccountSelector{Name: "app"}
	key := esv1.SecretKeySelector{Name: "creds", Key: "k"}
	wi, mi, sp := esv1.AzureWorkloadIdentity, esv1.AzureManagedIdentity, esv1.AzureServicePrincipal
	vaultURL := ptr("https://v.vault.azure.net/")
	tests := []struct {
		name string
		p    provider.Provider
		spec esv1.SecretStoreProvider
		// want is the identity refused; "" means the store is admitted.
		want provider.Identity
	}{
		{"vault kubernetes auth without refs sends keyferry's token", vault.New(),
			esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Server: "https://vault.example", Auth: &esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Role: "r"}}}}, provider.IdentityKubernetes},
		{"vault kubernetes auth with serviceAccountRef", vault.New(),
			esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Server: "https://vault.example", Auth: &esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Role: "r", ServiceAccountRef: sa}}}}, ""},
		{"vault kubernetes auth with secretRef", vault.New(),
			esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Server: "https://vault.example", Auth: &esv1.VaultAuth{Kubernetes: &esv1.VaultKubernetesAuth{Role: "r", SecretRef: &key}}}}, ""},
		{"vault token auth (a method before kubernetes wins)", vault.New(),
			esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Server: "https://vault.example", Auth: &esv1.VaultAuth{TokenSecretRef: &key, Kubernetes: &esv1.VaultKubernetesAuth{Role: "r"}}}}, ""},
		{"aws without auth uses the default chain", aws.New(),
			esv1.SecretStoreProvider{AWS: &esv1.AWSProvider{Service: "SecretsManager", Region: "eu-central-1"}}, provider.IdentityAWS},
		{"aws with secretRef", aws.New(),
			esv1.SecretStoreProvider{AWS: &esv1.AWSProvider{Service: "SecretsManager", Region: "eu-central-1", Auth: esv1.AWSAuth{SecretRef: &esv1.AWSAuthSecretRef{AccessKeyID: key, SecretAccessKey: key}}}}, ""},
		{"aws with jwt", aws.New(),
			esv1.SecretStoreProvider{AWS: &esv1.AWSProvider{Service: "SecretsManager", Region: "eu-central-1", Auth: esv1.AWSAuth{JWTAuth: &esv1.AWSJWTAuth{ServiceAccountRef: sa}}}}, ""},
		{"gcp without auth uses application default credentials", gcpsm.New(),
			esv1.SecretStoreProvider{GCPSM: &esv1.GCPSMProvider{ProjectID: "p"}}, provider.IdentityGCP},
		{"gcp with secretRef", gcpsm.New(),
			esv1.SecretStoreProvider{GCPSM: &esv1.GCPSMProvider{ProjectID: "p", Auth: esv1.GCPSMAuth{SecretRef: &esv1.GCPSMAuthSecretRef{SecretAccessKey: key}}}}, ""},
		{"gcp with workloadIdentity", gcpsm.New(),
			esv1.SecretStoreProvider{GCPSM: &esv1.GCPSMProvider{ProjectID: "p", Auth: esv1.GCPSMAuth{WorkloadIdentity: &esv1.GCPWorkloadIdentity{ServiceAccountRef: *sa}}}}, ""},
		{"azure managed identity", azurekv.New(),
			esv1.SecretStoreProvider{AzureKV: &esv1.AzureKVProvider{VaultURL: vaultURL, AuthType: &mi}}, provider.IdentityAzure},
		{"azure workload identity without serviceAccountRef", azurekv.New(),
			esv1.SecretStoreProvider{AzureKV: &esv1.AzureKVProvider{VaultURL: vaultURL, AuthType: &wi}}, provider.IdentityAzure},
		{"azure workload identity with serviceAccountRef", azurekv.New(),
			esv1.SecretStoreProvider{AzureKV: &esv1.AzureKVProvider{VaultURL: vaultURL, AuthType: &wi, ServiceAccountRef: sa}}, ""},
		{"azure workload identity posting its token to a custom authority", azurekv.New(),
			esv1.SecretStoreProvider{AzureKV: &esv1.AzureKVProvider{VaultURL: vaultURL, AuthType: &wi, ServiceAccountRef: sa,
				EnvironmentType: esv1.AzureEnvironmentType("AzureStackCloud"), CustomCloudConfig: &esv1.AzureCustomCloudConfig{ActiveDirectoryEndpoint: "https://login.tenant.example/"}}}, provider.IdentityAzureAuthority},
		{"azure service principal with a custom authority", azurekv.New(),
			esv1.SecretStoreProvider{AzureKV: &esv1.AzureKVProvider{VaultURL: vaultURL, AuthType: &sp,
				CustomCloudConfig: &esv1.AzureCustomCloudConfig{ActiveDirectoryEndpoint: "https://login.tenant.example/"}}}, ""},
		{"webhook spiffe.files presents keyferry's SVID", webhook.New(),
			esv1.SecretStoreProvider{Webhook: &esv1.WebhookProvider{URL: "https://safe.example/", SPIFFE: &esv1.WebhookSPIFFE{Files: &esv1.SPIFFEFiles{CertPath: "/c", KeyPath: "/k", BundlePath: "/b"}, TrustDomain: "example.org"}}}, provider.IdentitySPIFFE},
		{"webhook spiffe.workloadAPISocket presents keyferry's SVID", webhook.New(),
			esv1.SecretStoreProvider{Webhook: &esv1.WebhookProvider{URL: "https://safe.example/", SPIFFE: &esv1.WebhookSPIFFE{WorkloadAPISocket: "unix:///run/spire/agent.sock", TrustDomain: "example.org"}}}, provider.IdentitySPIFFE},
		{"webhook without spiffe", webhook.New(),
			esv1.SecretStoreProvider{Webhook: &esv1.WebhookProvider{URL: "https://safe.example/"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := provider.Admit(tt.p, provider.Options{Store: namespaced("team-a", tt.spec)})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("a namespaced store was refused: %v", err)
				}
			} else {
				if !errors.Is(err, provider.ErrOperatorIdentity) {
					t.Fatalf("a namespaced store was admitted (err %v), want ErrOperatorIdentity", err)
				}
				if want := "--allow-ambient-identity=team-a/" + string(tt.want); !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not say how to allow it (%s)", err, want)
				}
				// The same store granted that identity is admitted, in its
				// namespace only.
				pol := provider.Policy{AmbientIdentities: []provider.IdentityGrant{{Identity: tt.want, Namespace: "team-a"}}}
				if _, err := provider.Admit(tt.p, provider.Options{Store: namespaced("team-a", tt.spec), Policy: pol}); err != nil {
					t.Errorf("granted team-a/%s, still refused: %v", tt.want, err)
				}
				if _, err := provider.Admit(tt.p, provider.Options{Store: namespaced("team-b", tt.spec), Policy: pol}); !errors.Is(err, provider.ErrOperatorIdentity) {
					t.Errorf("granted team-a/%s, team-b admitted: %v", tt.want, err)
				}
			}
			if _, err := provider.Admit(tt.p, provider.Options{Store: cluster(tt.spec)}); err != nil {
				t.Errorf("the same ClusterSecretStore was refused: %v", err)
			}
		})
	}
}

// The kubernetes provider's tokens stay in this cluster only when its
// server is this cluster's.
func TestKubernetesTokensStayLocalOnlyForThisCluster(t *testing.T) {
	p := kubernetes.New(nil).(provider.LocalTokenUser)
	for url, want := range map[string]bool{
		"":                               true,
		"https://kubernetes.default.svc": true,
		"kubernetes.default.svc.cluster.local:443":    true,
		"https://other-cluster.example:6443":          false,
		"https://kubernetes.default.svc.evil.example": false,
	} {
		st := namespaced("team-a", esv1.SecretStoreProvider{Kubernetes: &esv1.KubernetesProvider{Server: esv1.KubernetesServer{URL: url}}})
		if got := p.TokensStayLocal(st); got != want {
			t.Errorf("server.url %q: TokensStayLocal = %v, want %v", url, got, want)
		}
	}
}

func TestParseIdentityGrants(t *testing.T) {
	tests := []struct {
		in      string
		want    []provider.IdentityGrant
		wantErr string
	}{
		{in: ""},
		{in: " , "},
		{in: "aws", want: []provider.IdentityGrant{{Identity: provider.IdentityAWS}}},
		{in: "aws, team-a/spiffe", want: []provider.IdentityGrant{{Identity: provider.IdentityAWS}, {Identity: provider.IdentitySPIFFE, Namespace: "team-a"}}},
		{in: "api-token,azure-authority", want: []provider.IdentityGrant{{Identity: provider.IdentityAPIToken}, {Identity: provider.IdentityAzureAuthority}}},
		{in: "root", wantErr: `unknown identity "root"`},
		{in: "Team/aws", wantErr: "not a namespace name"},
		{in: "/aws", wantErr: "not a namespace name"},
		{in: "team-a/", wantErr: `unknown identity ""`},
		{in: "a/b/aws", wantErr: `unknown identity "b/aws"`},
	}
	for _, tt := range tests {
		got, err := provider.ParseIdentityGrants(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("%q: got %v, want %v", tt.in, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("%q: got %v, want %v", tt.in, got, tt.want)
			}
		}
	}
}

func FuzzParseIdentityGrants(f *testing.F) {
	for _, s := range []string{"", "aws", "team-a/spiffe,gcp", "a/b/c", ",,", "Team/aws"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		grants, err := provider.ParseIdentityGrants(s)
		if err != nil {
			return
		}
		// What parses round-trips, and names only known identities.
		var parts []string
		for _, g := range grants {
			parts = append(parts, g.String())
		}
		again, err := provider.ParseIdentityGrants(strings.Join(parts, ","))
		if err != nil || len(again) != len(grants) {
			t.Fatalf("%q parsed to %v, which does not parse back: %v", s, grants, err)
		}
	})
}
