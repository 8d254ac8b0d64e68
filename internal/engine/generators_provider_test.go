package engine

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
	"github.com/keyferry/keyferry/internal/provider/vault"
)

func TestGeneratorStoreFor(t *testing.T) {
	secretRef := esv1.AWSAuth{SecretRef: &esv1.AWSAuthSecretRef{
		AccessKeyID:     esv1.SecretKeySelector{Name: "my-aws-creds", Key: "key-id"},
		SecretAccessKey: esv1.SecretKeySelector{Name: "my-aws-creds", Key: "access-secret"},
	}}
	jwt := esv1.AWSAuth{JWTAuth: &esv1.AWSJWTAuth{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "oci-token-sync"}}}
	dur, neg := int32(900), int32(-1)
	for _, tc := range []struct {
		name string
		kind string
		spec genv1alpha1.GeneratorSpec
		// want is the aws provider of the store; wantErr the field refused.
		want    *esv1.AWSProvider
		wantErr string
	}{
		{"ECR: region, role and secretRef become the store's", GeneratorECRAuthorizationToken,
			genv1alpha1.GeneratorSpec{ECRAuthorizationTokenSpec: &genv1alpha1.ECRAuthorizationTokenSpec{Region: "eu-west-1", Role: "my-role", Auth: secretRef, Scope: "public"}},
			&esv1.AWSProvider{Region: "eu-west-1", Role: "my-role", Auth: secretRef}, ""},
		{"ECR: jwt is kept", GeneratorECRAuthorizationToken,
			genv1alpha1.GeneratorSpec{ECRAuthorizationTokenSpec: &genv1alpha1.ECRAuthorizationTokenSpec{Region: "eu-west-1", Auth: jwt}},
			&esv1.AWSProvider{Region: "eu-west-1", Auth: jwt}, ""},
		{"ECR: no auth stays no auth (the operator's identity, which Admit decides on)", GeneratorECRAuthorizationToken,
			genv1alpha1.GeneratorSpec{ECRAuthorizationTokenSpec: &genv1alpha1.ECRAuthorizationTokenSpec{Region: "eu-west-1"}},
			&esv1.AWSProvider{Region: "eu-west-1"}, ""},
		{"ECR: region is required", GeneratorECRAuthorizationToken,
			genv1alpha1.GeneratorSpec{ECRAuthorizationTokenSpec: &genv1alpha1.ECRAuthorizationTokenSpec{Auth: secretRef}}, nil, "spec.region"},
		{"STS: region, role and secretRef become the store's", GeneratorSTSSessionToken,
			genv1alpha1.GeneratorSpec{STSSessionTokenSpec: &genv1alpha1.STSSessionTokenSpec{Region: "eu-west-1", Role: "my-role", Auth: secretRef,
				RequestParameters: &genv1alpha1.STSSessionTokenRequestParameters{SessionDuration: &dur}}},
			&esv1.AWSProvider{Region: "eu-west-1", Role: "my-role", Auth: secretRef}, ""},
		{"STS: region is required", GeneratorSTSSessionToken,
			genv1alpha1.GeneratorSpec{STSSessionTokenSpec: &genv1alpha1.STSSessionTokenSpec{}}, nil, "spec.region"},
		{"STS: a negative sessionDuration is refused", GeneratorSTSSessionToken,
			genv1alpha1.GeneratorSpec{STSSessionTokenSpec: &genv1alpha1.STSSessionTokenSpec{Region: "eu-west-1",
				RequestParameters: &genv1alpha1.STSSessionTokenRequestParameters{SessionDuration: &neg}}}, nil, "spec.requestParameters.sessionDuration"},
		{"ClusterGenerator of kind ECR without its spec", GeneratorECRAuthorizationToken,
			genv1alpha1.GeneratorSpec{STSSessionTokenSpec: &genv1alpha1.STSSessionTokenSpec{Region: "eu-west-1"}}, nil, "spec.generator.ecrAuthorizationTokenSpec"},
		{"ClusterGenerator of kind STS without its spec", GeneratorSTSSessionToken,
			genv1alpha1.GeneratorSpec{}, nil, "spec.generator.stsSessionTokenSpec"},
		{"a kind no provider serves", GeneratorPassword, genv1alpha1.GeneratorSpec{PasswordSpec: &genv1alpha1.PasswordSpec{}}, nil, "spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := GeneratorStoreFor(tc.kind, tc.spec)
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
			if got := gs.Spec.Provider.AWS; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("store aws = %+v, want %+v", got, tc.want)
			}
			if name, _ := provider.SelectedName(gs.Spec.Provider); name != awsprovider.Name {
				t.Fatalf("store provider = %q, want aws", name)
			}
			if gs.Request.Kind != tc.kind || gs.Request.Spec == nil {
				t.Fatalf("request = %+v", gs.Request)
			}
			// The store holds a copy: the generator object is not aliased.
			if tc.kind == GeneratorECRAuthorizationToken && gs.Request.Spec == any(tc.spec.ECRAuthorizationTokenSpec) {
				t.Fatal("the request aliases the generator's spec")
			}
		})
	}
}

// TestGeneratorCredentialsPassTheStoreRules: the store a generator becomes
// passes provider.Admit exactly as a SecretStore in its namespace (or, for a
// ClusterGenerator, a ClusterSecretStore) would.
func TestGeneratorCredentialsPassTheStoreRules(t *testing.T) {
	other := "other"
	foreign := esv1.AWSAuth{SecretRef: &esv1.AWSAuthSecretRef{
		AccessKeyID:     esv1.SecretKeySelector{Name: "creds", Key: "id", Namespace: &other},
		SecretAccessKey: esv1.SecretKeySelector{Name: "creds", Key: "secret"},
	}}
	local := esv1.AWSAuth{SecretRef: &esv1.AWSAuthSecretRef{
		AccessKeyID:     esv1.SecretKeySelector{Name: "creds", Key: "id"},
		SecretAccessKey: esv1.SecretKeySelector{Name: "creds", Key: "secret"},
	}}
	grantAWS := provider.Policy{AmbientIdentities: []provider.IdentityGrant{{Identity: provider.IdentityAWS, Namespace: "team-a"}}}
	for _, tc := range []struct {
		name    string
		cluster bool
		auth    esv1.AWSAuth
		policy  provider.Policy
		want    error
		message string
	}{
		{name: "namespaced without auth: not the operator's AWS identity", auth: esv1.AWSAuth{}, want: provider.ErrOperatorIdentity,
			message: "spec.auth names neither secretRef nor jwt"},
		{name: "namespaced without auth, granted for its namespace", auth: esv1.AWSAuth{}, policy: grantAWS},
		{name: "namespaced with a secretRef in its namespace", auth: local},
		{name: "namespaced with a secretRef in another namespace", auth: foreign, want: provider.ErrInvalidConfig,
			message: `namespace "other"`},
		{name: "ClusterGenerator without auth: the platform's choice, as a ClusterSecretStore", cluster: true, auth: esv1.AWSAuth{}},
		{name: "ClusterGenerator naming another namespace", cluster: true, auth: foreign},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := GeneratorStoreFor(GeneratorECRAuthorizationToken, genv1alpha1.GeneratorSpec{
				ECRAuthorizationTokenSpec: &genv1alpha1.ECRAuthorizationTokenSpec{Region: "eu-west-1", Auth: tc.auth},
			})
			if err != nil {
				t.Fatal(err)
			}
			store := generatorStoreObject(GeneratorECRAuthorizationToken, "ecr-gen", "team-a", tc.cluster, gs.Spec)
			if store.IsCluster() != tc.cluster {
				t.Fatalf("IsCluster = %v", store.IsCluster())
			}
			_, err = provider.Admit(&awsprovider.Provider{}, provider.Options{Store: store, Namespace: "team-a", Policy: tc.policy})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Admit: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Admit = %v, want %v", err, tc.want)
			}
			e := generatorProviderError("spec.dataFrom[0].sourceRef.generatorRef", "ECRAuthorizationToken ecr-gen", gs.Prefix, err)
			if !strings.Contains(e.Error(), tc.message) || strings.Contains(e.Error(), "spec.provider.aws") {
				t.Fatalf("message = %q, want %q in the generator's words", e.Error(), tc.message)
			}
		})
	}
}

func TestGeneratorProviderErrorReasons(t *testing.T) {
	for _, tc := range []struct {
		err    error
		reason string
	}{
		{fmt.Errorf("x: %w", provider.ErrOperatorIdentity), ReasonOperatorIdentityNotAllowed},
		{fmt.Errorf("%w: spec.provider.aws.region is required", provider.ErrInvalidConfig), ReasonInvalidGeneratorSpec},
		{fmt.Errorf("%w: no such kind", provider.ErrNotSupported), ReasonGeneratorNotSupported},
		{fmt.Errorf("%w: refused", provider.ErrUnauthenticated), ReasonUnauthenticated},
		{fmt.Errorf("%w: denied", provider.ErrForbidden), ReasonForbidden},
		{fmt.Errorf("%w: down", provider.ErrUnreachable), ReasonUnreachable},
		{&provider.ThrottledError{Err: errors.New("slow down")}, ReasonThrottled},
		{fmt.Errorf("%w: odd", provider.ErrBadResponse), ReasonBadResponse},
		{errors.New("something else"), ReasonProviderError},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			e := generatorProviderError("f", "ECRAuthorizationToken g", "spec.provider.aws.", tc.err)
			if e.Reason != tc.reason {
				t.Fatalf("reason = %s, want %s", e.Reason, tc.reason)
			}
			if !strings.HasPrefix(e.Error(), "f: ECRAuthorizationToken g: ") {
				t.Fatalf("message %q does not name the field and the generator", e.Error())
			}
		})
	}
}

func TestVaultDynamicSecretGeneratorStore(t *testing.T) {
	raw := func(s string) genv1alpha1.GeneratorSpec {
		return genv1alpha1.GeneratorSpec{VaultDynamicSecretSpec: &apiextensionsv1.JSON{Raw: []byte(s)}}
	}
	for _, tc := range []struct {
		name    string
		spec    genv1alpha1.GeneratorSpec
		wantErr string
		// admit is Admit's sentinel for a namespaced generator; nil admits.
		admit error
	}{
		{name: "token from a Secret of the namespace", spec: raw(`{"path": "auth/token/create", "method": "POST", "resultType": "Auth",
			"provider": {"server": "https://vault:8200", "auth": {"tokenSecretRef": {"name": "t", "key": "token"}}}}`)},
		{name: "kubernetes auth without serviceAccountRef: the operator's own token", spec: raw(`{"path": "pki/issue/x", "method": "POST",
			"provider": {"server": "https://vault:8200", "auth": {"kubernetes": {"mountPath": "kubernetes", "role": "r"}}}}`), admit: provider.ErrOperatorIdentity},
		{name: "a token Secret in another namespace", spec: raw(`{"path": "x",
			"provider": {"server": "https://vault:8200", "auth": {"tokenSecretRef": {"name": "t", "key": "token", "namespace": "other"}}}}`), admit: provider.ErrInvalidConfig},
		{name: "no path", spec: raw(`{"provider": {"server": "https://vault:8200"}}`), wantErr: "spec.path"},
		{name: "unknown field", spec: raw(`{"path": "x", "parameter": {}, "provider": {"server": "https://vault:8200"}}`), wantErr: "spec"},
		{name: "ClusterGenerator without its spec", spec: genv1alpha1.GeneratorSpec{}, wantErr: "spec.generator.vaultDynamicSecretSpec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs, err := GeneratorStoreFor(GeneratorVaultDynamicSecret, tc.spec)
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
			if name, _ := provider.SelectedName(gs.Spec.Provider); name != "vault" {
				t.Fatalf("store provider = %q, want vault", name)
			}
			store := generatorStoreObject(GeneratorVaultDynamicSecret, "g", "team-a", false, gs.Spec)
			_, err = provider.Admit(vault.New(), provider.Options{Store: store, Namespace: "team-a"})
			if (tc.admit == nil) != (err == nil) || (tc.admit != nil && !errors.Is(err, tc.admit)) {
				t.Fatalf("Admit = %v, want %v", err, tc.admit)
			}
			// A ClusterGenerator with the same spec is admitted as a ClusterSecretStore.
			cluster := generatorStoreObject(GeneratorVaultDynamicSecret, "g", "team-a", true, gs.Spec)
			if _, err := provider.Admit(vault.New(), provider.Options{Store: cluster, Namespace: "team-a"}); err != nil {
				t.Fatalf("Admit (ClusterGenerator) = %v", err)
			}
		})
	}
}
