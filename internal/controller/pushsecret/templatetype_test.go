package pushsecret_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/controller/pushsecret"
)

// kubernetesStore creates, in ns, a kubernetes SecretStore named name that
// pushes into namespace remote with a token of a ServiceAccount allowed to
// write Secrets there (as TestKubernetesPush sets it up).
func kubernetesStore(t *testing.T, ns, remote, name string) {
	t.Helper()
	ctx := context.Background()
	env.Apply(t, ns, "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: pusher\n")
	env.Apply(t, remote, fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: push
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: push
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: push}
subjects:
- {kind: ServiceAccount, name: pusher, namespace: %s}
`, ns))
	cs, err := kubernetes.NewForConfig(env.Cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "pusher", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr(int64(3600))}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pusher-token"},
		Data: map[string][]byte{"token": []byte(tok.Status.Token)}}); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: %s
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
`, name, remote, env.Cluster.Config.Host, base64.StdEncoding.EncodeToString(env.Cluster.Config.CAData)))
}

// template.type becomes the type of the pushed Secret (ESO sets the
// in-memory Secret's type to it); the kubernetes provider writes a whole
// Secret with that type and the rendered keys next to the source's.
func TestATemplateTypeIsThePushedSecretsType(t *testing.T) {
	ns, remote := env.Namespace(t), env.Namespace(t)
	kubernetesStore(t, ns, remote, "k8s")
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: cert
stringData:
  crt: `+canary+`-crt
  key: `+canary+`-key
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: as-tls
spec:
  secretStoreRefs: [{name: k8s}]
  selector: {secret: {name: cert}}
  template:
    type: kubernetes.io/tls
    data:
      tls.crt: '{{ .crt }}'
      tls.key: '{{ .key }}'
  data:
    - match: {remoteRef: {remoteKey: tls-copy}}
`)
	waitPushReady(t, ns, "as-tls", corev1.ConditionTrue, pushsecret.ReasonSynced)
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: remote, Name: "tls-copy"}, &s); err != nil {
		t.Fatal(err)
	}
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("type = %s; want the template's kubernetes.io/tls", s.Type)
	}
	if string(s.Data["tls.crt"]) != canary+"-crt" || string(s.Data["tls.key"]) != canary+"-key" || string(s.Data["crt"]) != canary+"-crt" {
		t.Errorf("the pushed Secret does not hold the rendered and the source keys")
	}
	var src corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "cert"}, &src); err != nil {
		t.Fatal(err)
	}
	if src.Type != corev1.SecretTypeOpaque || len(src.Data) != 2 {
		t.Errorf("the source Secret changed")
	}
	noLeak(t, ns)
}
