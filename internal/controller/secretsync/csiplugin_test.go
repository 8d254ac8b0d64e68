package secretsync_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/kube"
	"github.com/keyferry/keyferry/internal/operator"
	"github.com/keyferry/keyferry/internal/provider/csiplugin"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	plugin "github.com/keyferry/keyferry/internal/testing/testserver/csiplugin"
)

// startOperatorWithPlugins runs the operator as the controller command
// builds it (every provider, plus the CSI provider plugins in dir), serving
// only namespace ns.
func startOperatorWithPlugins(t *testing.T, ns string, poll time.Duration, plugins csiplugin.Options) *running {
	t.Helper()
	logs := &testenv.LogBuffer{}
	testenv.StartOperator(t, env.Cluster.Config, operator.Options{
		MetricsAddr: "0", HealthAddr: "0",
		Namespace:                      ns,
		Concurrency:                    4,
		SecretSyncRotationPollInterval: poll,
		StoreProbeInterval:             time.Second,
		StartupSpread:                  time.Second,
		CSIPlugins:                     plugins,
		Log:                            testenv.DebugLogger(logs),
		SkipControllerNameValidation:   true,
	})
	op := &running{logs: logs}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator log:\n%s", op.logs.String())
		}
	})
	return op
}

// acmeManifests is a ServiceAccount, a SecretProviderClass of provider
// acme (served only by its plugin) and a SecretSync mapping its files.
func acmeManifests(name string, data ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: reader
---
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: acme-%[1]s
spec:
  provider: acme
  parameters:
    vaultName: team-a
    objects: |
      - db-username
      - db-password
      - api-key
---
apiVersion: secret-sync.x-k8s.io/v1alpha1
kind: SecretSync
metadata:
  name: %[1]s
spec:
  serviceAccountName: reader
  secretProviderClassName: acme-%[1]s
  secretObject:
    type: Opaque
    data:
`, name)
	for i := 0; i+1 < len(data); i += 2 {
		fmt.Fprintf(&b, "    - sourcePath: %s\n      targetKey: %s\n", data[i], data[i+1])
	}
	return b.String()
}

// secretVersion returns the Secret's resourceVersion.
func secretVersion(t *testing.T, ns, name string) string {
	t.Helper()
	var s corev1.Secret
	if err := env.Client.Get(ctxFor(t), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
		t.Fatal(err)
	}
	return s.ResourceVersion
}

// waitFailure waits until the SecretSync's SecretUpdated condition is
// UpdateFailedProviderError with a message that contains want, and checks
// that the Secret was not written meanwhile.
func waitFailure(t *testing.T, ns, name, want, rv string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("SecretSync %s/%s to fail with %q", ns, name, want), func(ctx context.Context) (bool, string) {
		ss, err := getSecretSync(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeUpdate)
		if c == nil {
			return false, "no SecretUpdated condition"
		}
		ok := c.Reason == ssv1.ReasonUpdateFailedProviderError && c.Status == metav1.ConditionFalse && strings.Contains(c.Message, want)
		return ok, fmt.Sprintf("condition %s %s: %s", c.Status, c.Reason, c.Message)
	})
	if got := secretVersion(t, ns, name); got != rv {
		t.Fatalf("the Secret was written while the plugin failed")
	}
}

// waitSucceeded waits until the SecretSync's SecretUpdated condition is
// True for its current generation.
func waitSucceeded(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("SecretSync %s/%s to sync again", ns, name), func(ctx context.Context) (bool, string) {
		ss, err := getSecretSync(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeUpdate)
		if c == nil {
			return false, "no SecretUpdated condition"
		}
		ok := c.Status == metav1.ConditionTrue && c.ObservedGeneration == ss.Generation &&
			(c.Reason == ssv1.ReasonUpdateValueChangeOrForceUpdateSucceeded || c.Reason == ssv1.ReasonUpdateNoValueChangeSucceeded)
		return ok, fmt.Sprintf("condition %s %s (generation %d of %d)", c.Status, c.Reason, c.ObservedGeneration, ss.Generation)
	})
}

// A SecretSync whose SecretProviderClass names a provider keyferry has no
// native provider for syncs through that provider's CSI plugin, over the
// plugin's gRPC socket; a failing, dead or slow plugin leaves the Secret as
// it was and says why.
func TestSecretSyncThroughACSIProviderPlugin(t *testing.T) {
	ns := env.Namespace(t)
	dir := plugin.SocketDir(t)
	acme := plugin.Start(t, dir, "acme")
	acme.SetFile("db-username", []byte("app-"+canary), "1")
	acme.SetFile("db-password", []byte("pw1-"+canary), "1")
	acme.SetFile("api-key", []byte("key-"+canary), "4")
	op := startOperatorWithPlugins(t, ns, time.Hour, csiplugin.Options{Dir: dir, Audiences: []string{"api://acme"}, Timeout: 2 * time.Second})

	env.Apply(t, ns, acmeManifests("acme-sync", "db-username", "username", "db-password", "password", "api-key", "api-key"))
	waitData(t, ns, "acme-sync", map[string]string{"username": "app-" + canary, "password": "pw1-" + canary, "api-key": "key-" + canary})
	waitCondition(t, ns, "acme-sync", ssv1.ConditionTypeCreate, ssv1.ReasonCreateSucceeded)

	t.Run("one Mount serves every file, as the SecretSync's ServiceAccount", func(t *testing.T) {
		reqs := acme.Requests()
		if len(reqs) != 1 {
			t.Fatalf("%d Mounts for one sync of three files", len(reqs))
		}
		a := reqs[0].Attributes
		if a["vaultName"] != "team-a" || !strings.Contains(a["objects"], "db-password") {
			t.Fatalf("the class's parameters were not sent: %v", slices.Sorted(maps.Keys(a)))
		}
		if a["csi.storage.k8s.io/pod.namespace"] != ns || a["csi.storage.k8s.io/serviceAccount.name"] != "reader" {
			t.Fatalf("pod namespace %q, service account %q", a["csi.storage.k8s.io/pod.namespace"], a["csi.storage.k8s.io/serviceAccount.name"])
		}
		tok := tokenFor(t, a["csi.storage.k8s.io/serviceAccount.tokens"], "api://acme")
		auds, err := kube.TokenAudiences(tok)
		if err != nil || !slices.Equal(auds, []string{"api://acme"}) {
			t.Fatalf("token audiences %v (%v)", auds, err)
		}
	})
	t.Run("a new version updates the Secret", func(t *testing.T) {
		acme.SetFile("db-password", []byte("pw2-"+canary), "2")
		patchForce(t, ns, "acme-sync", "rotate-1")
		waitData(t, ns, "acme-sync", map[string]string{"username": "app-" + canary, "password": "pw2-" + canary, "api-key": "key-" + canary})
		waitCondition(t, ns, "acme-sync", ssv1.ConditionTypeUpdate, ssv1.ReasonUpdateValueChangeOrForceUpdateSucceeded)
		reqs := acme.Requests()
		if v := reqs[len(reqs)-1].Versions; v["db-password"] != "1" || v["api-key"] != "4" {
			t.Fatalf("the Mount did not send the current versions: %v", v)
		}
	})
	want := map[string]string{"username": "app-" + canary, "password": "pw2-" + canary, "api-key": "key-" + canary}
	// recover forces a sync once the plugin is fixed and waits until the
	// SecretSync reports success again (the forced sync, or the re-sync of
	// the objects that waited for the class, whichever reports last).
	recover := func(t *testing.T, force string) {
		t.Helper()
		patchForce(t, ns, "acme-sync", force)
		waitSucceeded(t, ns, "acme-sync")
		waitData(t, ns, "acme-sync", want)
	}
	t.Run("a plugin error keeps the Secret", func(t *testing.T) {
		rv := secretVersion(t, ns, "acme-sync")
		acme.SetErrorCode("AccessDenied")
		acme.SetFile("db-password", []byte("never-"+canary), "9")
		patchForce(t, ns, "acme-sync", "error-1")
		waitFailure(t, ns, "acme-sync", `error code "AccessDenied"`, rv)
		waitEvent(t, ns, "acme-sync", corev1.EventTypeWarning, ssv1.ReasonUpdateFailedProviderError)
		acme.SetErrorCode("")
		acme.SetFile("db-password", []byte("pw2-"+canary), "2")
		recover(t, "error-2")
	})
	t.Run("a dead plugin keeps the Secret", func(t *testing.T) {
		rv := secretVersion(t, ns, "acme-sync")
		acme.Stop()
		patchForce(t, ns, "acme-sync", "dead-1")
		waitFailure(t, ns, "acme-sync", "is not answering", rv)
		acme.Restart()
		recover(t, "dead-2")
	})
	t.Run("a missing plugin socket keeps the Secret", func(t *testing.T) {
		rv := secretVersion(t, ns, "acme-sync")
		acme.RemoveSocket()
		patchForce(t, ns, "acme-sync", "gone-1")
		waitFailure(t, ns, "acme-sync", "no CSI provider plugin socket", rv)
		acme.Restart()
		recover(t, "gone-2")
	})
	t.Run("a slow plugin times out and keeps the Secret", func(t *testing.T) {
		rv := secretVersion(t, ns, "acme-sync")
		acme.SetDelay(time.Minute)
		patchForce(t, ns, "acme-sync", "slow-1")
		waitFailure(t, ns, "acme-sync", "did not answer the Mount within 2s", rv)
		acme.SetDelay(0)
		recover(t, "slow-2")
	})
	t.Run("a plugin that writes its files itself is named", func(t *testing.T) {
		rv := secretVersion(t, ns, "acme-sync")
		acme.SetWritesFiles(t.TempDir())
		patchForce(t, ns, "acme-sync", "writes-1")
		waitFailure(t, ns, "acme-sync", "returned no files", rv)
		acme.SetWritesFiles("")
		recover(t, "writes-2")
	})
	assertNoLeak(t, op, ns)
}

// With the rotation poll interval, a new version the plugin returns
// reaches the Secret without anyone touching the SecretSync, and a poll
// that finds nothing new writes nothing.
func TestCSIProviderPluginRotationPoll(t *testing.T) {
	ns := env.Namespace(t)
	dir := plugin.SocketDir(t)
	acme := plugin.Start(t, dir, "acme")
	acme.SetFile("api-key", []byte("one-"+canary), "1")
	op := startOperatorWithPlugins(t, ns, 2*time.Second, csiplugin.Options{Dir: dir, Timeout: 2 * time.Second})

	env.Apply(t, ns, acmeManifests("polled", "api-key", "api-key"))
	waitData(t, ns, "polled", map[string]string{"api-key": "one-" + canary})
	waitCondition(t, ns, "polled", ssv1.ConditionTypeUpdate, ssv1.ReasonUpdateNoValueChangeSucceeded)
	acme.SetFile("api-key", []byte("two-"+canary), "2")
	waitData(t, ns, "polled", map[string]string{"api-key": "two-" + canary})
	// The condition may already be back at UpdateNoValueChangeSucceeded
	// (the next poll); the Event stays.
	waitEvent(t, ns, "polled", corev1.EventTypeNormal, ssv1.ReasonUpdateValueChangeOrForceUpdateSucceeded)
	assertNoLeak(t, op, ns)
}

// Without --csi-provider-dir, a SecretProviderClass of a provider keyferry
// does not serve natively is refused with the providers it does serve.
func TestCSIProviderPluginsAreOffByDefault(t *testing.T) {
	ns := env.Namespace(t)
	startOperatorWithPlugins(t, ns, time.Hour, csiplugin.Options{})
	env.Apply(t, ns, acmeManifests("no-plugins", "api-key", "api-key"))
	ss := waitCondition(t, ns, "no-plugins", ssv1.ConditionTypeCreate, ssv1.ReasonControllerSpcError)
	c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate)
	if !strings.Contains(c.Message, `uses provider "acme"`) {
		t.Fatalf("condition message %q", c.Message)
	}
}

// tokenFor returns the token for audience in a
// csi.storage.k8s.io/serviceAccount.tokens attribute.
func tokenFor(t *testing.T, attr, audience string) string {
	t.Helper()
	var toks map[string]struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(attr), &toks); err != nil {
		t.Fatalf("tokens attribute: %v", err)
	}
	tok := toks[audience].Token
	if tok == "" {
		t.Fatalf("no token for audience %s (audiences: %v)", audience, slices.Sorted(maps.Keys(toks)))
	}
	return tok
}
