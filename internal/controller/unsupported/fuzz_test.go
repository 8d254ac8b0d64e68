package unsupported

import (
	"encoding/json"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// FuzzObjectChecks feeds arbitrary objects (what a user, or another
// controller writing status, may store) to the checks and to
// setUnsupported: nothing panics, and setting the condition twice writes
// once.
func FuzzObjectChecks(f *testing.F) {
	f.Add(`{"kind":"PushSecret","spec":{"secretStoreRefs":[{"name":"a"},{"name":"b","kind":"ClusterSecretStore"}]}}`, "x")
	f.Add(`{"kind":"ClusterPushSecret","spec":{"pushSecretSpec":{"secretStoreRefs":[{"labelSelector":{}}]}}}`, "")
	f.Add(`{"kind":"Fake","spec":{"controller":"eso"},"status":{"conditions":[{"type":"Ready","status":"True"},3,{"type":"Other"}]}}`, "eso")
	f.Add(`{"kind":"ClusterGenerator","spec":{"generator":{"fakeSpec":{"controller":7}}},"status":"x"}`, "")
	f.Add(`{"status":{"conditions":[{"type":"Ready","status":"False","reason":"Unsupported","message":"m","lastTransitionTime":{"a":[1]}}]}}`, "")
	f.Fuzz(func(t *testing.T, doc, class string) {
		obj := &unstructured.Unstructured{}
		if err := json.Unmarshal([]byte(doc), &obj.Object); err != nil || obj.Object == nil {
			return
		}
		_ = generatorOfAnotherClass(obj, class)
		refs, _ := pushSecretStores(obj)
		for i := range refs {
			refs[i].Found, refs[i].Class = i%2 == 0, class
		}
		_ = storesOfAnotherClass(refs, class)
		now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		setUnsupported(obj, "m", now)
		if setUnsupported(obj, "m", now.Add(time.Hour)) {
			t.Fatalf("a second setUnsupported wrote again: %v", obj.Object["status"])
		}
	})
}
