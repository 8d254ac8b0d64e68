package main

import (
	"strings"
	"testing"
)

const crd = `---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  annotations:
    controller-gen.kubebuilder.io/version: v0.23.0
  name: widgets.example.com
spec:
  group: example.com
  names:
    kind: Widget
  versions:
  - name: v1
    schema:
      openAPIV3Schema:
        description: 'A template such as {{ .name }} stays text.'
`

func TestTemplate(t *testing.T) {
	got, err := Template("example.com_widgets.yaml", []byte(crd))
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{
		"{{- if and .Values.installCRDs .Values.crds.createWidget }}\n",
		"  name: widgets.example.com\n",
		"    controller-gen.kubebuilder.io/version: v0.23.0\n",
		`{{- with include "keyferry.crdAnnotations" . }}`,
		`description: 'A template such as {{ "{{" }} .name }} stays text.'`,
		"spec:\n  group: example.com\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("template lacks %q:\n%s", want, s)
		}
	}
	if !strings.HasSuffix(s, "{{- end }}\n") {
		t.Errorf("template does not close its if:\n%s", s)
	}
}

func TestTemplateRefuses(t *testing.T) {
	cases := map[string]struct{ src, msg string }{
		"not a CRD":              {"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n", "not an apiextensions.k8s.io/v1 CustomResourceDefinition"},
		"metadata it would drop": {strings.Replace(crd, "  name: widgets", "  labels:\n    a: b\n  name: widgets", 1), "metadata.labels is not carried"},
		"no kind":                {strings.Replace(crd, "    kind: Widget\n", "", 1), "spec.names.kind is empty"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Template("x.yaml", []byte(tc.src))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want %q", err, tc.msg)
			}
		})
	}
}

func TestTemplateOfAGenerator(t *testing.T) {
	// The namespaced generators share crds.createGenerators;
	// ClusterGenerator has its own crds.createClusterGenerator.
	for kind, want := range map[string]string{
		"Password":         "{{- if and .Values.installCRDs .Values.crds.createGenerators }}\n",
		"ClusterGenerator": "{{- if and .Values.installCRDs .Values.crds.createClusterGenerator }}\n",
	} {
		src := strings.NewReplacer("group: example.com", "group: "+generatorsGroup, "kind: Widget", "kind: "+kind).Replace(crd)
		got, err := Template("generators.yaml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(got), want) {
			t.Errorf("%s: template lacks %q:\n%s", kind, want, got)
		}
	}
}

func TestTemplateServesV1Beta1OnRequest(t *testing.T) {
	const versions = `  versions:
  - name: v1
    schema:
      openAPIV3Schema:
        properties:
          served: false
    served: true
    storage: true
  - deprecated: true
    name: v1beta1
    schema:
      openAPIV3Schema:
        type: object
    served: false
    storage: false
`
	src := strings.NewReplacer("group: example.com", "group: "+esoGroup).Replace(crd[:strings.Index(crd, "  versions:")]) + versions
	got, err := Template("external-secrets.io_widgets.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := "    name: v1beta1\n    schema:\n      openAPIV3Schema:\n        type: object\n    served: {{ .Values.crds.unsafeServeV1Beta1 }}\n    storage: false\n"
	if !strings.Contains(string(got), want) || !strings.Contains(string(got), "    served: true\n    storage: true\n") {
		t.Fatalf("v1beta1 is not served on request, or v1 changed:\n%s", got)
	}
	// Another group's v1beta1 is left as generated.
	other, err := Template("example.com_widgets.yaml", []byte(strings.Replace(src, "group: "+esoGroup, "group: example.com", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(other), "unsafeServeV1Beta1") {
		t.Fatal("a v1beta1 outside ESO's group is served on request")
	}
	if _, err := Template("x.yaml", []byte(strings.Replace(src, "\n    served: false\n", "\n    served: true\n", 1))); err == nil {
		t.Fatal("a v1beta1 entry without served: false was accepted")
	}
}
