package operator

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// TestStoreOfAnotherControllerClassIsLeftAlone: with --controller-class
// keyferry, stores of ESO's class "default" and the ExternalSecrets that use
// them are not touched at all (no status, no Event, no client, no Secret),
// while stores of keyferry's class sync; changing a store's class hands it
// over.
func TestStoreOfAnotherControllerClassIsLeftAlone(t *testing.T) {
	r := startOperator(t, func(o *operator.Options) { o.ControllerClass = "keyferry" })
	ctx := context.Background()
	ns := env.Namespace(t)
	css := "theirs-" + ns
	env.Apply(t, ns, fakeStore("SecretStore", "theirs", "default", "k", "their-value"))
	env.Apply(t, "", fakeStore("ClusterSecretStore", css, "default", "k", "their-value"))
	env.Apply(t, ns, fakeStore("SecretStore", "ours", "keyferry", "k", "our-value"))
	// The operator has seen the stores before the ExternalSecrets exist:
	// an ExternalSecret whose store is not yet in the cache cannot be told
	// apart from one whose store is missing (StoreNotFound, as in ESO).
	r.waitLogged(t, "the SecretStore skipped", "skipping a store of another controller class", `"name":"theirs"`, `"namespace":"`+ns+`"`)
	r.waitLogged(t, "the ClusterSecretStore skipped", "skipping a store of another controller class", `"name":"`+css+`"`)
	env.WaitStoreReady(t, ns, "ours")
	env.Apply(t, ns, externalSecret("from-theirs", "SecretStore", "theirs", "k"))
	env.Apply(t, ns, externalSecret("from-their-cluster-store", "ClusterSecretStore", css, "k"))
	env.Apply(t, ns, externalSecret("from-ours", "SecretStore", "ours", "k"))
	// One of its stores is another controller's: skipped, as ESO does.
	env.Apply(t, ns, `apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: mixed
spec:
  secretStoreRef: {name: ours}
  target: {name: mixed}
  data:
    - secretKey: ours
      remoteRef: {key: k}
    - secretKey: theirs
      remoteRef: {key: k}
      sourceRef: {storeRef: {name: theirs}}
`)
	untouched := []struct {
		obj  client.Object
		key  types.NamespacedName
		rv   string
		name string
	}{
		{obj: &esv1.SecretStore{}, key: types.NamespacedName{Namespace: ns, Name: "theirs"}},
		{obj: &esv1.ClusterSecretStore{}, key: types.NamespacedName{Name: css}},
		{obj: &esv1.ExternalSecret{}, key: types.NamespacedName{Namespace: ns, Name: "from-theirs"}},
		{obj: &esv1.ExternalSecret{}, key: types.NamespacedName{Namespace: ns, Name: "from-their-cluster-store"}},
		{obj: &esv1.ExternalSecret{}, key: types.NamespacedName{Namespace: ns, Name: "mixed"}},
	}
	for i := range untouched {
		if err := env.Client.Get(ctx, untouched[i].key, untouched[i].obj); err != nil {
			t.Fatal(err)
		}
		untouched[i].rv = untouched[i].obj.GetResourceVersion()
	}

	env.WaitReady(t, ns, "from-ours", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "from-ours", testenv.HasData(map[string]string{"value": "our-value"}))
	env.WaitStoreReady(t, ns, "ours")

	// Each skipped object was reconciled and skipped (the barrier for the
	// assertions below).
	for _, name := range []string{"from-theirs", "from-their-cluster-store", "mixed"} {
		r.waitLogged(t, name+" skipped", "skipping: a store belongs to another controller class", `"name":"`+name+`"`, `"namespace":"`+ns+`"`)
	}

	for _, u := range untouched {
		fresh := u.obj.DeepCopyObject().(client.Object)
		if err := env.Client.Get(ctx, u.key, fresh); err != nil {
			t.Fatal(err)
		}
		if fresh.GetResourceVersion() != u.rv {
			t.Errorf("%T %s was written: resourceVersion %s -> %s", fresh, u.key, u.rv, fresh.GetResourceVersion())
		}
		switch o := fresh.(type) {
		case *esv1.SecretStore:
			if len(o.Status.Conditions) > 0 || o.Status.Capabilities != "" {
				t.Errorf("SecretStore %s has a status: %+v", u.key, o.Status)
			}
		case *esv1.ClusterSecretStore:
			if len(o.Status.Conditions) > 0 || o.Status.Capabilities != "" {
				t.Errorf("ClusterSecretStore %s has a status: %+v", u.key, o.Status)
			}
		case *esv1.ExternalSecret:
			if len(o.Status.Conditions) > 0 || o.Status.SyncedResourceVersion != "" {
				t.Errorf("ExternalSecret %s has a status: %+v", u.key, o.Status)
			}
			var s corev1.Secret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: u.key.Name}, &s); !apierrors.IsNotFound(err) {
				t.Errorf("Secret %s was written for a skipped ExternalSecret (err=%v)", u.key.Name, err)
			}
		}
		evNS := u.key.Namespace
		if evNS == "" {
			evNS = metav1.NamespaceDefault
		}
		evs, err := env.Events(ctx, evNS, u.key.Name)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			t.Errorf("Event about %s: %s %s", u.key, ev.Reason, ev.Note)
		}
	}
	if n := r.op.Fetch.Calls(esv1.SecretStoreKind, ns, "theirs"); n != 0 {
		t.Errorf("the other controller's SecretStore was called %d times", n)
	}
	if n := r.op.Fetch.Calls(esv1.ClusterSecretStoreKind, "", css); n != 0 {
		t.Errorf("the other controller's ClusterSecretStore was called %d times", n)
	}

	// Handing the store over to keyferry's class starts its syncs.
	var theirs esv1.SecretStore
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "theirs"}, &theirs); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(theirs.DeepCopy())
	theirs.Spec.Controller = "keyferry"
	if err := env.Client.Patch(ctx, &theirs, patch); err != nil {
		t.Fatal(err)
	}
	env.WaitReady(t, ns, "from-theirs", metav1.ConditionTrue, "SecretSynced")
	env.WaitReady(t, ns, "mixed", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "mixed", testenv.HasData(map[string]string{"ours": "our-value", "theirs": "their-value"}))
	env.WaitStoreReady(t, ns, "theirs")
}

// TestStoreWithoutClassIsServedByEveryClass: ESO's rule, a store without
// spec.controller is served whatever keyferry's class.
func TestStoreWithoutClassIsServedByEveryClass(t *testing.T) {
	startOperator(t, func(o *operator.Options) { o.ControllerClass = "keyferry" })
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("SecretStore", "unclassed", "", "k", "v"))
	env.Apply(t, ns, externalSecret("es", "SecretStore", "unclassed", "k"))
	env.WaitReady(t, ns, "es", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "es", testenv.HasData(map[string]string{"value": "v"}))
	env.WaitStoreReady(t, ns, "unclassed")
}

// TestKeyferryWithoutClassSkipsClassedStores: a keyferry without a class
// leaves a store of ESO's default class "default" alone.
func TestKeyferryWithoutClassSkipsClassedStores(t *testing.T) {
	r := startOperator(t, nil)
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("SecretStore", "eso", "default", "k", "v"))
	env.Apply(t, ns, fakeStore("SecretStore", "plain", "", "k", "v"))
	env.Apply(t, ns, externalSecret("to-eso", "SecretStore", "eso", "k"))
	env.Apply(t, ns, externalSecret("to-plain", "SecretStore", "plain", "k"))
	env.WaitReady(t, ns, "to-plain", metav1.ConditionTrue, "SecretSynced")
	r.waitLogged(t, "to-eso skipped", "skipping: a store belongs to another controller class", `"name":"to-eso"`, fmt.Sprintf(`"namespace":"%s"`, ns))
	var es esv1.ExternalSecret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "to-eso"}, &es); err != nil {
		t.Fatal(err)
	}
	if len(es.Status.Conditions) != 0 {
		t.Errorf("ExternalSecret of ESO's store has a status: %+v", es.Status)
	}
}
