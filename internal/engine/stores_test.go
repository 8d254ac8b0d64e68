package engine_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/all"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, testenv.Options{NoOperator: true}, &env))
}

// stores are the stores of TestStoreResolvers: in the test's namespace a
// SecretStore of another controller class and three SecretProviderClasses;
// ClusterSecretStores allowing the namespace's label, another namespace
// only, and every namespace.
const stores = `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: theirs
spec:
  controller: other
  provider:
    fake:
      data: []
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: ours
spec:
  provider:
    fake:
      data:
      - key: k
        value: v
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: gcp
spec:
  provider: akeyless
  parameters:
    secrets: x
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: no-provider
spec:
  parameters:
    keyvaultName: kv1
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: no-vault
spec:
  provider: azure
  parameters:
    objects: |
      array:
        - objectName: a
          objectType: secret
`

func clusterStores(suffix string) string {
	return `apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: labelled-` + suffix + `
spec:
  conditions:
  - namespaceSelector:
      matchLabels:
        team: ` + suffix + `
  provider:
    fake:
      data:
      - key: k
        value: v
---
apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: elsewhere-` + suffix + `
spec:
  conditions:
  - namespaces: [somewhere-else]
    namespaceRegexes: ["^kube-"]
  provider:
    fake:
      data: []
`
}

// The resolvers of the three store kinds, against a real API server: each
// rule's reason and message are what the sync reports.
func TestStoreResolvers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	suffix := strings.ToLower(strings.ReplaceAll(t.Name(), "Test", ""))
	ns := env.Namespace(t, "team", suffix)
	env.Apply(t, ns, stores)
	env.Apply(t, "", clusterStores(suffix))
	reg := all.Registry(all.Options{Config: env.Cluster.Config})
	layer := fetch.New(ctx, fetch.Options{Registry: reg, Kube: env.Client})

	tests := []struct {
		name        string
		ref         engine.StoreRef
		noCluster   bool
		wantReason  string
		wantMessage string
	}{
		{name: "SecretStore", ref: engine.StoreRef{Kind: esv1.SecretStoreKind, Name: "ours"}},
		{name: "a reference without a kind is a SecretStore", ref: engine.StoreRef{Name: "ours"}},
		{name: "SecretStore missing", ref: engine.StoreRef{Kind: esv1.SecretStoreKind, Name: "missing"},
			wantReason: engine.ReasonStoreNotFound, wantMessage: `SecretStore "missing" not found in namespace "` + ns + `"`},
		{name: "SecretStore of another controller class", ref: engine.StoreRef{Kind: esv1.SecretStoreKind, Name: "theirs"},
			wantReason: engine.ReasonStoreOfAnotherController, wantMessage: `SecretStore "theirs" has spec.controller "other" and this keyferry's class is ""`},
		{name: "ClusterSecretStore allowing the namespace's labels", ref: engine.StoreRef{Kind: esv1.ClusterSecretStoreKind, Name: "labelled-" + suffix}},
		{name: "ClusterSecretStore missing", ref: engine.StoreRef{Kind: esv1.ClusterSecretStoreKind, Name: "missing-" + suffix},
			wantReason: engine.ReasonStoreNotFound, wantMessage: `ClusterSecretStore "missing-` + suffix + `" not found`},
		{name: "ClusterSecretStore refused by its conditions", ref: engine.StoreRef{Kind: esv1.ClusterSecretStoreKind, Name: "elsewhere-" + suffix},
			wantReason: engine.ReasonStoreNotAllowed, wantMessage: `ClusterSecretStore "elsewhere-` + suffix + `" does not allow namespace "` + ns + `": no condition matches`},
		{name: "cluster stores disabled", ref: engine.StoreRef{Kind: esv1.ClusterSecretStoreKind, Name: "labelled-" + suffix}, noCluster: true,
			wantReason: engine.ReasonClusterStoreDisabled, wantMessage: `ClusterSecretStore "labelled-` + suffix + `" cannot be used: this keyferry serves no ClusterSecretStores`},
		{name: "cluster stores disabled, even a missing one", ref: engine.StoreRef{Kind: esv1.ClusterSecretStoreKind, Name: "missing-" + suffix}, noCluster: true,
			wantReason: engine.ReasonClusterStoreDisabled, wantMessage: "--enable-cluster-store-reconciler=false"},
		{name: "SecretProviderClass missing", ref: engine.StoreRef{Kind: provider.ClassKind, Name: "missing", ServiceAccount: "sa"},
			wantReason: engine.ReasonStoreNotFound, wantMessage: `SecretProviderClass "missing" not found in namespace "` + ns + `"`},
		{name: "SecretProviderClass of another provider", ref: engine.StoreRef{Kind: provider.ClassKind, Name: "gcp", ServiceAccount: "sa"},
			wantReason: engine.ReasonUnsupportedProvider, wantMessage: `SecretProviderClass "gcp" uses provider "akeyless": keyferry synchronizes SecretProviderClasses with provider `},
		{name: "SecretProviderClass without a provider", ref: engine.StoreRef{Kind: provider.ClassKind, Name: "no-provider", ServiceAccount: "sa"},
			wantReason: engine.ReasonUnsupportedProvider, wantMessage: `SecretProviderClass "no-provider" sets no spec.provider`},
		{name: "SecretProviderClass with invalid parameters", ref: engine.StoreRef{Kind: provider.ClassKind, Name: "no-vault", ServiceAccount: "sa"},
			wantReason: engine.ReasonInvalidStoreConfig, wantMessage: `SecretProviderClass "no-vault": parameters.keyvaultName is required`},
		{name: "SecretProviderClass without a ServiceAccount", ref: engine.StoreRef{Kind: provider.ClassKind, Name: "no-vault"},
			wantReason: engine.ReasonInvalidStoreConfig, wantMessage: `SecretProviderClass "no-vault" is used without a ServiceAccount`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &engine.Engine{Client: env.Client, APIReader: env.Client, Fetch: layer, Registry: reg, DisableClusterStores: tt.noCluster}
			plan := engine.Plan{
				Owner:   engine.Owner{Kind: "ExternalSecret", Namespace: ns, Name: "es"},
				Target:  engine.Target{Name: "out", Type: corev1.SecretTypeOpaque, CreationPolicy: esv1.CreatePolicyNone},
				Sources: []engine.Source{{Store: tt.ref, Data: &engine.DataSource{SecretKey: "k", Ref: provider.Ref{Key: "k"}}}},
			}
			_, err := e.Execute(ctx, plan)
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("Execute = %v; want the store resolved and read", err)
				}
				return
			}
			var ee *engine.Error
			if !errors.As(err, &ee) || ee.Reason != tt.wantReason || !strings.Contains(err.Error(), tt.wantMessage) {
				t.Fatalf("Execute = %v (%T); want %s: %q", err, err, tt.wantReason, tt.wantMessage)
			}
		})
	}
}

// CheckProvider for a SecretProviderClass: the provider of its
// spec.provider, then that provider's check of its parameters.
func TestCheckProviderClass(t *testing.T) {
	reg := all.Registry(all.Options{})
	objects := "array:\n  - objectName: a\n    objectType: secret\n"
	tests := []struct {
		name       string
		class      provider.Class
		wantReason string
		want       string
	}{
		{name: "azure", class: provider.Class{Provider: "azure", Parameters: map[string]string{"keyvaultName": "kv1", "objects": objects}}},
		{name: "another provider", class: provider.Class{Provider: "akeyless"}, wantReason: engine.ReasonUnsupportedProvider,
			want: `SecretProviderClass "spc" uses provider "akeyless": keyferry synchronizes SecretProviderClasses with provider `},
		{name: "no provider", class: provider.Class{}, wantReason: engine.ReasonUnsupportedProvider,
			want: `SecretProviderClass "spc" sets no spec.provider: keyferry synchronizes SecretProviderClasses with provider `},
		{name: "bad parameters", class: provider.Class{Provider: "azure", Parameters: map[string]string{"keyvaultName": "kv1", "cloudName": "Mars", "objects": objects}}, wantReason: engine.ReasonInvalidStoreConfig,
			want: `SecretProviderClass "spc": parameters.cloudName`},
		{name: "bad objects", class: provider.Class{Provider: "azure", Parameters: map[string]string{"keyvaultName": "kv1", "objects": "array: ["}}, wantReason: engine.ReasonInvalidStoreConfig,
			want: `SecretProviderClass "spc": objects: not valid YAML`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.class
			err := engine.CheckProvider(reg, provider.Store{Kind: provider.ClassKind, Namespace: "ns", Name: "spc", Class: &c})
			if tt.wantReason == "" {
				if err != nil {
					t.Fatalf("CheckProvider = %v; want nil", err)
				}
				return
			}
			var ee *engine.Error
			if !errors.As(err, &ee) || ee.Reason != tt.wantReason || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckProvider = %v; want %s: %q", err, tt.wantReason, tt.want)
			}
		})
	}
}
