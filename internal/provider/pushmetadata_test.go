package provider

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodePushMetadata(t *testing.T) {
	const secretish = "s3cr3t-value"
	wrap := func(spec string) string {
		return `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":` + spec + `}`
	}
	for _, tt := range []struct {
		name, raw string
		// err is part of the message; empty: decodes.
		err   string
		label string
		list  []string
	}{
		{name: "empty: no envelope (callers treat empty metadata as none before)", raw: "", err: "metadata.apiVersion must be"},
		{name: "no spec", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata"}`},
		{name: "fields decoded", raw: wrap(`{"label":"a","list":["x","y"]}`), label: "a", list: []string{"x", "y"}},
		{name: "not an object", raw: `["` + secretish + `"]`, err: "metadata must be an object"},
		{name: "wrong apiVersion", raw: `{"apiVersion":"v1","kind":"PushSecretMetadata"}`, err: `metadata.apiVersion must be "kubernetes.external-secrets.io/v1alpha1"`},
		{name: "wrong kind", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"Secret"}`, err: `metadata.kind must be "PushSecretMetadata"`},
		{name: "unknown top-level field", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","label":"a"}`, err: `metadata has an unknown field "label"; ESO's PushSecretMetadata for Test has`},
		{name: "unknown spec field (matched exactly)", raw: wrap(`{"Label":"a"}`), err: `metadata.spec has an unknown field "Label"`},
		{name: "spec not an object", raw: wrap(`"` + secretish + `"`), err: "metadata.spec must be an object"},
		{name: "a field of the wrong type, never quoted", raw: wrap(`{"label":["` + secretish + `"]}`), err: "metadata.spec.label must be a string"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var label string
			var list []string
			err := DecodePushMetadata([]byte(tt.raw), "for Test",
				PushMetadataField{Name: "label", Into: &label, What: "a string"},
				PushMetadataField{Name: "list", Into: &list, What: "a list of strings"})
			if tt.err == "" {
				if err != nil || label != tt.label || strings.Join(list, ",") != strings.Join(tt.list, ",") {
					t.Fatalf("err %v, label %q, list %v; want %q, %v", err, label, list, tt.label, tt.list)
				}
				return
			}
			if !errors.Is(err, ErrInvalidPush) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v; want ErrInvalidPush with %q", err, tt.err)
			}
			if strings.Contains(err.Error(), secretish) {
				t.Fatalf("the error quotes the value: %v", err)
			}
		})
	}
}
