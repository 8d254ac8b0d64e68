package pushsecret_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// generatorPushSecret pushes what Password generator pw makes, key
// password, to property password of remote in Vault store "vault".
func generatorPushSecret(name, refresh, remote string) string {
	return fmt.Sprintf(`apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: %s
spec:
  refreshInterval: %s
  deletionPolicy: Delete
  secretStoreRefs: [{name: vault, kind: SecretStore}]
  selector:
    generatorRef: {apiVersion: generators.external-secrets.io/v1alpha1, kind: Password, name: pw}
  data:
    - match: {secretKey: password, remoteRef: {remoteKey: %s, property: password}}
`, name, refresh, remote)
}

// localPassword waits until the local copy of PushSecret ns/name holds a
// password other than old and Vault's remote holds the same; it returns
// the local copy.
func localPassword(t *testing.T, ns, name, remote, old string) *corev1.Secret {
	t.Helper()
	var local corev1.Secret
	testenv.Eventually(t, "the local copy and "+remote+" hold one new password", func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &local); err != nil {
			return false, err.Error()
		}
		pw := string(local.Data["password"])
		switch {
		case pw == "" || pw == old:
			return false, "the local copy holds no new password"
		case fmt.Sprint(vaultFields(t, remote)["password"]) != pw:
			return false, "Vault holds another password" // never print values
		}
		return true, ""
	})
	return &local
}

// TestGeneratorPushKeepsItsLocalCopy: a PushSecret whose
// selector.generatorRef names a Password generator generates once, keeps
// the values in its local copy (a Secret of its name it controls) and
// pushes them; a re-sync pushes the local copy again without generating;
// force-sync, a deleted local copy and the refresh interval generate new
// values, which the local copy and the remote both get. A Secret of the
// PushSecret's name keyferry did not create is never taken over.
func TestGeneratorPushKeepsItsLocalCopy(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	env.Apply(t, ns, fmt.Sprintf(vaultStore, "vault", "vault-token", "vault-token", "root"))
	env.Apply(t, ns, "apiVersion: generators.external-secrets.io/v1alpha1\nkind: Password\nmetadata:\n  name: pw\nspec:\n  length: 40\n")
	remote := ns + "/gen"
	env.Apply(t, ns, generatorPushSecret("gen", "1h", remote))
	var passwords []string
	t.Cleanup(func() {
		for _, pw := range passwords {
			env.AssertNoLeak(t, pw)
			generatedValueNotIn(t, ns, pw)
		}
	})

	var first *corev1.Secret
	t.Run("generates once, keeps the local copy and pushes it", func(t *testing.T) {
		ps := waitPushReady(t, ns, "gen", corev1.ConditionTrue, pushsecret.ReasonSynced)
		first = localPassword(t, ns, "gen", remote, "")
		passwords = append(passwords, string(first.Data["password"]))
		if n := len(first.Data["password"]); n != 40 {
			t.Fatalf("password of %d characters; want the generator's 40", n)
		}
		if c := metav1.GetControllerOf(first); c == nil || c.UID != ps.UID {
			t.Fatalf("the local copy's controller is %v; want the PushSecret", c)
		}
		if _, ok := first.Annotations[engine.AnnotationGenerated]; !ok {
			t.Fatalf("the local copy lacks %s", engine.AnnotationGenerated)
		}
		// The write of the local copy wakes the PushSecret once more,
		// which pushes it without generating: the Event says it.
		testenv.Eventually(t, "a Synced Event saying new values were generated", func(ctx context.Context) (bool, string) {
			evs, err := env.Events(ctx, ns, "gen")
			if err != nil {
				return false, err.Error()
			}
			for _, ev := range evs {
				if ev.Reason == pushsecret.ReasonSynced && strings.Contains(ev.Note, "New values generated: ") {
					return true, ""
				}
			}
			return false, fmt.Sprintf("%d Events", len(evs))
		})
	})

	t.Run("a re-sync pushes the local copy without generating", func(t *testing.T) {
		// Vault's entry is overwritten by hand (its managed-by mark, in
		// the metadata, stays): the re-sync a label makes restores it
		// from the local copy.
		vaultSrv.PutKV(t, "secret", 2, remote, map[string]any{"password": "drifted"})
		patchPS(t, ns, "gen", func(ps *esv1alpha1.PushSecret) { ps.Labels = map[string]string{"resync": "1"} })
		waitVaultField(t, remote, "password", passwords[0])
		local := env.GetSecret(t, ns, "gen")
		if local.ResourceVersion != first.ResourceVersion || string(local.Data["password"]) != passwords[0] {
			t.Fatal("the local copy was rewritten by a re-sync")
		}
	})

	t.Run("force-sync generates new values, pushed and kept", func(t *testing.T) {
		patchPS(t, ns, "gen", func(ps *esv1alpha1.PushSecret) { ps.Annotations = map[string]string{"force-sync": "1"} })
		local := localPassword(t, ns, "gen", remote, passwords[0])
		passwords = append(passwords, string(local.Data["password"]))
	})

	t.Run("a deleted local copy is generated anew", func(t *testing.T) {
		if err := env.Client.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gen"}}); err != nil {
			t.Fatal(err)
		}
		local := localPassword(t, ns, "gen", remote, passwords[1])
		passwords = append(passwords, string(local.Data["password"]))
	})

	t.Run("the refresh interval rotates", func(t *testing.T) {
		rot := ns + "/rot"
		env.Apply(t, ns, generatorPushSecret("rot", "2s", rot))
		a := localPassword(t, ns, "rot", rot, "")
		b := localPassword(t, ns, "rot", rot, string(a.Data["password"]))
		passwords = append(passwords, string(a.Data["password"]), string(b.Data["password"]))
		deletePushSecret(t, ns, "rot")
	})

	t.Run("a Secret of the PushSecret's name keyferry did not create is never taken over", func(t *testing.T) {
		env.Apply(t, ns, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: taken\nstringData:\n  password: %s-mine\n", canary))
		env.Apply(t, ns, generatorPushSecret("taken", "1h", ns+"/taken"))
		ps := waitPushReady(t, ns, "taken", corev1.ConditionFalse, engine.ReasonSecretNotOwned)
		if msg := ps.Status.Conditions[0].Message; !strings.Contains(msg, `Secret "taken" exists`) {
			t.Fatalf("Ready message %q; want it to name the Secret", msg)
		}
		s := env.GetSecret(t, ns, "taken")
		if string(s.Data["password"]) != canary+"-mine" || len(s.OwnerReferences) != 0 || len(s.Annotations) != 0 {
			t.Fatal("the Secret keyferry did not create was written")
		}
		if vaultFields(t, ns+"/taken") != nil {
			t.Fatal("something was pushed without a local copy")
		}
		noLeak(t, ns)
	})

	t.Run("deletionPolicy Delete deletes the remote", func(t *testing.T) {
		deletePushSecret(t, ns, "gen")
		if vaultFields(t, remote) != nil {
			t.Fatal("the remote entry outlived the PushSecret")
		}
	})
}

// generatedValueNotIn fails when value is in an Event or a PushSecret of
// ns.
func generatedValueNotIn(t *testing.T, ns, value string) {
	t.Helper()
	ctx := context.Background()
	var evs eventsv1.EventList
	var pss esv1alpha1.PushSecretList
	if err := env.Client.List(ctx, &evs, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.List(ctx, &pss, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []any{evs, pss} {
		b, err := json.Marshal(obj)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), value) {
			t.Fatalf("a generated value appeared in an Event or a PushSecret of %s", ns)
		}
	}
}

func patchPS(t *testing.T, ns, name string, mut func(*esv1alpha1.PushSecret)) {
	t.Helper()
	var ps esv1alpha1.PushSecret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, &ps); err != nil {
		t.Fatal(err)
	}
	before := ps.DeepCopy()
	mut(&ps)
	if err := env.Client.Patch(context.Background(), &ps, client.MergeFrom(before)); err != nil {
		t.Fatalf("patching PushSecret %s: %v", name, err)
	}
}

// deletePushSecret deletes a PushSecret and waits until it is gone (under
// deletionPolicy Delete its finalizer waits for the remote deletion).
func deletePushSecret(t *testing.T, ns, name string) {
	t.Helper()
	ps := &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := client.IgnoreNotFound(env.Client.Delete(context.Background(), ps)); err != nil {
		t.Fatalf("deleting PushSecret %s/%s: %v", ns, name, err)
	}
	testenv.Eventually(t, "PushSecret "+name+" gone", func(ctx context.Context) (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &esv1alpha1.PushSecret{})
		return apierrors.IsNotFound(err), "still there"
	})
}
