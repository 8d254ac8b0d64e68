package engine

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/render"
)

// TestPreview checks that Preview gives the Secret a sync would write:
// the template's merge rules, the target's type and metadata, and the
// same key checks and reasons.
func TestPreview(t *testing.T) {
	fetched := map[string][]byte{"user": []byte("app"), "pass": []byte("pw")}
	base := Plan{
		Owner:  Owner{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Namespace: "ns", Name: "es"},
		Target: Target{Name: "out", CreationPolicy: esv1.CreatePolicyOwner, SetOwnerReference: true, ManagedBy: "ExternalSecret/es"},
	}
	withTemplate := func(tpl *Template, typ corev1.SecretType) Plan {
		p := base
		p.Template = tpl
		p.Target.Type = typ
		return p
	}
	tests := []struct {
		name       string
		plan       Plan
		wantData   map[string]string
		wantLabels map[string]string
		wantType   corev1.SecretType
		wantReason string
	}{
		{name: "no template keeps the fetched data", plan: base, wantData: map[string]string{"user": "app", "pass": "pw"}, wantType: corev1.SecretTypeOpaque},
		{name: "template replaces the data", plan: withTemplate(&Template{Items: []render.Item{{Key: "dsn", Template: "{{ .user }}:{{ .pass }}"}}}, corev1.SecretTypeBasicAuth),
			wantData: map[string]string{"dsn": "app:pw"}, wantType: corev1.SecretTypeBasicAuth},
		{name: "mergePolicy Merge keeps the fetched data", plan: withTemplate(&Template{MergeFetched: true, Items: []render.Item{{Key: "dsn", Template: "{{ .user }}"}}}, ""),
			wantData: map[string]string{"user": "app", "pass": "pw", "dsn": "app"}, wantType: corev1.SecretTypeOpaque},
		{name: "a metadata-only template keeps the data", plan: withTemplate(&Template{Items: []render.Item{{Key: "app", Template: "{{ .user }}", Target: render.TargetLabels}}}, ""),
			wantData: map[string]string{"user": "app", "pass": "pw"}, wantLabels: map[string]string{"app": "app"}, wantType: corev1.SecretTypeOpaque},
		{name: "an invalid rendered key", plan: withTemplate(&Template{Items: []render.Item{{Template: "{{ .user }}/x: v", KeysAndValues: true}}}, ""), wantReason: ReasonInvalidSpec},
		{name: "a failing template", plan: withTemplate(&Template{Items: []render.Item{{Key: "k", Template: "{{ .nope }}"}}}, ""), wantReason: ReasonTemplateFailed},
		{name: "templateFrom without a reader's object", plan: withTemplate(&Template{From: []TemplateFrom{{ConfigMap: "missing", Items: []TemplateFromItem{{Key: "a"}}}}}, ""), wantReason: ReasonTemplateFailed},
	}
	e := &Engine{APIReader: emptyReader{}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := e.Preview(context.Background(), tt.plan, fetched)
			if tt.wantReason != "" {
				var ee *Error
				if !errors.As(err, &ee) || ee.Reason != tt.wantReason {
					t.Fatalf("error = %v, want reason %s", err, tt.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Name != "out" || s.Namespace != "ns" || s.Type != tt.wantType || len(s.OwnerReferences) != 1 {
				t.Fatalf("got %s/%s type %s owners %v", s.Namespace, s.Name, s.Type, s.OwnerReferences)
			}
			if len(s.Data) != len(tt.wantData) {
				t.Fatalf("data keys %v, want %v", sortedKeys(s.Data), tt.wantData)
			}
			for k, v := range tt.wantData {
				if string(s.Data[k]) != v {
					t.Fatalf("data[%s] = %q, want %q", k, s.Data[k], v)
				}
			}
			for k, v := range tt.wantLabels {
				if s.Labels[k] != v {
					t.Fatalf("label %s = %q, want %q", k, s.Labels[k], v)
				}
			}
			if s.Annotations[AnnotationDataHash] != Hash(tt.plan.Target.Type, s.Data, tt.wantLabels, nil) {
				t.Fatal("the data-hash annotation is not the hash of the content")
			}
		})
	}
	if string(fetched["user"]) != "app" || len(fetched) != 2 {
		t.Fatal("Preview changed its input")
	}
}

// emptyReader is a client.Reader that holds no object.
type emptyReader struct{}

func (emptyReader) Get(_ context.Context, key client.ObjectKey, _ client.Object, _ ...client.GetOption) error {
	return apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, key.Name)
}

func (emptyReader) List(context.Context, client.ObjectList, ...client.ListOption) error { return nil }
