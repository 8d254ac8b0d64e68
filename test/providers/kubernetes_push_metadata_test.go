package providers

import (
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	kubeprovider "github.com/keyferry/keyferry/internal/provider/kubernetes"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// kubePushStore creates, for a PushSecret in ns, the ServiceAccount pusher
// with the Role of ESO's Kubernetes guide in remote, and returns a token
// Secret and the SecretStore k8s-store-remote-ns writing into remote
// through the test's API server.
func kubePushStore(t *testing.T, ns, remote string) string {
	t.Helper()
	ctx := context.Background()
	env.Apply(t, remote, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: eso-store-push-role
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [authorization.k8s.io]
  resources: [selfsubjectrulesreviews]
  verbs: [create]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: eso-store-push
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: eso-store-push-role}
subjects:
- {kind: ServiceAccount, name: pusher, namespace: %s}
`, ns))
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "pusher"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	expiry := int64(3600)
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "pusher", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	secretMustNotLeak(tok.Status.Token)
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: pusher-token
stringData:
  token: %s
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: k8s-store-remote-ns
spec:
  provider:
    kubernetes:
      remoteNamespace: %s
      server:
        url: %s
        caBundle: %s
      auth:
        token:
          bearerToken: {name: pusher-token, key: token}
`, tok.Status.Token, remote, env.Cluster.Config.Host, base64.StdEncoding.EncodeToString(env.Cluster.Config.CAData))
}

// kubeMetadataPushSecret pushes example-1 of the Secret example into
// property url of remoteKey, with metadata (YAML, under data[0]) when set.
func kubeMetadataPushSecret(name, remoteKey, metadata string) string {
	s := fmt.Sprintf(`apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: %s
spec:
  refreshInterval: 1h0m0s
  secretStoreRefs:
    - name: k8s-store-remote-ns
      kind: SecretStore
  selector:
    secret:
      name: example
  data:
  - match:
      secretKey: example-1
      remoteRef:
        remoteKey: %s
        property: url
`, name, remoteKey)
	if metadata != "" {
		s += "    metadata:\n" + indent(strings.TrimRight(metadata, "\n"), 6) + "\n"
	}
	return s
}

// remoteSecretIn reads a Secret, nil when it does not exist.
func remoteSecretIn(t *testing.T, ns, name string) *corev1.Secret {
	t.Helper()
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		t.Fatal(err)
	}
	return &s
}

// waitRemoteMetadata waits until the remote Secret holds value at url and
// exactly these labels and annotations.
func waitRemoteMetadata(t *testing.T, ns, name, value string, labels, annotations map[string]string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("Secret %s/%s with labels %v and annotations %v", ns, name, labels, annotations), func(context.Context) (bool, string) {
		s := remoteSecretIn(t, ns, name)
		if s == nil {
			return false, "no Secret"
		}
		if string(s.Data["url"]) != value {
			return false, "another value at url"
		}
		return maps.Equal(s.Labels, labels) && maps.Equal(s.Annotations, annotations), fmt.Sprintf("labels %v, annotations %v", s.Labels, s.Annotations)
	})
}

// A push to the kubernetes provider carries the source Secret's labels and
// annotations as ESO does, shaped by data[].metadata (ESO's
// PushSecretMetadata for Kubernetes, the metadata of ESO's guide applied as
// written): sourceMergePolicy Merge puts the spec's over the source's,
// Replace uses the spec's alone; targetMergePolicy Merge keeps the remote
// Secret's others, Replace drops them, Ignore leaves them as they are. The
// label keyferry.io/pushed that marks what keyferry pushed always stays and
// cannot be set; remoteNamespace is refused by name.
func TestKubernetesPushMetadataLabelsAndAnnotations(t *testing.T) {
	ctx := context.Background()
	ns, remote := env.Namespace(t), env.Namespace(t)
	value := "https://" + canary + "@db.example"
	env.Apply(t, ns, kubePushStore(t, ns, remote)+fmt.Sprintf(`---
apiVersion: v1
kind: Secret
metadata:
  name: example
  labels:
    app: web
    color: green
  annotations:
    note: from-source
stringData:
  example-1: %s
`, value))
	// The metadata of ESO's guide ("PushSecret Metadata"), as written.
	esoGuide := `apiVersion: kubernetes.external-secrets.io/v1alpha1
kind: PushSecretMetadata
spec:
  sourceMergePolicy: Merge # or Replace
  targetMergePolicy: Merge # or Replace / Ignore
  labels:
    color: red
  annotations:
    yes: please
`
	env.Apply(t, ns, kubeMetadataPushSecret("example", "example-remote-secret", esoGuide))
	deleteGCPPushSecretsOnCleanup(t, ns, "example", "source-replace", "no-metadata", "sets-mark", "remote-ns")
	pushed := map[string]string{kubeprovider.LabelPushed: "true"}
	with := func(m map[string]string) map[string]string {
		out := maps.Clone(m)
		maps.Copy(out, pushed)
		return out
	}

	t.Run("Merge, Merge: the spec's over the source's, with keyferry's mark", func(t *testing.T) {
		waitGCPPushReady(t, ns, "example", corev1.ConditionTrue, pushsecret.ReasonSynced)
		// The guide's key yes is YAML 1.1's true: kubectl (and keyferry's
		// manifest reader) turn it into the key "true".
		waitRemoteMetadata(t, remote, "example-remote-secret", value,
			with(map[string]string{"app": "web", "color": "red"}),
			map[string]string{"note": "from-source", "true": "please"})
	})

	t.Run("targetMergePolicy Merge keeps the remote's other labels, Replace drops them", func(t *testing.T) {
		s := remoteSecretIn(t, remote, "example-remote-secret")
		s.Labels["theirs"] = "kept"
		if err := env.Client.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		env.Apply(t, ns, kubeMetadataPushSecret("example", "example-remote-secret", strings.Replace(esoGuide, "color: red", "color: blue", 1)))
		waitRemoteMetadata(t, remote, "example-remote-secret", value,
			with(map[string]string{"app": "web", "color": "blue", "theirs": "kept"}),
			map[string]string{"note": "from-source", "true": "please"})
		env.Apply(t, ns, kubeMetadataPushSecret("example", "example-remote-secret", strings.Replace(esoGuide, "targetMergePolicy: Merge", "targetMergePolicy: Replace", 1)))
		waitRemoteMetadata(t, remote, "example-remote-secret", value,
			with(map[string]string{"app": "web", "color": "red"}),
			map[string]string{"note": "from-source", "true": "please"})
	})

	t.Run("targetMergePolicy Ignore leaves the remote's labels as they are", func(t *testing.T) {
		env.Apply(t, ns, kubeMetadataPushSecret("example", "example-remote-secret",
			strings.Replace(strings.Replace(esoGuide, "targetMergePolicy: Merge", "targetMergePolicy: Ignore", 1), "color: red", "color: blue", 1)))
		// A new value shows the Ignore push happened.
		value = "https://" + canary + "@db2.example"
		updateGCPPushSource(t, ns, "example", map[string]string{"example-1": value})
		waitRemoteMetadata(t, remote, "example-remote-secret", value,
			with(map[string]string{"app": "web", "color": "red"}),
			map[string]string{"note": "from-source", "true": "please"})
	})

	t.Run("sourceMergePolicy Replace: the spec's labels instead of the source's", func(t *testing.T) {
		env.Apply(t, ns, kubeMetadataPushSecret("source-replace", "source-replaced", strings.Replace(esoGuide, "sourceMergePolicy: Merge", "sourceMergePolicy: Replace", 1)))
		waitGCPPushReady(t, ns, "source-replace", corev1.ConditionTrue, pushsecret.ReasonSynced)
		waitRemoteMetadata(t, remote, "source-replaced", value, with(map[string]string{"color": "red"}), map[string]string{"true": "please"})
	})

	t.Run("without metadata the source's labels and annotations are pushed, as in ESO", func(t *testing.T) {
		env.Apply(t, ns, kubeMetadataPushSecret("no-metadata", "plain", ""))
		waitGCPPushReady(t, ns, "no-metadata", corev1.ConditionTrue, pushsecret.ReasonSynced)
		waitRemoteMetadata(t, remote, "plain", value, with(map[string]string{"app": "web", "color": "green"}), map[string]string{"note": "from-source"})
	})

	for _, tc := range []struct{ name, spec, field string }{
		{"sets-mark", "labels:\n  keyferry.io/pushed: \"false\"", kubeprovider.LabelPushed},
		{"remote-ns", "remoteNamespace: " + ns, "metadata.spec.remoteNamespace"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			env.Apply(t, ns, kubeMetadataPushSecret(tc.name, tc.name, "apiVersion: kubernetes.external-secrets.io/v1alpha1\nkind: PushSecretMetadata\nspec:\n"+indent(tc.spec, 2)))
			ps := waitGCPPushReady(t, ns, tc.name, corev1.ConditionFalse, pushsecret.ReasonInvalidPush)
			if c := gcpPushReadyCondition(ps); !strings.Contains(c.Message, tc.field) {
				t.Fatalf("Ready message %q does not name %s", c.Message, tc.field)
			}
			waitGCPPushWarning(t, ns, tc.name, pushsecret.ReasonInvalidPush)
			if s := remoteSecretIn(t, remote, tc.name); s != nil {
				t.Fatal("a refused push wrote the remote Secret")
			}
		})
	}
	assertGCPPushNoLeak(t, ns, "example", "source-replace", "no-metadata", "sets-mark", "remote-ns")
}
