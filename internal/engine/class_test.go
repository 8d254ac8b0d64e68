package engine

import (
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

func TestHandlesStore(t *testing.T) {
	tests := []struct {
		name       string
		class      string
		storeClass string
		want       bool
	}{
		{"no class on either side", "", "", true},
		{"store without class is served by a classed keyferry", "keyferry", "", true},
		{"same class", "keyferry", "keyferry", true},
		{"store of ESO's default class, keyferry without class", "", "default", false},
		{"store of another class", "keyferry", "default", false},
		{"class names are case sensitive", "keyferry", "Keyferry", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HandlesStore(tt.class, &esv1.SecretStoreSpec{Controller: tt.storeClass}); got != tt.want {
				t.Errorf("HandlesStore(%q, controller=%q) = %v, want %v", tt.class, tt.storeClass, got, tt.want)
			}
		})
	}
}

func TestExternalSecretStores(t *testing.T) {
	es := &esv1.ExternalSecret{Spec: esv1.ExternalSecretSpec{
		SecretStoreRef: esv1.SecretStoreRef{Name: "main"},
		Data: []esv1.ExternalSecretData{
			{SecretKey: "a", SourceRef: &esv1.StoreSourceRef{SecretStoreRef: esv1.SecretStoreRef{Name: "shared", Kind: esv1.ClusterSecretStoreKind}}},
			{SecretKey: "b", SourceRef: &esv1.StoreSourceRef{SecretStoreRef: esv1.SecretStoreRef{Name: "main", Kind: esv1.SecretStoreKind}}},
		},
	}}
	got := ExternalSecretStores(es)
	want := []StoreRef{{Kind: esv1.SecretStoreKind, Name: "main"}, {Kind: esv1.ClusterSecretStoreKind, Name: "shared"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("ExternalSecretStores = %v, want %v", got, want)
	}
}
