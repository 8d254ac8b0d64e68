package writepolicy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// An ExternalSecret never makes keyferry write a Secret the token
// controller would fill with a long-lived token for a ServiceAccount
// (GHSA-fq7h-9x26-6j22), whichever way the type or annotation is asked for.
// kube-controller-manager runs here without the token controller, so the
// test asserts that no such Secret is ever written.
func TestServiceAccountTokenSecretsAreNeverWritten(t *testing.T) {
	cases := []struct {
		name, reason, es string
		configMap        *corev1.ConfigMap
	}{
		{name: "template type", reason: engine.ReasonInvalidSpec, es: `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: steal
spec:
  secretStoreRef: {name: store}
  target:
    template:
      type: kubernetes.io/service-account-token
  data: [{secretKey: k, remoteRef: {key: k}}]
`},
		{name: "template annotation", reason: engine.ReasonInvalidSpec, es: `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: steal
spec:
  secretStoreRef: {name: store}
  target:
    template:
      metadata:
        annotations:
          kubernetes.io/service-account.name: victim
  data: [{secretKey: k, remoteRef: {key: k}}]
`},
		{name: "templateFrom literal annotation", reason: engine.ReasonCredentialNotAllowed, es: `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: steal
spec:
  secretStoreRef: {name: store}
  target:
    template:
      templateFrom:
        - target: Annotations
          literal: "kubernetes.io/service-account.name: victim"
  data: [{secretKey: k, remoteRef: {key: k}}]
`},
		{name: "templateFrom configMap annotation", reason: engine.ReasonCredentialNotAllowed,
			configMap: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "tpl"}, Data: map[string]string{"meta": "kubernetes.io/service-account.name: victim\n"}},
			es: `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: steal
spec:
  secretStoreRef: {name: store}
  target:
    template:
      templateFrom:
        - target: Annotations
          configMap:
            name: tpl
            items: [{key: meta, templateAs: KeysAndValues}]
  data: [{secretKey: k, remoteRef: {key: k}}]
`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := env.Namespace(t)
			create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "victim"}})
			if tc.configMap != nil {
				tc.configMap.Namespace = ns
				create(t, tc.configMap)
			}
			env.Apply(t, ns, fakeStore("store", "k", "v"))
			env.Apply(t, ns, tc.es)
			es := env.WaitReady(t, ns, "steal", metav1.ConditionFalse, tc.reason)
			if msg := testenv.ReadyCondition(es).Message; tc.reason == engine.ReasonInvalidSpec && !strings.Contains(msg, "spec.target.template") {
				t.Errorf("the message does not name the field: %s", msg)
			}
			assertWarningEvent(t, ns, "steal", tc.reason)
			var s corev1.Secret
			if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "steal"}, &s); err == nil {
				t.Fatalf("a Secret was written (type %s)", s.Type)
			}
			assertNoCredentialSecret(t, ns)
		})
	}
}

// Bootstrap tokens are Secrets in kube-system named bootstrap-token-* (of
// type bootstrap.kubernetes.io/token): the API server authenticates nodes
// with them, so keyferry never writes one there.
func TestBootstrapTokensAreNeverWrittenInKubeSystem(t *testing.T) {
	const ns = metav1.NamespaceSystem
	cases := []struct{ name, target string }{
		{name: "target name", target: "name: bootstrap-token-abcdef"},
		{name: "template type", target: "template: {type: bootstrap.kubernetes.io/token}"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := fmt.Sprintf("writepolicy-store-%d", i)
			name := fmt.Sprintf("writepolicy-bootstrap-%d", i)
			env.Apply(t, ns, fakeStore(store, "token-secret", "0123456789abcdef"))
			env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: %s
spec:
  secretStoreRef: {name: %s}
  target:
    %s
  data: [{secretKey: token-secret, remoteRef: {key: token-secret}}]
`, name, store, tc.target))
			t.Cleanup(func() {
				ctx := context.Background()
				_ = env.Client.Delete(ctx, &esv1.ExternalSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
				_ = env.Client.Delete(ctx, &esv1.SecretStore{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: store}})
			})
			es := env.WaitReady(t, ns, name, metav1.ConditionFalse, engine.ReasonInvalidSpec)
			if msg := testenv.ReadyCondition(es).Message; !strings.Contains(msg, "bootstrap") {
				t.Errorf("the message does not say why: %s", msg)
			}
			assertWarningEvent(t, ns, name, engine.ReasonInvalidSpec)
			var list corev1.SecretList
			if err := env.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
				t.Fatal(err)
			}
			for _, s := range list.Items {
				if s.Type == corev1.SecretTypeBootstrapToken || strings.HasPrefix(s.Name, "bootstrap-token-") {
					t.Fatalf("a bootstrap token was written: %s (%s)", s.Name, s.Type)
				}
			}
		})
	}
}
