package operator

import (
	"encoding/json"
	"strings"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/kube"
)

const externalSecretJSON = `{
  "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
  "metadata": {"name": "app-%s", "namespace": "team-a", "labels": {"team": "a"},
    "managedFields": [{"manager": "kubectl", "operation": "Apply"}]},
  "spec": {
    "refreshInterval": "1h", "refreshPolicy": "Periodic",
    "secretStoreRef": {"name": "vault", "kind": "SecretStore"},
    "target": {"name": "app-%s", "creationPolicy": "Owner", "deletionPolicy": "Retain"},
    "data": [{"secretKey": "password", "remoteRef": {"key": "app/%s", "conversionStrategy": "Default", "decodingStrategy": "None", "metadataPolicy": "None"},
      "sourceRef": {"storeRef": {"name": "aws", "kind": "ClusterSecretStore"}}}],
    "dataFrom": [{"extract": {"key": "shared", "conversionStrategy": "Default"}},
      {"find": {"name": {"regexp": "^x"}, "conversionStrategy": "Default", "decodingStrategy": "Auto"}, "sourceRef": {"generatorRef": {"apiVersion": "generators.external-secrets.io/v1alpha1", "kind": "Password", "name": "pw"}}}]
  },
  "status": {"syncedResourceVersion": "1-abc", "binding": {"name": "app-%s"},
    "conditions": [{"type": "Ready", "status": "True", "reason": "SecretSynced", "message": "Secret was synced"}]}
}`

func decodeExternalSecret(t *testing.T, name string) *esv1.ExternalSecret {
	t.Helper()
	var es esv1.ExternalSecret
	if err := json.Unmarshal([]byte(strings.ReplaceAll(externalSecretJSON, "%s", name)), &es); err != nil {
		t.Fatal(err)
	}
	return &es
}

func same(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

// The cache's transform drops managedFields and changes no other value of
// an ExternalSecret; two ExternalSecrets then share the strings that
// repeat across them.
func TestInternedTransformKeepsExternalSecretsAndSharesRepeats(t *testing.T) {
	transform := compactedAfter(cache.TransformStripManagedFields())
	a, b := decodeExternalSecret(t, "one"), decodeExternalSecret(t, "two")
	wantA := a.DeepCopy()
	wantA.ManagedFields = nil
	for _, es := range []*esv1.ExternalSecret{a, b} {
		if _, err := transform(es); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(a, wantA) {
		t.Fatalf("transform changed the ExternalSecret:\n%+v\nwant\n%+v", a, wantA)
	}
	pairs := map[string][2]string{
		"apiVersion":          {a.APIVersion, b.APIVersion},
		"kind":                {a.Kind, b.Kind},
		"namespace":           {a.Namespace, b.Namespace},
		"store name":          {a.Spec.SecretStoreRef.Name, b.Spec.SecretStoreRef.Name},
		"store kind":          {a.Spec.SecretStoreRef.Kind, b.Spec.SecretStoreRef.Kind},
		"refresh policy":      {string(a.Spec.RefreshPolicy), string(b.Spec.RefreshPolicy)},
		"creation policy":     {string(a.Spec.Target.CreationPolicy), string(b.Spec.Target.CreationPolicy)},
		"deletion policy":     {string(a.Spec.Target.DeletionPolicy), string(b.Spec.Target.DeletionPolicy)},
		"conversion strategy": {string(a.Spec.Data[0].RemoteRef.ConversionStrategy), string(b.Spec.Data[0].RemoteRef.ConversionStrategy)},
		"decoding strategy":   {string(a.Spec.Data[0].RemoteRef.DecodingStrategy), string(b.Spec.Data[0].RemoteRef.DecodingStrategy)},
		"metadata policy":     {string(a.Spec.Data[0].RemoteRef.MetadataPolicy), string(b.Spec.Data[0].RemoteRef.MetadataPolicy)},
		"source store name":   {a.Spec.Data[0].SourceRef.SecretStoreRef.Name, b.Spec.Data[0].SourceRef.SecretStoreRef.Name},
		"extract strategy":    {string(a.Spec.DataFrom[0].Extract.ConversionStrategy), string(b.Spec.DataFrom[0].Extract.ConversionStrategy)},
		"find decoding":       {string(a.Spec.DataFrom[1].Find.DecodingStrategy), string(b.Spec.DataFrom[1].Find.DecodingStrategy)},
		"generator kind":      {a.Spec.DataFrom[1].SourceRef.GeneratorRef.Kind, b.Spec.DataFrom[1].SourceRef.GeneratorRef.Kind},
		"condition reason":    {a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason},
		"condition message":   {a.Status.Conditions[0].Message, b.Status.Conditions[0].Message},
	}
	for what, p := range pairs {
		if !same(p[0], p[1]) {
			t.Errorf("%s %q is not shared", what, p[0])
		}
	}
}

// Objects the transform does not intern pass through it unchanged, but for
// their managedFields; so do tombstones and objects it does not know.
func TestInternedTransformPassesOtherObjects(t *testing.T) {
	transform := compactedAfter(cache.TransformStripManagedFields())
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "n", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "m"}}}, Data: map[string]string{"k": "v"}}
	out, err := transform(cm)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.ConfigMap)
	if got.ManagedFields != nil || got.Data["k"] != "v" || got.Name != "c" {
		t.Fatalf("ConfigMap after the transform: %+v", got)
	}
	if out, err := transform("not an object"); err != nil || out != "not an object" {
		t.Fatalf("transform of a non-object = %v, %v", out, err)
	}
}

// The cache keeps a Secret's metadata and the digest of its values, not
// the values.
func TestCompactedTransformKeepsTheDigestOfASecretsValues(t *testing.T) {
	transform := compactedAfter(cache.TransformStripManagedFields())
	data := map[string][]byte{"password": []byte("canary-31c2")}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "n", Labels: map[string]string{"l": "v"}}, Data: data}
	if _, err := transform(s); err != nil {
		t.Fatal(err)
	}
	if d, ok := kube.CachedDataDigest(s); !ok || d != kube.DataDigest(data) || s.Data != nil || s.Labels["l"] != "v" {
		t.Fatalf("Secret after the transform: %+v", s)
	}
}

// The transform keeps an ExternalSecret's data entries in an array of
// their number, not in the room the JSON decoder grew for them.
func TestCompactedTransformKeepsSlicesExact(t *testing.T) {
	var es esv1.ExternalSecret
	doc := `{"spec": {"data": [{"secretKey": "a", "remoteRef": {"key": "x"}}, {"secretKey": "b", "remoteRef": {"key": "y"}}, {"secretKey": "c", "remoteRef": {"key": "z"}}]}}`
	if err := json.Unmarshal([]byte(doc), &es); err != nil {
		t.Fatal(err)
	}
	if cap(es.Spec.Data) == len(es.Spec.Data) {
		t.Skip("the decoder no longer over-allocates; nothing to check")
	}
	want := es.DeepCopy()
	if _, err := compactedAfter(cache.TransformStripManagedFields())(&es); err != nil {
		t.Fatal(err)
	}
	if cap(es.Spec.Data) != 3 || !equality.Semantic.DeepEqual(&es, want) {
		t.Fatalf("after the transform: cap %d, %+v; want cap 3 and %+v", cap(es.Spec.Data), es.Spec.Data, want.Spec.Data)
	}
}
