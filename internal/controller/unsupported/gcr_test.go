package unsupported

import "testing"

// GCRAccessToken runs through the gcpsm provider (docs/generators.md): it
// is implemented, no longer reported Unsupported, and so is a
// ClusterGenerator of that kind.
func TestGCRAccessTokenIsImplemented(t *testing.T) {
	for _, k := range Kinds() {
		if k.Kind == "GCRAccessToken" {
			t.Fatal("GCRAccessToken is still in the unsupported kinds")
		}
	}
	found := false
	for _, k := range Implemented() {
		found = found || (k.Kind == "GCRAccessToken" && k.Implemented && k.Namespaced)
	}
	if !found {
		t.Fatal("GCRAccessToken is not an implemented namespaced kind")
	}
	if !implementedGenerator(object(t, "kind: ClusterGenerator\nspec: {kind: GCRAccessToken, generator: {gcrAccessTokenSpec: {projectID: p1, auth: {}}}}")) {
		t.Fatal("a ClusterGenerator of GCRAccessToken is not implemented")
	}
}
