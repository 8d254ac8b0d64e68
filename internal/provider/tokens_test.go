package provider_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/kubernetes"
	"github.com/keyferry/keyferry/internal/provider/vault"
)

// recordingTokens records the token requests that reach it. The real
// TokenRequest API is exercised in internal/kube and the providers'
// integration tests; this checks the rule in front of it.
type recordingTokens struct {
	api      []string
	requests []time.Duration
}

func (r *recordingTokens) ServiceAccountToken(_ context.Context, _, _ string, _ []string, expiry time.Duration) (string, time.Time, error) {
	r.requests = append(r.requests, expiry)
	return "token", time.Now().Add(expiry), nil
}

func (r *recordingTokens) APIAudiences(context.Context, string, string) ([]string, error) {
	return r.api, nil
}

func TestTokensLiveTenMinutesAndNeverCarryTheAPIAudienceOutOfTheCluster(t *testing.T) {
	api := "https://kubernetes.default.svc.cluster.local"
	vaultStore := esv1.SecretStoreProvider{Vault: &esv1.VaultProvider{Server: "https://vault.example"}}
	thisCluster := esv1.SecretStoreProvider{Kubernetes: &esv1.KubernetesProvider{}}
	otherCluster := esv1.SecretStoreProvider{Kubernetes: &esv1.KubernetesProvider{Server: esv1.KubernetesServer{URL: "https://other.example:6443"}}}
	tests := []struct {
		name      string
		p         provider.Provider
		store     provider.Store
		audiences []string
		policy    provider.Policy
		refused   bool
	}{
		{"a namespaced store sending a token with no audience outside", vault.New(), namespaced("team-a", vaultStore), nil, provider.Policy{}, true},
		{"a namespaced store sending a token with the API audience outside", vault.New(), namespaced("team-a", vaultStore), []string{"vault", api}, provider.Policy{}, true},
		{"a namespaced store sending a token for vault", vault.New(), namespaced("team-a", vaultStore), []string{"vault"}, provider.Policy{}, false},
		{"a ClusterSecretStore may send the API audience", vault.New(), cluster(vaultStore), nil, provider.Policy{}, false},
		{"granted api-token in its namespace", vault.New(), namespaced("team-a", vaultStore), nil,
			provider.Policy{AmbientIdentities: []provider.IdentityGrant{{Identity: provider.IdentityAPIToken, Namespace: "team-a"}}}, false},
		{"a namespaced store reading this cluster", kubernetes.New(nil), namespaced("team-a", thisCluster), nil, provider.Policy{}, false},
		{"a namespaced store reading another cluster", kubernetes.New(nil), namespaced("team-a", otherCluster), nil, provider.Policy{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingTokens{api: []string{api}}
			opts, err := provider.Admit(tt.p, provider.Options{Store: tt.store, Tokens: rec, Policy: tt.policy})
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = opts.Tokens.ServiceAccountToken(context.Background(), "team-a", "app", tt.audiences, 24*time.Hour)
			if tt.refused {
				if !errors.Is(err, provider.ErrOperatorIdentity) || !strings.Contains(err.Error(), "service account team-a/app") {
					t.Fatalf("err %v, want a refusal naming the service account", err)
				}
				if len(rec.requests) != 0 {
					t.Fatalf("%d tokens were requested before the refusal", len(rec.requests))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rec.requests, []time.Duration{provider.TokenExpiry}) {
				t.Errorf("requested lifetimes %v, want one of %s", rec.requests, provider.TokenExpiry)
			}
		})
	}
}
