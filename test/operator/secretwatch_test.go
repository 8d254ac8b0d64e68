package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/kube"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// TestSecretMetadataWatchStartsOnlyWhenNeeded: the watch of every Secret's
// metadata (which costs the metadata of each Secret in the cluster) is not
// started by ExternalSecrets that sync; the first ExternalSecret that waits
// for a person's change to a Secret starts it, and the change then wakes
// it; the first PushSecret starts it too.
func TestSecretMetadataWatchStartsOnlyWhenNeeded(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	r := startOperator(t, func(o *operator.Options) {
		o.Namespace = ns
		o.DisableClusterStores = true
	})
	started := func() []string {
		var out []string
		for _, line := range strings.Split(r.logs.String(), "\n") {
			if strings.Contains(line, kube.SecretWatchStartedLog) {
				out = append(out, line)
			}
		}
		return out
	}

	env.Apply(t, ns, fakeStore("SecretStore", "local", "", "k", "v"))
	env.Apply(t, ns, externalSecret("synced", "SecretStore", "local", "k"))
	env.WaitReady(t, ns, "synced", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "synced", testenv.HasData(map[string]string{"value": "v"}))
	if lines := started(); len(lines) != 0 || r.watchesEverySecret(ctx) {
		t.Fatalf("an ExternalSecret that synced started the watch of every Secret (informer there: %v): %q", r.watchesEverySecret(ctx), lines)
	}

	// A Secret nobody gave keyferry: its ExternalSecret waits, and starts
	// the watch that tells it of a person's change.
	taken := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"}, Data: map[string][]byte{"value": []byte("theirs")}}
	if err := env.Client.Create(ctx, taken); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, externalSecret("taken", "SecretStore", "local", "k"))
	env.WaitReady(t, ns, "taken", metav1.ConditionFalse, engine.ReasonSecretNotOwned)
	r.waitLogged(t, "the watch started by the waiting ExternalSecret", kube.SecretWatchStartedLog, "an ExternalSecret waits")
	r.waitWatchesEverySecret(t)

	// The person's change wakes it, whether it came before or after the
	// watch synced.
	s := env.GetSecret(t, ns, "taken")
	s.Annotations = map[string]string{engine.AnnotationAdopt: "ExternalSecret/taken"}
	if err := env.Client.Update(ctx, s); err != nil {
		t.Fatal(err)
	}
	env.WaitReady(t, ns, "taken", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "taken", testenv.HasData(map[string]string{"value": "v"}))
	if lines := started(); len(lines) != 1 {
		t.Fatalf("the watch was started %d times: %q", len(lines), lines)
	}
}

// TestSecretMetadataWatchStartsWithTheFirstPushSecret: a PushSecret needs
// to hear of changes to its source Secrets, so the first one reconciled
// starts the watch of every Secret's metadata.
func TestSecretMetadataWatchStartsWithTheFirstPushSecret(t *testing.T) {
	ns := env.Namespace(t)
	r := startOperator(t, func(o *operator.Options) {
		o.Namespace = ns
		o.DisableClusterStores = true
	})
	env.Apply(t, ns, fakeStore("SecretStore", "local", "", "k", "v"))
	env.Apply(t, ns, externalSecret("synced", "SecretStore", "local", "k"))
	env.WaitReady(t, ns, "synced", metav1.ConditionTrue, "SecretSynced")
	if strings.Contains(r.logs.String(), kube.SecretWatchStartedLog) || r.watchesEverySecret(context.Background()) {
		t.Fatal("the watch of every Secret started before any PushSecret or waiting ExternalSecret")
	}
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: push
spec:
  refreshInterval: 1h
  secretStoreRefs: [{name: local, kind: SecretStore}]
  selector: {secret: {name: %s}}
  data:
    - match: {secretKey: value, remoteRef: {remoteKey: pushed}}
`, "synced"))
	r.waitLogged(t, "the watch started by the PushSecret", kube.SecretWatchStartedLog, "a PushSecret pushes")
	r.waitWatchesEverySecret(t)
}

// waitWatchesEverySecret waits for the informer of every Secret's metadata
// once the log says its watch started: the watch (controller-runtime's
// source.Kind) creates it in a goroutine of its own.
func (r *running) waitWatchesEverySecret(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, "an informer of Secret metadata in the cache", func(ctx context.Context) (bool, string) {
		return r.watchesEverySecret(ctx), "the log says the watch started, but the cache has no informer of Secret metadata"
	})
}

// watchesEverySecret reports whether the operator's cache of every
// Secret's metadata has an informer: it refuses reads of a kind it does
// not watch (ErrResourceNotCached), and fails differently once it does
// (it holds kube.SecretRefs, not PartialObjectMetadata).
func (r *running) watchesEverySecret(ctx context.Context) bool {
	list := &metav1.PartialObjectMetadataList{}
	list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
	var notCached *cache.ErrResourceNotCached
	return !errors.As(r.op.SecretMetadata.List(ctx, list), &notCached)
}

// TestHeadStartSyncsTheFirstPageOnce: at start-up the first page of
// ExternalSecrets is synced before the cache holds them all, and the
// controller's first reconcile of each of them finds it synced: every
// ExternalSecret is synced once, whichever path synced it.
func TestHeadStartSyncsTheFirstPageOnce(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("SecretStore", "local", "", "k", "v"))
	const n = 12
	for i := range n {
		env.Apply(t, ns, externalSecret(fmt.Sprintf("es-%02d", i), "SecretStore", "local", "k"))
	}
	r := startOperator(t, func(o *operator.Options) {
		o.Namespace = ns
		o.DisableClusterStores = true
		o.HeadStart = 5
	})
	r.waitLogged(t, "the head start", externalsecret.HeadStartLog, `"externalSecrets":5`)
	for i := range n {
		name := fmt.Sprintf("es-%02d", i)
		env.WaitReady(t, ns, name, metav1.ConditionTrue, "SecretSynced")
		env.WaitSecret(t, ns, name, testenv.HasData(map[string]string{"value": "v"}))
	}
	for i := range n {
		name := fmt.Sprintf("es-%02d", i)
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		reasons := map[string]int{}
		for _, ev := range evs {
			reasons[ev.Reason]++
		}
		if reasons[externalsecret.EventCreated] != 1 || reasons[externalsecret.EventUpdated] != 0 {
			t.Errorf("%s: events %v; want one %s and no %s", name, reasons, externalsecret.EventCreated, externalsecret.EventUpdated)
		}
	}
}

// TestTheOperatorSyncsAfterReleasingItsStartupPages: with
// ReleaseStartupPages the operator drops the mappings of its executable's
// read-only pages at the end of each start-up step (here the test binary's,
// as the operator runs inside it), and the code it runs next maps back in:
// an ExternalSecret created after the last release syncs.
func TestTheOperatorSyncsAfterReleasingItsStartupPages(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("SecretStore", "local", "", "k", "v"))
	r := startOperator(t, func(o *operator.Options) {
		o.Namespace = ns
		o.DisableClusterStores = true
		o.ReleaseStartupPages = true
	})
	for _, step := range []string{"packages initialised", "operator built", "caches synced"} {
		r.waitLogged(t, "the release after "+step, operator.ReleasedStartupPagesLog, `"step":"`+step+`"`, `"mappings":`)
	}
	if strings.Contains(r.logs.String(), `"mappings":0,`) {
		t.Errorf("a release found no mapping of the executable to drop:\n%s", r.logs.String())
	}
	env.Apply(t, ns, externalSecret("after-release", "SecretStore", "local", "k"))
	env.WaitReady(t, ns, "after-release", metav1.ConditionTrue, "SecretSynced")
	env.WaitSecret(t, ns, "after-release", testenv.HasData(map[string]string{"value": "v"}))
}
