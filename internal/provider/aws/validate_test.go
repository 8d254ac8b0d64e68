package aws_test

import (
	"errors"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	awsprovider "github.com/keyferry/keyferry/internal/provider/aws"
)

func TestValidateSpec(t *testing.T) {
	valid := func(mutate func(*esv1.AWSProvider)) esv1.AWSProvider {
		spec := esv1.AWSProvider{Service: esv1.AWSServiceSecretsManager, Region: region, Auth: secretRefAuth()}
		if mutate != nil {
			mutate(&spec)
		}
		return spec
	}
	tests := []struct {
		name    string
		spec    esv1.AWSProvider
		want    error
		message string
	}{
		{name: "Secrets Manager", spec: valid(nil)},
		{name: "Parameter Store", spec: valid(func(s *esv1.AWSProvider) { s.Service = esv1.AWSServiceParameterStore })},
		{name: "default credential chain", spec: valid(func(s *esv1.AWSProvider) { s.Auth = esv1.AWSAuth{} })},
		{name: "jwt", spec: valid(func(s *esv1.AWSProvider) {
			s.Auth = esv1.AWSAuth{JWTAuth: &esv1.AWSJWTAuth{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa"}}}
		})},
		{name: "roles, session tags", spec: valid(func(s *esv1.AWSProvider) {
			s.Role, s.AdditionalRoles, s.ExternalID = "team-b", []string{"hop"}, "ext"
			s.SessionTagsPolicy, s.CustomSessionTags = "Custom", map[string]string{"env": "prod"}
		})},
		{name: "CertificateManager is not supported",
			spec: valid(func(s *esv1.AWSProvider) { s.Service = esv1.AWSServiceCertificateManager }),
			want: provider.ErrNotSupported, message: "CertificateManager"},
		{name: "service is required", spec: valid(func(s *esv1.AWSProvider) { s.Service = "" }),
			want: provider.ErrInvalidConfig, message: "service"},
		{name: "unknown service", spec: valid(func(s *esv1.AWSProvider) { s.Service = "KMS" }),
			want: provider.ErrInvalidConfig, message: "KMS"},
		{name: "region is required", spec: valid(func(s *esv1.AWSProvider) { s.Region = "" }),
			want: provider.ErrInvalidConfig, message: "region"},
		{name: "jwt needs a service account",
			spec: valid(func(s *esv1.AWSProvider) { s.Auth = esv1.AWSAuth{JWTAuth: &esv1.AWSJWTAuth{}} }),
			want: provider.ErrInvalidConfig, message: "serviceAccountRef"},
		{name: "secretRef needs both keys",
			spec: valid(func(s *esv1.AWSProvider) { s.Auth.SecretRef.SecretAccessKey = esv1.SecretKeySelector{} }),
			want: provider.ErrInvalidConfig, message: "secretAccessKeySecretRef"},
		{name: "session token needs name and key",
			spec: valid(func(s *esv1.AWSProvider) { s.Auth.SecretRef.SessionToken = &esv1.SecretKeySelector{Name: "x"} }),
			want: provider.ErrInvalidConfig, message: "sessionTokenSecretRef"},
		{name: "empty additional role",
			spec: valid(func(s *esv1.AWSProvider) { s.AdditionalRoles = []string{""} }),
			want: provider.ErrInvalidConfig, message: "additionalRoles[0]"},
		{name: "unknown session tags policy",
			spec: valid(func(s *esv1.AWSProvider) { s.SessionTagsPolicy = "All" }),
			want: provider.ErrInvalidConfig, message: "sessionTagsPolicy"},
		{name: "reserved custom session tag",
			spec: valid(func(s *esv1.AWSProvider) { s.CustomSessionTags = map[string]string{"esoStoreName": "x"} }),
			want: provider.ErrInvalidConfig, message: "esoStoreName"},
		{name: "session tag without a key",
			spec: valid(func(s *esv1.AWSProvider) { s.SessionTags = []*esv1.AWSTag{{Value: "v"}} }),
			want: provider.ErrInvalidConfig, message: "sessionTags[0]"},
	}
	p := awsprovider.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.ValidateSpec(store(tt.spec))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidateSpec = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("ValidateSpec = %v, want %v mentioning %q", err, tt.want, tt.message)
			}
		})
	}

	if err := p.ValidateSpec(provider.Store{Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{}}}); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Errorf("ValidateSpec without spec.provider.aws = %v, want ErrInvalidConfig", err)
	}
}

func TestShareable(t *testing.T) {
	other := "creds"
	cluster := func(spec esv1.AWSProvider) provider.Store {
		st := store(spec)
		st.Kind, st.Namespace = esv1.ClusterSecretStoreKind, ""
		return st
	}
	fixedRef := secretRefAuth()
	fixedRef.SecretRef.AccessKeyID.Namespace = &other
	fixedRef.SecretRef.SecretAccessKey.Namespace = &other
	base := esv1.AWSProvider{Service: esv1.AWSServiceSecretsManager, Region: region}
	with := func(mutate func(*esv1.AWSProvider)) esv1.AWSProvider {
		spec := base
		mutate(&spec)
		return spec
	}
	tests := []struct {
		name  string
		store provider.Store
		want  bool
	}{
		{"operator's credentials", store(base), true},
		{"operator's credentials and a role", store(with(func(s *esv1.AWSProvider) { s.Role = "r" })), true},
		{"session tags name the store", store(with(func(s *esv1.AWSProvider) { s.SessionTagsPolicy = "Simple" })), false},
		{"credentials in the store's namespace", store(with(func(s *esv1.AWSProvider) { s.Auth = secretRefAuth() })), false},
		{"cluster store, credentials in the user's namespace", cluster(with(func(s *esv1.AWSProvider) { s.Auth = secretRefAuth() })), false},
		{"cluster store, credentials in a named namespace", cluster(with(func(s *esv1.AWSProvider) { s.Auth = fixedRef })), true},
		{"service account in the user's namespace", cluster(with(func(s *esv1.AWSProvider) {
			s.Auth = esv1.AWSAuth{JWTAuth: &esv1.AWSJWTAuth{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa"}}}
		})), false},
		{"cluster store, service account in a named namespace", cluster(with(func(s *esv1.AWSProvider) {
			s.Auth = esv1.AWSAuth{JWTAuth: &esv1.AWSJWTAuth{ServiceAccountRef: &esv1.ServiceAccountSelector{Name: "sa", Namespace: &other}}}
		})), true},
		{"invalid spec", store(with(func(s *esv1.AWSProvider) { s.Region = "" })), false},
	}
	p := &awsprovider.Provider{}
	for _, tt := range tests {
		if got := p.Shareable(tt.store); got != tt.want {
			t.Errorf("%s: Shareable = %v, want %v", tt.name, got, tt.want)
		}
	}
}
