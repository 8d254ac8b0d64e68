package externalsecret

import (
	"errors"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
)

// A spec that would make keyferry write a credential the cluster honours is
// refused before anything is fetched, naming the field (GHSA-fq7h-9x26-6j22).
func TestCompileRefusesCredentialSecrets(t *testing.T) {
	tests := []struct {
		name  string
		ns    string
		spec  func(*esv1.ExternalSecretSpec)
		field string // "" compiles
	}{
		{name: "template type service-account-token", spec: func(s *esv1.ExternalSecretSpec) {
			s.Target.Template = &esv1.ExternalSecretTemplate{Type: "kubernetes.io/service-account-token"}
		}, field: "spec.target.template.type"},
		{name: "template annotation service-account.name", spec: func(s *esv1.ExternalSecretSpec) {
			s.Target.Template = &esv1.ExternalSecretTemplate{Metadata: esv1.ExternalSecretTemplateMetadata{Annotations: map[string]string{"kubernetes.io/service-account.name": "default"}}}
		}, field: `spec.target.template.metadata.annotations["kubernetes.io/service-account.name"]`},
		{name: "template annotation service-account.uid", spec: func(s *esv1.ExternalSecretSpec) {
			s.Target.Template = &esv1.ExternalSecretTemplate{Metadata: esv1.ExternalSecretTemplateMetadata{Annotations: map[string]string{"kubernetes.io/service-account.uid": "x"}}}
		}, field: `spec.target.template.metadata.annotations["kubernetes.io/service-account.uid"]`},
		{name: "bootstrap token type in kube-system", ns: "kube-system", spec: func(s *esv1.ExternalSecretSpec) {
			s.Target.Template = &esv1.ExternalSecretTemplate{Type: "bootstrap.kubernetes.io/token"}
		}, field: "spec.target.template.type"},
		{name: "bootstrap-token name in kube-system", ns: "kube-system", spec: func(s *esv1.ExternalSecretSpec) {
			s.Target.Name = "bootstrap-token-abcdef"
		}, field: "spec.target.name"},
		{name: "bootstrap token type elsewhere is inert", spec: func(s *esv1.ExternalSecretSpec) {
			s.Target.Template = &esv1.ExternalSecretTemplate{Type: "bootstrap.kubernetes.io/token"}
		}},
		{name: "other annotations are fine", spec: func(s *esv1.ExternalSecretSpec) {
			s.Target.Template = &esv1.ExternalSecretTemplate{Metadata: esv1.ExternalSecretTemplateMetadata{Annotations: map[string]string{"kubernetes.io/description": "x"}}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := es(tc.spec)
			if tc.ns != "" {
				e.Namespace = tc.ns
			}
			_, err := Compile(e)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ee *engine.Error
			if !errors.As(err, &ee) || ee.Reason != engine.ReasonInvalidSpec {
				t.Fatalf("want InvalidSpec, got %v", err)
			}
			if !strings.Contains(ee.Error(), tc.field) {
				t.Fatalf("message does not name %s: %v", tc.field, ee)
			}
		})
	}
}
