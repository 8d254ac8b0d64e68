package pushsecret_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// setLabels replaces the labels of a Secret.
func setLabels(t *testing.T, ns, name string, lbls map[string]string) {
	t.Helper()
	ctx := context.Background()
	var s corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	s.Labels = lbls
	if err := env.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
}

// spec.selector.secret.selector pushes every Secret of the namespace whose
// labels match (ESO's meaning); a Secret that comes to match is pushed at
// once (the Secret watch sees labels), one that stops matching is no
// longer pushed (deletionPolicy Delete deletes what it pushed), and two
// selected Secrets that would push to the same remote ref are refused.
func TestASecretLabelSelectorPushesEveryMatchingSecret(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fmt.Sprintf(vaultStore, "vault", "vault-token", "vault-token", "root"))
	secret := func(name, key string, labeled bool) string {
		lbl := ""
		if labeled {
			lbl = "\n  labels: {push: \"yes\"}"
		}
		return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s%s\nstringData:\n  %s: '{\"v\":\"%s-%s\"}'\n---\n", name, lbl, key, canary, key)
	}
	env.Apply(t, ns, secret("s1", "one", true)+secret("s2", "two", true)+secret("s3", "three", false)+`apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: by-label
spec:
  refreshInterval: 1h
  deletionPolicy: Delete
  secretStoreRefs: [{name: vault}]
  selector:
    secret:
      selector:
        matchLabels: {push: "yes"}
  dataTo:
    - storeRef: {name: vault}
      rewrite: [{regexp: {source: "^", target: "`+ns+`/"}}]
`)
	waitPushReady(t, ns, "by-label", corev1.ConditionTrue, pushsecret.ReasonSynced)
	waitVaultEntry(t, ns+"/one", map[string]string{"v": canary + "-one"})
	waitVaultEntry(t, ns+"/two", map[string]string{"v": canary + "-two"})
	if vaultFields(t, ns+"/three") != nil {
		t.Fatal("a Secret the selector does not select was pushed")
	}

	t.Run("a Secret that comes to match is pushed at once", func(t *testing.T) {
		setLabels(t, ns, "s3", map[string]string{"push": "yes"})
		waitVaultEntry(t, ns+"/three", map[string]string{"v": canary + "-three"})
	})

	t.Run("a Secret that stops matching is no longer pushed; Delete deletes what it pushed", func(t *testing.T) {
		setLabels(t, ns, "s1", nil)
		testenv.Eventually(t, ns+"/one deleted", func(context.Context) (bool, string) {
			return vaultFields(t, ns+"/one") == nil, "still there"
		})
		// The remote is deleted before the status is written: wait for
		// the status, not only for Ready (which it was already).
		testenv.Eventually(t, "syncedPushSecrets without one", func(ctx context.Context) (bool, string) {
			ps := waitPushReady(t, ns, "by-label", corev1.ConditionTrue, pushsecret.ReasonSynced)
			synced := ps.Status.SyncedPushSecrets["SecretStore/vault"]
			_, ok := synced[ns+"/one"]
			return !ok && len(synced) == 2, fmt.Sprintf("syncedPushSecrets = %v; want two and three only", synced)
		})
	})

	t.Run("two selected Secrets pushing to the same remote ref are refused", func(t *testing.T) {
		env.Apply(t, ns, secret("s4", "two", true))
		ps := waitPushReady(t, ns, "by-label", corev1.ConditionFalse, engine.ReasonInvalidSpec)
		if msg := ps.Status.Conditions[0].Message; !strings.Contains(msg, `"s2"`) || !strings.Contains(msg, `"s4"`) {
			t.Errorf("message %q does not name both Secrets", msg)
		}
		waitVaultEntry(t, ns+"/two", map[string]string{"v": canary + "-two"})
	})
	noLeak(t, ns)
}

// secretStoreRefs[].labelSelector pushes to every store of the kind whose
// labels match; a store of another controller class is left out (ESO), a
// store that comes to match is pushed to at once, a selector that selects
// nothing is StoreNotFound, and a ClusterSecretStore selected by label is
// admitted exactly as a named one (its conditions).
func TestAStoreLabelSelectorPushesToEverySelectedStore(t *testing.T) {
	ns := env.Namespace(t)
	store := func(name, labels, controller string) string {
		return fmt.Sprintf(`apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: %s
  labels: {%s}
spec:
  controller: "%s"
  provider:
    vault:
      server: "http://my.vault.server:8200"
      path: secret
      version: v2
      auth:
        tokenSecretRef: {name: vault-token, key: token}
---
`, name, labels, controller)
	}
	env.Apply(t, ns, store("a", "tier: push", "")+store("b", "tier: push", "")+store("c", "", "")+store("d", "tier: push", "another-class")+`apiVersion: v1
kind: Secret
metadata:
  name: vault-token
stringData:
  token: root
---
apiVersion: v1
kind: Secret
metadata:
  name: src
stringData:
  k: `+canary+`-stores
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: to-selected-stores
spec:
  secretStoreRefs:
    - labelSelector: {matchLabels: {tier: push}}
  selector: {secret: {name: src}}
  data:
    - match: {secretKey: k, remoteRef: {remoteKey: `+ns+`-stores, property: p}}
`)
	storeKeys := func(ps *esv1alpha1.PushSecret) string {
		var keys []string
		for k := range ps.Status.SyncedPushSecrets {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return fmt.Sprint(keys)
	}
	ps := waitPushReady(t, ns, "to-selected-stores", corev1.ConditionTrue, pushsecret.ReasonSynced)
	if got := storeKeys(ps); got != "[SecretStore/a SecretStore/b]" {
		t.Fatalf("pushed to %s; want the two selected stores of this controller", got)
	}
	waitVaultField(t, ns+"-stores", "p", canary+"-stores")

	t.Run("a store that comes to match is pushed to at once", func(t *testing.T) {
		env.Apply(t, ns, store("e", "tier: push", ""))
		testenv.Eventually(t, "SecretStore/e pushed to", func(ctx context.Context) (bool, string) {
			var ps esv1alpha1.PushSecret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "to-selected-stores"}, &ps); err != nil {
				return false, err.Error()
			}
			got := storeKeys(&ps)
			return got == "[SecretStore/a SecretStore/b SecretStore/e]", got
		})
	})

	t.Run("a selector that selects no store", func(t *testing.T) {
		env.Apply(t, ns, `apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: to-no-store
spec:
  secretStoreRefs:
    - labelSelector: {matchLabels: {tier: nothing}}
  selector: {secret: {name: src}}
  data:
    - match: {secretKey: k, remoteRef: {remoteKey: `+ns+`-none, property: p}}
`)
		ps := waitPushReady(t, ns, "to-no-store", corev1.ConditionFalse, engine.ReasonStoreNotFound)
		if msg := ps.Status.Conditions[0].Message; !strings.Contains(msg, "spec.secretStoreRefs[0].labelSelector") {
			t.Errorf("message %q does not name the selector", msg)
		}
	})

	t.Run("a ClusterSecretStore selected by label is admitted by its conditions", func(t *testing.T) {
		css := "push-sel-" + ns
		env.Apply(t, "", `apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: `+css+`
  labels: {`+css+`: "yes"}
spec:
  conditions:
    - namespaces: [somewhere-else]
  provider:
    fake:
      data: []
`)
		env.Apply(t, ns, `apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: to-cluster-store
spec:
  secretStoreRefs:
    - kind: ClusterSecretStore
      labelSelector: {matchLabels: {`+css+`: "yes"}}
  selector: {secret: {name: src}}
  data:
    - match: {secretKey: k, remoteRef: {remoteKey: r, property: p}}
`)
		ps := waitPushReady(t, ns, "to-cluster-store", corev1.ConditionFalse, engine.ReasonStoreNotAllowed)
		if msg := ps.Status.Conditions[0].Message; !strings.Contains(msg, ns) {
			t.Errorf("message %q does not name the namespace", msg)
		}
	})
	noLeak(t, ns)
}
