package pushsecret_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// ESO's full PushSecret example (docs/api/pushsecret.md, applied unchanged
// from examples/eso-api/pushsecret.yaml) pushes the value its template
// renders: template.data reads the source Secret's keys (index . "key"),
// its templateFrom ConfigMap renders too, and the pushed value is the
// rendered one; the source Secret itself is never changed. The pieces the
// example names but does not define (its store aws-parameterstore, here a
// Vault store, the Secret pokedex-credentials, the ConfigMap
// application-config-tmpl) are created first in its namespace, default.
func TestESOFullPushSecretExamplePushesTheTemplatedValue(t *testing.T) {
	ctx := context.Background()
	env.Apply(t, "default", fmt.Sprintf(vaultStore, "aws-parameterstore", "aws-parameterstore-token", "aws-parameterstore-token", "root"))
	env.Apply(t, "default", `apiVersion: v1
kind: Secret
metadata:
  name: pokedex-credentials
stringData:
  best-pokemon-src: `+canary+`-Pikachu
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: application-config-tmpl
data:
  config.yml: |
    pokemon: {{ index . "best-pokemon-src" }}
`)
	var before corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "pokedex-credentials"}, &before); err != nil {
		t.Fatal(err)
	}
	// ESO's Vault example names its PushSecret pushsecret-example too
	// (TestESOVaultPushSecretExamplePushes): start from none.
	removePushSecret(t, "default", "pushsecret-example")
	env.Apply(t, "default", "examples/eso-api/pushsecret.yaml")
	t.Cleanup(func() { removePushSecret(t, "default", "pushsecret-example") })
	ps := waitPushReady(t, "default", "pushsecret-example", corev1.ConditionTrue, pushsecret.ReasonSynced)
	want := strings.ToUpper(canary+"-Pikachu") + " is the really best!"
	if got := fmt.Sprint(vaultFields(t, "destination-secret")["best-pokemon-dst"]); got != want {
		t.Errorf("secret/destination-secret best-pokemon-dst is not the rendered template")
	}
	if _, ok := ps.Status.SyncedPushSecrets["SecretStore/aws-parameterstore"]["destination-secret/best-pokemon-dst"]; !ok {
		t.Errorf("syncedPushSecrets = %v; want destination-secret/best-pokemon-dst", ps.Status.SyncedPushSecrets)
	}
	if len(ps.Finalizers) == 0 {
		t.Errorf("no finalizer; want ESO's under deletionPolicy Delete")
	}
	var after corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "pokedex-credentials"}, &after); err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != before.ResourceVersion {
		t.Errorf("the source Secret changed")
	}

	t.Run("a changed source is rendered and pushed again", func(t *testing.T) {
		updateSecret(t, "default", "pokedex-credentials", map[string]string{"best-pokemon-src": canary + "-Eevee"})
		want := strings.ToUpper(canary+"-Eevee") + " is the really best!"
		waitVaultField(t, "destination-secret", "best-pokemon-dst", want)
	})
	noLeak(t, "default")
	env.AssertNoLeak(t, strings.ToUpper(canary))
}

// removePushSecret deletes a PushSecret and waits until it is gone (its
// finalizer, if any, done).
func removePushSecret(t *testing.T, ns, name string) {
	t.Helper()
	ps := &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := env.Client.Delete(context.Background(), ps); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "PushSecret "+ns+"/"+name+" gone", func(ctx context.Context) (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, ps)
		return apierrors.IsNotFound(err), "still there"
	})
}

// A template that fails (here: a key the source Secret lacks) pushes
// nothing, says TemplateFailed naming the template, and quotes no value.
func TestAFailingPushTemplatePushesNothing(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fmt.Sprintf(vaultStore, "vault", "vault-token", "vault-token", "root"))
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: src
stringData:
  k: `+canary+`-template
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: bad-template
spec:
  secretStoreRefs: [{name: vault}]
  selector: {secret: {name: src}}
  template:
    data:
      out: '{{ .k }}{{ .missing }}'
  data:
    - match: {secretKey: out, remoteRef: {remoteKey: `+ns+`-tpl, property: p}}
`)
	ps := waitPushReady(t, ns, "bad-template", corev1.ConditionFalse, engine.ReasonTemplateFailed)
	if msg := ps.Status.Conditions[0].Message; !strings.Contains(msg, "spec.template.data.out") {
		t.Errorf("message %q does not name the template", msg)
	}
	if vaultFields(t, ns+"-tpl") != nil {
		t.Errorf("something was pushed")
	}
	testenv.Eventually(t, "a Warning Event TemplateFailed", func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, "bad-template")
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Type == corev1.EventTypeWarning && ev.Reason == engine.ReasonTemplateFailed {
				return true, ""
			}
		}
		return false, "no such Event yet"
	})
	noLeak(t, ns)
}
