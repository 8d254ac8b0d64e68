package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strings"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// gcpPushExampleDir holds ESO's GCP PushSecret example, unchanged, and the
// store it names (in namespace default, with examples/gcp's key Secret).
const gcpPushExampleDir = "examples/pushsecret/gcpsm"

// ESO's PushSecret example of the GCP guide, applied unchanged through the
// example's store (service account key auth), pushes bestpokemon to
// best-pokemon with its data[].metadata honoured: the label anotherLabel
// (mergePolicy Merge) beside ESO's managed-by mark, and no annotations. A
// change of the source Secret is pushed as a new version, the labels kept
// (the same metadata needs no UpdateSecret, which the emulator lacks: a
// label change of an existing secret is not tested here).
func TestPushGCPESOExamplePushesUnchanged(t *testing.T) {
	const ns = "default"
	keyFile := exampleStringData(t, gcpExampleDir, "00-gcpsm-secret.yaml")["secret-access-credentials"]
	var sa struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal([]byte(keyFile), &sa); err != nil {
		t.Fatalf("the example's key file is not JSON: %v", err)
	}
	secretMustNotLeak(keyMaterial(sa.PrivateKey))
	value := "pikachu-" + canary
	remote := "projects/" + gcpExampleProject + "/secrets/best-pokemon"
	t.Cleanup(func() {
		// deletionPolicy None leaves the pushed secret behind.
		err := gcp.Client.DeleteSecret(context.Background(), &secretmanagerpb.DeleteSecretRequest{Name: remote})
		if err != nil && status.Code(err) != codes.NotFound {
			t.Errorf("deleting %s: %v", remote, err)
		}
	})
	env.Apply(t, ns, gcpExampleDir+"/00-gcpsm-secret.yaml")
	env.Apply(t, ns, fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: bestpokemon\nstringData:\n  bestpokemon: %s\n", value))
	env.Apply(t, ns, gcpPushExampleDir)
	deleteGCPPushSecretsOnCleanup(t, ns, "pushsecret-example")
	wantLabels := map[string]string{"anotherLabel": "anotherValue", provider.ManagedByKey: provider.ManagedByValue}

	t.Run("the unchanged example pushes with its labels", func(t *testing.T) {
		waitGCPPushReady(t, ns, "pushsecret-example", corev1.ConditionTrue, pushsecret.ReasonSynced)
		assertGCPPushed(t, remote, value)
		assertGCPLabels(t, remote, wantLabels, nil)
	})

	t.Run("a changed source is pushed as a new version, the labels kept", func(t *testing.T) {
		updateGCPPushSource(t, ns, "bestpokemon", map[string]string{"bestpokemon": "eevee-" + canary})
		testenv.Eventually(t, "the new value pushed", func(context.Context) (bool, string) {
			v, ver := gcpLatest(t, remote)
			return v == "eevee-"+canary && ver == "2", "best-pokemon at version " + ver
		})
		waitGCPPushReady(t, ns, "pushsecret-example", corev1.ConditionTrue, pushsecret.ReasonSynced)
		assertGCPLabels(t, remote, wantLabels, nil)
	})
	assertGCPPushNoLeak(t, ns, "pushsecret-example")
}

// assertGCPLabels fails unless the secret has exactly these labels and
// annotations.
func assertGCPLabels(t *testing.T, name string, labels, annotations map[string]string) {
	t.Helper()
	s, err := gcp.Client.GetSecret(context.Background(), &secretmanagerpb.GetSecretRequest{Name: name})
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	if !maps.Equal(s.GetLabels(), labels) {
		t.Fatalf("labels of %s = %v; want %v", name, s.GetLabels(), labels)
	}
	if !maps.Equal(s.GetAnnotations(), annotations) {
		t.Fatalf("annotations of %s = %v; want %v", name, s.GetAnnotations(), annotations)
	}
}

// A PushSecret into GCP Secret Manager: the value lands with ESO's label,
// properties go into one JSON object, a change of the source Secret is
// pushed as a new version, a secret keyferry did not create is neither
// written nor deleted, and deletionPolicy Delete deletes only what was
// pushed.
func TestPushGCPLifecycle(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	project := gcpProject(ns)
	parent := "projects/" + project
	env.Apply(t, ns, gcpStore("gcp-secretstore", project)+fmt.Sprintf(`---
apiVersion: v1
kind: Secret
metadata:
  name: bestpokemon
stringData:
  bestpokemon: pikachu-%s
  trainer: ash
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: pokemon
spec:
  deletionPolicy: Delete
  refreshInterval: 1h0m0s
  secretStoreRefs:
    - name: gcp-secretstore
      kind: SecretStore
  selector:
    secret:
      name: bestpokemon
  data:
    - match:
        secretKey: bestpokemon
        remoteRef:
          remoteKey: best-pokemon
    - match:
        secretKey: bestpokemon
        remoteRef:
          remoteKey: pokedex
          property: pokemon
    - match:
        secretKey: trainer
        remoteRef:
          remoteKey: pokedex
          property: trainer
`, canary))
	deleteGCPPushSecretsOnCleanup(t, ns, "pokemon", "to-foreign")
	best, pokedex, foreign := parent+"/secrets/best-pokemon", parent+"/secrets/pokedex", parent+"/secrets/foreign"

	t.Run("push creates labelled secrets", func(t *testing.T) {
		ps := waitGCPPushReady(t, ns, "pokemon", corev1.ConditionTrue, pushsecret.ReasonSynced)
		assertGCPPushed(t, best, "pikachu-"+canary)
		assertGCPPushed(t, pokedex, `{"pokemon":"pikachu-`+canary+`","trainer":"ash"}`)
		if !gcpPushContains(ps.Finalizers, pushsecret.Finalizer) {
			t.Fatalf("finalizers = %v; want ESO's %s under deletionPolicy Delete", ps.Finalizers, pushsecret.Finalizer)
		}
		if n := len(ps.Status.SyncedPushSecrets["SecretStore/gcp-secretstore"]); n != 3 {
			t.Fatalf("syncedPushSecrets has %d entries; want 3", n)
		}
	})

	t.Run("a changed source is pushed as a new version", func(t *testing.T) {
		updateGCPPushSource(t, ns, "bestpokemon", map[string]string{"bestpokemon": "eevee-" + canary, "trainer": "ash"})
		testenv.Eventually(t, "the new value pushed", func(context.Context) (bool, string) {
			v, ver := gcpLatest(t, best)
			return v == "eevee-"+canary && ver == "2", "best-pokemon at version " + ver
		})
		testenv.Eventually(t, "the new property pushed", func(context.Context) (bool, string) {
			v, _ := gcpLatest(t, pokedex)
			return v == `{"pokemon":"eevee-`+canary+`","trainer":"ash"}`, "pokedex not updated yet"
		})
	})

	theirs := "theirs-" + canary
	gcp.AddVersion(t, gcp.CreateSecret(t, parent, "foreign", map[string]string{"team": "other"}), []byte(theirs))
	t.Run("a secret keyferry did not create is not overwritten", func(t *testing.T) {
		env.Apply(t, ns, `apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: to-foreign
spec:
  deletionPolicy: Delete
  secretStoreRefs: [{name: gcp-secretstore, kind: SecretStore}]
  selector: {secret: {name: bestpokemon}}
  data:
    - match: {secretKey: bestpokemon, remoteRef: {remoteKey: foreign}}
`)
		ps := waitGCPPushReady(t, ns, "to-foreign", corev1.ConditionFalse, pushsecret.ReasonRemoteNotManaged)
		if msg := gcpPushReadyCondition(ps).Message; !strings.Contains(msg, "foreign") {
			t.Fatalf("message %q does not name the remote secret", msg)
		}
		waitGCPPushWarning(t, ns, "to-foreign", pushsecret.ReasonRemoteNotManaged)
		if v, ver := gcpLatest(t, foreign); v != theirs || ver != "1" {
			t.Fatalf("the foreign secret is at version %s; want its one version untouched", ver)
		}
	})

	assertGCPPushNoLeak(t, ns, "pokemon", "to-foreign")
	t.Run("deletionPolicy Delete deletes only what was pushed", func(t *testing.T) {
		deleteGCPPushSecret(t, ns, "to-foreign")
		deleteGCPPushSecret(t, ns, "pokemon")
		waitGCPSecretGone(t, best)
		waitGCPSecretGone(t, pokedex)
		s, err := gcp.Client.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: foreign})
		if err != nil {
			t.Fatalf("the foreign secret: %v", err)
		}
		if s.GetLabels()[provider.ManagedByKey] != "" {
			t.Fatal("the foreign secret was labelled")
		}
		if v, ver := gcpLatest(t, foreign); v != theirs || ver != "1" {
			t.Fatalf("the foreign secret is at version %s; want its one version untouched", ver)
		}
	})
	assertGCPPushNoLeak(t, ns, "pokemon", "to-foreign")
}

// --- helpers (prefixed: other providers' push tests live in this package) ---

// waitGCPPushReady waits for the PushSecret's Ready condition.
func waitGCPPushReady(t *testing.T, ns, name string, want corev1.ConditionStatus, reason string) *esv1alpha1.PushSecret {
	t.Helper()
	var ps esv1alpha1.PushSecret
	testenv.Eventually(t, fmt.Sprintf("PushSecret %s/%s Ready=%s %s", ns, name, want, reason), func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); err != nil {
			return false, err.Error()
		}
		c := gcpPushReadyCondition(&ps)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == want && c.Reason == reason, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
	})
	return &ps
}

func gcpPushReadyCondition(ps *esv1alpha1.PushSecret) *esv1alpha1.PushSecretStatusCondition {
	for i := range ps.Status.Conditions {
		if ps.Status.Conditions[i].Type == esv1alpha1.PushSecretReady {
			return &ps.Status.Conditions[i]
		}
	}
	return nil
}

// waitGCPPushWarning waits for a Warning Event with reason about a
// PushSecret.
func waitGCPPushWarning(t *testing.T, ns, name, reason string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("a Warning Event %s about %s/%s", reason, ns, name), func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range evs {
			if ev.Type == corev1.EventTypeWarning && ev.Reason == reason {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d Events, none a Warning %s", len(evs), reason)
	})
}

// gcpLatest reads the latest version of a secret in the emulator: its
// payload and version ID ("" when it has none or does not exist).
func gcpLatest(t *testing.T, name string) (string, string) {
	t.Helper()
	v, err := gcp.Client.AccessSecretVersion(context.Background(), &secretmanagerpb.AccessSecretVersionRequest{Name: name + "/versions/latest"})
	if status.Code(err) == codes.NotFound {
		return "", ""
	}
	if err != nil {
		t.Fatalf("reading the latest version of %s: %v", name, err)
	}
	ver := v.GetName()[strings.LastIndex(v.GetName(), "/")+1:]
	return string(v.GetPayload().GetData()), ver
}

func gcpSecretExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := gcp.Client.GetSecret(context.Background(), &secretmanagerpb.GetSecretRequest{Name: name})
	if status.Code(err) == codes.NotFound {
		return false
	}
	if err != nil {
		t.Fatalf("reading %s: %v", name, err)
	}
	return true
}

// assertGCPPushed fails unless the secret carries ESO's label and its
// latest version holds want.
func assertGCPPushed(t *testing.T, name, want string) {
	t.Helper()
	s, err := gcp.Client.GetSecret(context.Background(), &secretmanagerpb.GetSecretRequest{Name: name})
	if err != nil {
		t.Fatalf("the pushed secret %s: %v", name, err)
	}
	if s.GetLabels()[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("labels of %s = %v; want ESO's managed-by: external-secrets", name, s.GetLabels())
	}
	if v, ver := gcpLatest(t, name); v != want {
		t.Fatalf("the latest version (%s) of %s does not hold the pushed value", ver, name)
	}
}

func waitGCPSecretGone(t *testing.T, name string) {
	t.Helper()
	testenv.Eventually(t, name+" deleted", func(context.Context) (bool, string) {
		return !gcpSecretExists(t, name), "it still exists"
	})
}

func updateGCPPushSource(t *testing.T, ns, name string, data map[string]string) {
	t.Helper()
	ctx := context.Background()
	var s corev1.Secret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	s.Data, s.StringData = nil, data
	if err := env.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
}

// deleteGCPPushSecret deletes a PushSecret and waits until it is gone (its
// finalizer, under deletionPolicy Delete, waits for the remote deletion).
func deleteGCPPushSecret(t *testing.T, ns, name string) {
	t.Helper()
	ps := &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := client.IgnoreNotFound(env.Client.Delete(context.Background(), ps)); err != nil {
		t.Fatalf("deleting PushSecret %s/%s: %v", ns, name, err)
	}
	testenv.Eventually(t, fmt.Sprintf("PushSecret %s/%s gone", ns, name), func(ctx context.Context) (bool, string) {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(ps), ps)
		return apierrors.IsNotFound(err), fmt.Sprintf("still there (finalizers %v)", ps.Finalizers)
	})
}

// deleteGCPPushSecretsOnCleanup deletes PushSecrets when the test ends,
// dropping their finalizer: a failed test leaves nothing that holds a
// namespace.
func deleteGCPPushSecretsOnCleanup(t *testing.T, ns string, names ...string) {
	t.Cleanup(func() {
		ctx := context.Background()
		for _, name := range names {
			var ps esv1alpha1.PushSecret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); err != nil {
				continue
			}
			if len(ps.Finalizers) > 0 {
				ps.Finalizers = nil
				_ = env.Client.Update(ctx, &ps)
			}
			if err := client.IgnoreNotFound(env.Client.Delete(ctx, &ps)); err != nil {
				t.Errorf("deleting PushSecret %s/%s: %v", ns, name, err)
			}
		}
	})
}

// assertGCPPushNoLeak fails when the canary, or a credential registered
// with secretMustNotLeak, appears in the operator's logs, or in the Events
// or the status of the PushSecrets named (when they still exist).
func assertGCPPushNoLeak(t *testing.T, ns string, names ...string) {
	t.Helper()
	leaksMu.Lock()
	secrets := append([]string{canary}, leaks...)
	leaksMu.Unlock()
	ctx := context.Background()
	for _, s := range secrets {
		env.AssertNoLeak(t, s)
	}
	for _, name := range names {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			t.Fatalf("listing Events of %s/%s: %v", ns, name, err)
		}
		var status []byte
		var ps esv1alpha1.PushSecret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); err == nil {
			if status, err = json.Marshal(ps.Status); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range secrets {
			for _, ev := range evs {
				if strings.Contains(ev.Note, s) || strings.Contains(ev.Reason, s) {
					t.Fatalf("a secret value appeared in Event %s of %s/%s", ev.Reason, ns, name)
				}
			}
			if strings.Contains(string(status), s) {
				t.Fatalf("a secret value appeared in the status of %s/%s", ns, name)
			}
		}
	}
}

func gcpPushContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
