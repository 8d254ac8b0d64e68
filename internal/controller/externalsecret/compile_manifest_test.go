package externalsecret

import (
	"errors"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
)

func withManifest(apiVersion, kind string) func(*esv1.ExternalSecretSpec) {
	return func(s *esv1.ExternalSecretSpec) {
		s.Target.Manifest = &esv1.ManifestReference{APIVersion: apiVersion, Kind: kind}
	}
}

func TestManifestChecks(t *testing.T) {
	on := CompileOptions{AllowGenericTargets: true}
	tests := []struct {
		name   string
		check  manifestCheck
		spec   func(*esv1.ExternalSecretSpec)
		opts   CompileOptions
		reason string // "" when the check passes
		msg    string
	}{
		{"genericTargetsAllowed refuses without the flag", genericTargetsAllowed, withManifest("v1", "ConfigMap"), CompileOptions{},
			engine.ReasonGenericTargetsDisabled, "--unsafe-allow-generic-targets"},
		{"genericTargetsAllowed names the chart value", genericTargetsAllowed, withManifest("v1", "ConfigMap"), CompileOptions{},
			engine.ReasonGenericTargetsDisabled, "genericTargets.enabled"},
		{"genericTargetsAllowed passes with the flag", genericTargetsAllowed, withManifest("v1", "ConfigMap"), on, "", ""},
		{"manifestNamesAKind accepts v1 ConfigMap", manifestNamesAKind, withManifest("v1", "ConfigMap"), on, "", ""},
		{"manifestNamesAKind accepts a custom resource", manifestNamesAKind, withManifest("config.example.com/v1", "AppConfig"), on, "", ""},
		{"manifestNamesAKind refuses an empty kind", manifestNamesAKind, withManifest("config.example.com/v1", ""), on,
			engine.ReasonInvalidSpec, "both apiVersion and kind"},
		{"manifestNamesAKind refuses an empty apiVersion", manifestNamesAKind, withManifest("", "AppConfig"), on,
			engine.ReasonInvalidSpec, "both apiVersion and kind"},
		{"manifestNamesAKind refuses a malformed apiVersion", manifestNamesAKind, withManifest("a/b/c", "AppConfig"), on,
			engine.ReasonInvalidSpec, `apiVersion "a/b/c"`},
		{"manifestIsNotSecret refuses Secret as a manifest", manifestIsNotSecret, withManifest("v1", "Secret"), on,
			engine.ReasonInvalidSpec, "v1 Secret"},
		{"manifestIsNotSecret accepts a Secret kind of another group", manifestIsNotSecret, withManifest("example.com/v1", "Secret"), on, "", ""},
		{"manifestImmutableOnlyConfigMap accepts an immutable ConfigMap", manifestImmutableOnlyConfigMap, func(s *esv1.ExternalSecretSpec) {
			withManifest("v1", "ConfigMap")(s)
			s.Target.Immutable = true
		}, on, "", ""},
		{"manifestImmutableOnlyConfigMap refuses an immutable custom resource", manifestImmutableOnlyConfigMap, func(s *esv1.ExternalSecretSpec) {
			withManifest("config.example.com/v1", "AppConfig")(s)
			s.Target.Immutable = true
		}, on, engine.ReasonInvalidSpec, "spec.target.immutable"},
		{"manifestNeverMerges accepts Owner", manifestNeverMerges, withManifest("v1", "ConfigMap"), on, "", ""},
		{"manifestNeverMerges refuses Merge", manifestNeverMerges, func(s *esv1.ExternalSecretSpec) {
			withManifest("v1", "ConfigMap")(s)
			s.Target.CreationPolicy = esv1.CreatePolicyMerge
		}, on, engine.ReasonInvalidSpec, "creationPolicy Merge"},
		{"manifestNeverMerges refuses CreateOrMerge", manifestNeverMerges, func(s *esv1.ExternalSecretSpec) {
			withManifest("v1", "ConfigMap")(s)
			s.Target.CreationPolicy = esv1.CreatePolicyCreateOrMerge
		}, on, engine.ReasonInvalidSpec, "creationPolicy CreateOrMerge"},
		{"manifestHasNoGenerators accepts store sources", manifestHasNoGenerators, withManifest("v1", "ConfigMap"), on, "", ""},
		{"manifestHasNoGenerators refuses a generatorRef", manifestHasNoGenerators, func(s *esv1.ExternalSecretSpec) {
			withManifest("v1", "ConfigMap")(s)
			s.DataFrom = []esv1.ExternalSecretDataFromRemoteRef{{SourceRef: &esv1.StoreSourceRef{GeneratorRef: &esv1.GeneratorRef{Kind: "Password", Name: "pw"}}}}
		}, on, engine.ReasonInvalidSpec, "spec.dataFrom[0].sourceRef.generatorRef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.check(es(tt.spec), tt.opts)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if err.Reason != tt.reason || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %s: %v; want %s containing %q", err.Reason, err, tt.reason, tt.msg)
			}
		})
	}
}

func TestCompileManifestTarget(t *testing.T) {
	t.Run("refused by default", func(t *testing.T) {
		_, err := Compile(es(withManifest("v1", "ConfigMap")))
		var ee *engine.Error
		if !errors.As(err, &ee) || ee.Reason != engine.ReasonGenericTargetsDisabled {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("ConfigMap with the flag", func(t *testing.T) {
		p, err := CompileWith(es(func(s *esv1.ExternalSecretSpec) {
			withManifest("v1", "ConfigMap")(s)
			s.Target.Name = "app-config"
			s.Target.Template = &esv1.ExternalSecretTemplate{Type: "kubernetes.io/tls", Data: map[string]string{"a": "{{ .k }}"}}
		}), CompileOptions{AllowGenericTargets: true})
		if err != nil {
			t.Fatal(err)
		}
		if !p.Target.Manifest.IsConfigMap() || p.Target.Kind() != "ConfigMap" || p.Target.Name != "app-config" {
			t.Errorf("target = %+v", p.Target)
		}
		if p.Target.Type != "" {
			t.Errorf("template.type %q reached a ConfigMap target; ESO ignores it", p.Target.Type)
		}
		if !p.Target.SetOwnerReference {
			t.Error("creationPolicy Owner (the default) sets no ownerReference")
		}
	})
	t.Run("a Secret target is unchanged by the flag", func(t *testing.T) {
		p, err := CompileWith(es(nil), CompileOptions{AllowGenericTargets: true})
		if err != nil || p.Target.Manifest != nil || p.Target.Kind() != "Secret" {
			t.Fatalf("plan = %+v, err = %v", p.Target, err)
		}
	})
}

func TestTemplateTarget(t *testing.T) {
	cr := &engine.Manifest{APIVersion: "config.example.com/v1", Kind: "AppConfig"}
	cm := &engine.Manifest{APIVersion: "v1", Kind: "ConfigMap"}
	tests := []struct {
		name     string
		manifest *engine.Manifest
		raw      string
		want     string // "": refused
		msg      string
	}{
		{"empty is Data", nil, "", "Data", ""},
		{"Labels on a Secret", nil, "Labels", "Labels", ""},
		{"a path on a Secret", nil, "spec.database", "", "use Data, Labels or Annotations"},
		{"a path on a ConfigMap", cm, "spec.database", "", "use Data, Labels or Annotations"},
		{"a path on a custom resource", cr, "spec.database", "spec.database", ""},
		{"an indexed path", cr, "spec.rules[0].from[0].source.notRemoteIpBlocks", "spec.rules[0].from[0].source.notRemoteIpBlocks", ""},
		{"data in lower case", cr, "data", "Data", ""},
		{"annotations in lower case", cr, "annotations", "Annotations", ""},
		{"spec alone", cr, "spec", "spec", ""},
		{"a leading index", cr, "[0].foo", "", "must start with a key"},
		{"an empty segment", cr, "spec..x", "", "empty segment"},
		{"metadata", cr, "metadata.labels", "", "apiVersion, kind and metadata"},
		{"kind", cr, "kind", "", "apiVersion, kind and metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := templateTarget(tt.manifest, 2, tt.raw)
			if tt.want != "" {
				if err != nil || string(got) != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			var ee *engine.Error
			if !errors.As(err, &ee) || ee.Reason != engine.ReasonInvalidSpec || !strings.Contains(err.Error(), tt.msg) || !strings.Contains(err.Error(), "templateFrom[2]") {
				t.Fatalf("err = %v; want InvalidSpec naming templateFrom[2] and %q", err, tt.msg)
			}
		})
	}
}
