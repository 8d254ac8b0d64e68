package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
)

func acrSP() *genv1alpha1.ACRServicePrincipalAuth {
	return &genv1alpha1.ACRServicePrincipalAuth{SecretRef: genv1alpha1.ACRServicePrincipalSecretRef{
		ClientID:     esv1.SecretKeySelector{Name: "az-secret", Key: "clientid"},
		ClientSecret: esv1.SecretKeySelector{Name: "az-secret", Key: "clientsecret"},
	}}
}

func TestACRGeneratorStore(t *testing.T) {
	const tenant = "11111111-2222-3333-4444-111111111111"
	sa := &esv1.ServiceAccountSelector{Name: "my-service-account", Audiences: []string{}}
	mi := &genv1alpha1.ACRManagedIdentityAuth{IdentityID: tenant}
	wi := &genv1alpha1.ACRWorkloadIdentityAuth{ServiceAccountRef: sa}
	spStore := &esv1.AzureKVProvider{
		AuthType: ptr(esv1.AzureServicePrincipal), TenantID: ptr(tenant), EnvironmentType: esv1.AzureEnvironmentPublicCloud,
		AuthSecretRef: &esv1.AzureKVAuth{
			ClientID:     &esv1.SecretKeySelector{Name: "az-secret", Key: "clientid"},
			ClientSecret: &esv1.SecretKeySelector{Name: "az-secret", Key: "clientsecret"},
		},
	}
	acr := func(auth genv1alpha1.ACRAuth, mut ...func(*genv1alpha1.ACRAccessTokenSpec)) genv1alpha1.GeneratorSpec {
		g := &genv1alpha1.ACRAccessTokenSpec{Auth: auth, TenantID: tenant, Registry: "example.azurecr.io", EnvironmentType: esv1.AzureEnvironmentPublicCloud}
		for _, m := range mut {
			m(g)
		}
		return genv1alpha1.GeneratorSpec{ACRAccessTokenSpec: g}
	}
	for _, tc := range []struct {
		name    string
		spec    genv1alpha1.GeneratorSpec
		want    *esv1.AzureKVProvider
		wantErr string
	}{
		{name: "servicePrincipal: authType ServicePrincipal, authSecretRef clientId and clientSecret, tenantId",
			spec: acr(genv1alpha1.ACRAuth{ServicePrincipal: acrSP()}), want: spStore},
		{name: "ESO's example sets all three: servicePrincipal is used, as in ESO",
			spec: acr(genv1alpha1.ACRAuth{ServicePrincipal: acrSP(), ManagedIdentity: mi, WorkloadIdentity: wi}), want: spStore},
		{name: "managedIdentity: authType ManagedIdentity with identityId",
			spec: acr(genv1alpha1.ACRAuth{ManagedIdentity: mi}),
			want: &esv1.AzureKVProvider{AuthType: ptr(esv1.AzureManagedIdentity), TenantID: ptr(tenant), EnvironmentType: esv1.AzureEnvironmentPublicCloud, IdentityID: ptr(tenant)}},
		{name: "managedIdentity without identityId is the system-assigned identity",
			spec: acr(genv1alpha1.ACRAuth{ManagedIdentity: &genv1alpha1.ACRManagedIdentityAuth{}}, func(g *genv1alpha1.ACRAccessTokenSpec) { g.TenantID, g.EnvironmentType = "", "" }),
			want: &esv1.AzureKVProvider{AuthType: ptr(esv1.AzureManagedIdentity)}},
		{name: "managedIdentity comes before workloadIdentity",
			spec: acr(genv1alpha1.ACRAuth{ManagedIdentity: mi, WorkloadIdentity: wi}),
			want: &esv1.AzureKVProvider{AuthType: ptr(esv1.AzureManagedIdentity), TenantID: ptr(tenant), EnvironmentType: esv1.AzureEnvironmentPublicCloud, IdentityID: ptr(tenant)}},
		{name: "workloadIdentity: authType WorkloadIdentity with serviceAccountRef",
			spec: acr(genv1alpha1.ACRAuth{WorkloadIdentity: wi}, func(g *genv1alpha1.ACRAccessTokenSpec) { g.EnvironmentType = esv1.AzureEnvironmentChinaCloud }),
			want: &esv1.AzureKVProvider{AuthType: ptr(esv1.AzureWorkloadIdentity), TenantID: ptr(tenant), EnvironmentType: esv1.AzureEnvironmentChinaCloud, ServiceAccountRef: sa}},
		{name: "workloadIdentity without serviceAccountRef is the operator's own",
			spec: acr(genv1alpha1.ACRAuth{WorkloadIdentity: &genv1alpha1.ACRWorkloadIdentityAuth{}}),
			want: &esv1.AzureKVProvider{AuthType: ptr(esv1.AzureWorkloadIdentity), TenantID: ptr(tenant), EnvironmentType: esv1.AzureEnvironmentPublicCloud}},
		{name: "no auth", spec: acr(genv1alpha1.ACRAuth{}), wantErr: "spec.auth"},
		{name: "registry is required", spec: acr(genv1alpha1.ACRAuth{ManagedIdentity: mi}, func(g *genv1alpha1.ACRAccessTokenSpec) { g.Registry = " " }), wantErr: "spec.registry"},
		{name: "servicePrincipal needs tenantId", spec: acr(genv1alpha1.ACRAuth{ServicePrincipal: acrSP()}, func(g *genv1alpha1.ACRAccessTokenSpec) { g.TenantID = "" }), wantErr: "spec.tenantId"},
		{name: "servicePrincipal needs clientId", spec: acr(genv1alpha1.ACRAuth{ServicePrincipal: &genv1alpha1.ACRServicePrincipalAuth{SecretRef: genv1alpha1.ACRServicePrincipalSecretRef{
			ClientSecret: esv1.SecretKeySelector{Name: "a", Key: "b"}}}}), wantErr: "spec.auth.servicePrincipal.secretRef.clientId"},
		{name: "servicePrincipal needs clientSecret's key", spec: acr(genv1alpha1.ACRAuth{ServicePrincipal: &genv1alpha1.ACRServicePrincipalAuth{SecretRef: genv1alpha1.ACRServicePrincipalSecretRef{
			ClientID: esv1.SecretKeySelector{Name: "a", Key: "b"}, ClientSecret: esv1.SecretKeySelector{Name: "a"}}}}), wantErr: "spec.auth.servicePrincipal.secretRef.clientSecret"},
		{name: "GermanCloud was closed", spec: acr(genv1alpha1.ACRAuth{ManagedIdentity: mi}, func(g *genv1alpha1.ACRAccessTokenSpec) { g.EnvironmentType = esv1.AzureEnvironmentGermanCloud }), wantErr: "spec.environmentType"},
		{name: "AzureStackCloud needs endpoints the generator has no field for", spec: acr(genv1alpha1.ACRAuth{ManagedIdentity: mi}, func(g *genv1alpha1.ACRAccessTokenSpec) { g.EnvironmentType = esv1.AzureEnvironmentAzureStackCloud }), wantErr: "spec.environmentType"},
		{name: "ClusterGenerator of kind ACRAccessToken without its spec", spec: genv1alpha1.GeneratorSpec{}, wantErr: "spec.generator.acrAccessTokenSpec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := GeneratorStoreFor(GeneratorACRAccessToken, tc.spec)
			if tc.wantErr != "" {
				var se *GeneratorSpecError
				if !errors.As(err, &se) || se.Field != tc.wantErr {
					t.Fatalf("err = %v, want a GeneratorSpecError on %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("GeneratorStoreFor: %v", err)
			}
			if got := gs.Spec.Provider.AzureKV; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("store azurekv = %+v, want %+v", got, tc.want)
			}
			if gs.Spec.Provider.AzureKV.VaultURL != nil {
				t.Fatal("the generator's store has a vaultUrl")
			}
			if name, _ := provider.SelectedName(gs.Spec.Provider); name != azurekv.Name {
				t.Fatalf("store provider = %q, want azurekv", name)
			}
			if s, ok := gs.Request.Spec.(*genv1alpha1.ACRAccessTokenSpec); !ok || s == tc.spec.ACRAccessTokenSpec || gs.Request.Kind != GeneratorACRAccessToken {
				t.Fatalf("request = %+v, want a copy of the generator's spec", gs.Request)
			}
		})
	}
}

// TestACRGeneratorPassesTheStoreRules: the store an ACRAccessToken becomes
// is admitted as a SecretStore of its namespace (a ClusterGenerator's as a
// ClusterSecretStore), and the refusals name the generator's fields.
func TestACRGeneratorPassesTheStoreRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		auth    genv1alpha1.ACRAuth
		cluster bool
		want    error
		reason  string
		message string
	}{
		{name: "servicePrincipal in the generator's namespace", auth: genv1alpha1.ACRAuth{ServicePrincipal: acrSP()}},
		{name: "workloadIdentity with a ServiceAccount of the namespace", auth: genv1alpha1.ACRAuth{WorkloadIdentity: &genv1alpha1.ACRWorkloadIdentityAuth{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa"}}}},
		{name: "a namespaced managedIdentity would be the operator's identity",
			auth: genv1alpha1.ACRAuth{ManagedIdentity: &genv1alpha1.ACRManagedIdentityAuth{}}, want: provider.ErrOperatorIdentity,
			reason: ReasonOperatorIdentityNotAllowed, message: "spec.auth.managedIdentity is set, so keyferry would authenticate as its own pod's managed identity"},
		{name: "a namespaced workloadIdentity without serviceAccountRef would be the operator's identity",
			auth: genv1alpha1.ACRAuth{WorkloadIdentity: &genv1alpha1.ACRWorkloadIdentityAuth{}}, want: provider.ErrOperatorIdentity,
			reason: ReasonOperatorIdentityNotAllowed, message: "spec.auth.workloadIdentity has no serviceAccountRef"},
		{name: "a ClusterGenerator may use the operator's managed identity", cluster: true, auth: genv1alpha1.ACRAuth{ManagedIdentity: &genv1alpha1.ACRManagedIdentityAuth{}}},
		{name: "a credential Secret of another namespace",
			auth: genv1alpha1.ACRAuth{ServicePrincipal: &genv1alpha1.ACRServicePrincipalAuth{SecretRef: genv1alpha1.ACRServicePrincipalSecretRef{
				ClientID:     esv1.SecretKeySelector{Name: "az", Key: "id", Namespace: ptr("kube-system")},
				ClientSecret: esv1.SecretKeySelector{Name: "az", Key: "secret"},
			}}}, want: provider.ErrInvalidConfig,
			reason: ReasonInvalidGeneratorSpec, message: `spec.auth.servicePrincipal.secretRef.clientId.namespace "kube-system": a ACRAccessToken may only reference its own namespace`},
		{name: "a ServiceAccount of another namespace",
			auth: genv1alpha1.ACRAuth{WorkloadIdentity: &genv1alpha1.ACRWorkloadIdentityAuth{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa", Namespace: ptr("kube-system")}}},
			want: provider.ErrInvalidConfig, reason: ReasonInvalidGeneratorSpec, message: "spec.auth.workloadIdentity.serviceAccountRef.namespace"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &genv1alpha1.ACRAccessTokenSpec{Auth: tc.auth, TenantID: "t", Registry: "example.azurecr.io"}
			gs, err := GeneratorStoreFor(GeneratorACRAccessToken, genv1alpha1.GeneratorSpec{ACRAccessTokenSpec: spec})
			if err != nil {
				t.Fatal(err)
			}
			store := generatorStoreObject(GeneratorACRAccessToken, "acr", "team-a", tc.cluster, gs.Spec)
			_, err = provider.Admit(azurekv.New(), provider.Options{Store: store, Namespace: "team-a"})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Admit: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			e := generatorProviderError("spec.dataFrom[0].sourceRef.generatorRef", "ACRAccessToken acr", gs.Prefix, err, gs.Words...)
			msg := e.Error()
			if e.Reason != tc.reason || !strings.Contains(msg, tc.message) {
				t.Fatalf("reason %s, message %q; want %s and %q", e.Reason, msg, tc.reason, tc.message)
			}
			for _, word := range []string{"spec.provider.azurekv", "authType", "authSecretRef", "use a ClusterSecretStore"} {
				if strings.Contains(msg, word) {
					t.Fatalf("message %q says %q, a field of the store, not of the generator", msg, word)
				}
			}
		})
	}
}
