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
