package engine

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/generator"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/gcpsm"
)

// A GCRAccessToken becomes a gcpsm store with its auth and projectID, which
// passes provider.Admit exactly as a SecretStore in its namespace (or, for
// a ClusterGenerator, a ClusterSecretStore) would.
func TestGCRAccessTokenGeneratorStore(t *testing.T) {
	raw := func(s string) genv1alpha1.GeneratorSpec {
		return genv1alpha1.GeneratorSpec{GCRAccessTokenSpec: &apiextensionsv1.JSON{Raw: []byte(s)}}
	}
	other := "other"
	for _, tc := range []struct {
		name    string
		spec    genv1alpha1.GeneratorSpec
		want    *esv1.GCPSMProvider
		wantErr string
		// admit is Admit's sentinel for a namespaced generator; nil admits.
		admit error
		// clusterAdmit is Admit's sentinel for a ClusterGenerator.
		clusterAdmit error
	}{
		{name: "service account key of the namespace", spec: raw(`{"projectID": "p1", "auth": {"secretRef": {"secretAccessKeySecretRef": {"name": "gcp", "key": "sa.json"}}}}`),
			want: &esv1.GCPSMProvider{ProjectID: "p1", Auth: esv1.GCPSMAuth{SecretRef: &esv1.GCPSMAuthSecretRef{
				SecretAccessKey: esv1.SecretKeySelector{Name: "gcp", Key: "sa.json"}}}}},
		{name: "workload identity of a ServiceAccount of the namespace", spec: raw(`{"projectID": "p1", "auth": {"workloadIdentity": {"serviceAccountRef": {"name": "puller"}, "clusterLocation": "europe-west1", "clusterName": "prod", "clusterProjectID": "cp"}}}`),
			want: &esv1.GCPSMProvider{ProjectID: "p1", Auth: esv1.GCPSMAuth{WorkloadIdentity: &esv1.GCPWorkloadIdentity{
				ServiceAccountRef: esv1.ServiceAccountSelector{Name: "puller"}, ClusterLocation: "europe-west1", ClusterName: "prod", ClusterProjectID: "cp"}}}},
		{name: "no auth: the operator's application default credentials, for ClusterGenerators only", spec: raw(`{"projectID": "p1", "auth": {}}`),
			want: &esv1.GCPSMProvider{ProjectID: "p1"}, admit: provider.ErrOperatorIdentity},
		{name: "a key in another namespace", spec: raw(`{"projectID": "p1", "auth": {"secretRef": {"secretAccessKeySecretRef": {"name": "gcp", "key": "k", "namespace": "other"}}}}`),
			want: &esv1.GCPSMProvider{ProjectID: "p1", Auth: esv1.GCPSMAuth{SecretRef: &esv1.GCPSMAuthSecretRef{
				SecretAccessKey: esv1.SecretKeySelector{Name: "gcp", Key: "k", Namespace: &other}}}},
			admit: provider.ErrInvalidConfig},
		{name: "workload identity federation is kept (the provider refuses it)", spec: raw(`{"projectID": "p1", "auth": {"workloadIdentityFederation": {"audience": "a"}}}`),
			want: &esv1.GCPSMProvider{ProjectID: "p1", Auth: esv1.GCPSMAuth{WorkloadIdentityFederation: &esv1.GCPWorkloadIdentityFederation{Audience: "a"}}}},
		{name: "unknown field", spec: raw(`{"projectID": "p1", "region": "x"}`), wantErr: "spec"},
		{name: "not an object", spec: raw(`"p1"`), wantErr: "spec"},
		{name: "ClusterGenerator without its spec", spec: genv1alpha1.GeneratorSpec{}, wantErr: "spec.generator.gcrAccessTokenSpec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := GeneratorStoreFor(GeneratorGCRAccessToken, tc.spec)
			if tc.wantErr != "" {
				var se *GeneratorSpecError
				if !errors.As(err, &se) || se.Field != tc.wantErr {
					t.Fatalf("err = %v, want a GeneratorSpecError on %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if name, _ := provider.SelectedName(gs.Spec.Provider); name != gcpsm.Name {
				t.Fatalf("store provider = %q, want gcpsm", name)
			}
			if got := gs.Spec.Provider.GCPSM; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("store gcpsm = %+v, want %+v", got, tc.want)
			}
			if _, ok := gs.Request.Spec.(*generator.GCRAccessTokenSpec); !ok || gs.Request.Kind != GeneratorGCRAccessToken {
				t.Fatalf("request = %+v", gs.Request)
			}
			store := generatorStoreObject(GeneratorGCRAccessToken, "g", "team-a", false, gs.Spec)
			_, err = provider.Admit(gcpsm.New(), provider.Options{Store: store, Namespace: "team-a"})
			if (tc.admit == nil) != (err == nil) || (tc.admit != nil && !errors.Is(err, tc.admit)) {
				t.Fatalf("Admit = %v, want %v", err, tc.admit)
			}
			cluster := generatorStoreObject(GeneratorGCRAccessToken, "g", "team-a", true, gs.Spec)
			if _, err := provider.Admit(gcpsm.New(), provider.Options{Store: cluster, Namespace: "team-a"}); (err == nil) != (tc.clusterAdmit == nil) {
				t.Fatalf("Admit (ClusterGenerator) = %v", err)
			}
		})
	}
}

// The operator-identity refusal names the generator's field, not the
// store's.
func TestGCRAccessTokenOperatorIdentityMessage(t *testing.T) {
	gs, err := GeneratorStoreFor(GeneratorGCRAccessToken, genv1alpha1.GeneratorSpec{GCRAccessTokenSpec: &apiextensionsv1.JSON{Raw: []byte(`{"projectID": "p1", "auth": {}}`)}})
	if err != nil {
		t.Fatal(err)
	}
	store := generatorStoreObject(GeneratorGCRAccessToken, "g", "team-a", false, gs.Spec)
	_, err = provider.Admit(gcpsm.New(), provider.Options{Store: store, Namespace: "team-a"})
	e := generatorProviderError("spec.dataFrom[0].sourceRef.generatorRef", "GCRAccessToken g", gs.Prefix, err, gs.Words...)
	if e.Reason != ReasonOperatorIdentityNotAllowed {
		t.Fatalf("reason = %s", e.Reason)
	}
	if msg := e.Error(); strings.Contains(msg, "spec.provider.gcpsm") || !strings.Contains(msg, "spec.auth") {
		t.Fatalf("message %q does not name spec.auth", msg)
	}
}
