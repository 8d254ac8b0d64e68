package pushsecret_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/engine"
	kubeprovider "github.com/keyferry/keyferry/internal/provider/kubernetes"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// waitPushReady waits until the PushSecret's Ready condition has status and
// reason, and returns it.
func waitPushReady(t *testing.T, ns, name string, status corev1.ConditionStatus, reasons ...string) *esv1alpha1.PushSecret {
	t.Helper()
	var ps esv1alpha1.PushSecret
	testenv.Eventually(t, fmt.Sprintf("PushSecret %s/%s Ready=%s %v", ns, name, status, reasons), func(ctx context.Context) (bool, string) {
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); err != nil {
			return false, err.Error()
		}
		for _, c := range ps.Status.Conditions {
			if c.Type == esv1alpha1.PushSecretReady {
				ok := c.Status == status && (len(reasons) == 0 || contains(reasons, c.Reason))
				return ok, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
			}
		}
		return false, "no Ready condition"
	})
	return &ps
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// vaultFields reads the current fields of secret/<key> (KV v2) as root;
// nil when there is no live version.
func vaultFields(t *testing.T, key string) map[string]any {
	t.Helper()
	sec := vaultSrv.Read(t, "secret/data/"+key)
	if sec == nil {
		return nil
	}
	d, _ := sec.Data["data"].(map[string]any)
	return d
}

func waitVaultField(t *testing.T, key, field, want string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("secret/%s field %s", key, field), func(context.Context) (bool, string) {
		got := fmt.Sprint(vaultFields(t, key)[field])
		return got == want, "field has another value" // never print values
	})
}

func updateSecret(t *testing.T, ns, name string, data map[string]string) {
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

const vaultStore = `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: %s
spec:
  provider:
    vault:
      server: "http://my.vault.server:8200"
      path: secret
      version: v2
      auth:
        tokenSecretRef: {name: %s, key: token}
---
apiVersion: v1
kind: Secret
metadata:
  name: %s
stringData:
  token: %s
`

func pushSecretYAML(name, store, policy, deletion, source string, data ...[3]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: %s
spec:
  refreshInterval: 1h
  updatePolicy: %s
  deletionPolicy: %s
  secretStoreRefs:
    - name: %s
      kind: SecretStore
  selector:
    secret:
      name: %s
  data:
`, name, policy, deletion, store, source)
	for _, d := range data {
		fmt.Fprintf(&b, "    - match:\n        secretKey: %s\n        remoteRef:\n          remoteKey: %s\n          property: %s\n", d[0], d[1], d[2])
	}
	return b.String()
}

// ESO's PushSecret example of the HashiCorp Vault guide, applied unchanged:
// a JSON key becomes the entry, a plain key one property of it.
func TestESOVaultPushSecretExamplePushes(t *testing.T) {
	env.Apply(t, "default", "examples/pushsecret/vault")
	ps := waitPushReady(t, "default", "pushsecret-example", corev1.ConditionTrue, pushsecret.ReasonSynced)
	if got := vaultFields(t, "vault/secret1"); fmt.Sprint(got) != "map[foo:bar]" {
		t.Errorf("secret/vault/secret1 = %v; want {foo: bar} (source-key1's JSON object)", got)
	}
	if got := vaultFields(t, "vault/secret2"); fmt.Sprint(got) != "map[foo:bar]" {
		t.Errorf("secret/vault/secret2 = %v; want {foo: bar} (source-key2 in property foo)", got)
	}
	for _, key := range []string{"vault/secret1", "vault/secret2"} {
		md := vaultSrv.Read(t, "secret/metadata/"+key)
		if custom, _ := md.Data["custom_metadata"].(map[string]any); custom["managed-by"] != "external-secrets" {
			t.Errorf("secret/%s custom_metadata = %v; want ESO's managed-by mark", key, custom)
		}
	}
	synced := ps.Status.SyncedPushSecrets["SecretStore/vault-secretstore"]
	if _, ok := synced["vault/secret1"]; !ok {
		t.Errorf("syncedPushSecrets = %v; want vault/secret1", ps.Status.SyncedPushSecrets)
	}
	if _, ok := synced["vault/secret2/foo"]; !ok {
		t.Errorf("syncedPushSecrets = %v; want vault/secret2/foo", ps.Status.SyncedPushSecrets)
	}
}

func TestVaultPushLifecycle(t *testing.T) {
	ctx := context.Background()
	ns := env.Namespace(t)
	env.Apply(t, ns, fmt.Sprintf(vaultStore, "vault", "vault-token", "vault-token", "root"))
	env.Apply(t, ns, fmt.Sprintf(vaultStore, "vault-bad", "bad-token", "bad-token", "not-a-token"))
	env.Apply(t, ns, fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: %s-1
  user: app
`, canary))
	db := ns + "/db"
	env.Apply(t, ns, pushSecretYAML("db-push", "vault", "Replace", "Delete", "db",
		[3]string{"password", db, "password"}, [3]string{"user", db, "user"}))

	t.Run("push creates the remote entry", func(t *testing.T) {
		ps := waitPushReady(t, ns, "db-push", corev1.ConditionTrue, pushsecret.ReasonSynced)
		if got := vaultFields(t, db); got["password"] != canary+"-1" || got["user"] != "app" {
			t.Fatal("the entry does not hold the pushed values")
		}
		if !contains(ps.Finalizers, pushsecret.Finalizer) {
			t.Fatalf("finalizers = %v; want ESO's %s under deletionPolicy Delete", ps.Finalizers, pushsecret.Finalizer)
		}
		if n := len(ps.Status.SyncedPushSecrets["SecretStore/vault"]); n != 2 {
			t.Fatalf("syncedPushSecrets = %v; want two entries", ps.Status.SyncedPushSecrets)
		}
	})

	t.Run("a changed source is pushed", func(t *testing.T) {
		updateSecret(t, ns, "db", map[string]string{"password": canary + "-2", "user": "app"})
		waitVaultField(t, db, "password", canary+"-2")
	})

	foreign := ns + "/foreign"
	vaultSrv.PutKV(t, "secret", 2, foreign, map[string]any{"password": canary + "-theirs"})
	t.Run("a remote entry keyferry did not create is not overwritten", func(t *testing.T) {
		env.Apply(t, ns, pushSecretYAML("to-foreign", "vault", "Replace", "None", "db", [3]string{"password", foreign, "password"}))
		ps := waitPushReady(t, ns, "to-foreign", corev1.ConditionFalse, pushsecret.ReasonRemoteNotManaged)
		if got := vaultFields(t, foreign); got["password"] != canary+"-theirs" {
			t.Fatal("the foreign entry was overwritten")
		}
		if msg := ps.Status.Conditions[0].Message; !strings.Contains(msg, foreign) {
			t.Fatalf("message %q does not name the remote key", msg)
		}
	})

	t.Run("IfNotExists leaves an existing remote value", func(t *testing.T) {
		env.Apply(t, ns, pushSecretYAML("keep", "vault", "IfNotExists", "None", "db", [3]string{"password", foreign, "password"}))
		ps := waitPushReady(t, ns, "keep", corev1.ConditionTrue, pushsecret.ReasonSynced)
		if !strings.Contains(ps.Status.Conditions[0].Message, "unchanged") {
			t.Fatalf("message %q does not say the existing secret was left unchanged", ps.Status.Conditions[0].Message)
		}
		if got := vaultFields(t, foreign); got["password"] != canary+"-theirs" {
			t.Fatal("IfNotExists overwrote the existing entry")
		}
	})

	t.Run("a failing store leaves the remote unchanged and says why", func(t *testing.T) {
		env.Apply(t, ns, pushSecretYAML("bad", "vault-bad", "Replace", "None", "db", [3]string{"user", db, "password"}))
		ps := waitPushReady(t, ns, "bad", corev1.ConditionFalse, engine.ReasonForbidden, engine.ReasonUnauthenticated)
		if msg := ps.Status.Conditions[0].Message; !strings.Contains(msg, "vault-bad") {
			t.Fatalf("message %q does not name the store", msg)
		}
		if got := vaultFields(t, db); got["password"] != canary+"-2" {
			t.Fatal("the remote value changed")
		}
	})

	t.Run("deletionPolicy Delete removes only what was pushed", func(t *testing.T) {
		var ps esv1alpha1.PushSecret
		ps.Namespace, ps.Name = ns, "db-push"
		if err := env.Client.Delete(ctx, &ps); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "the PushSecret gone and its entry deleted", func(ctx context.Context) (bool, string) {
			err := env.Client.Get(ctx, client.ObjectKeyFromObject(&ps), &ps)
			if !apierrors.IsNotFound(err) {
				return false, fmt.Sprintf("PushSecret still there (finalizers %v)", ps.Finalizers)
			}
			return vaultSrv.Read(t, "secret/metadata/"+db) == nil, "the pushed entry still exists"
		})
		if got := vaultFields(t, foreign); got["password"] != canary+"-theirs" {
			t.Fatal("the foreign entry was touched")
		}
	})
	noLeak(t, ns)
}

// ESO's PushSecret example of the Kubernetes provider guide, applied
// unchanged, with the store and the Role the guide describes: the remote
// Secret in another namespace of the same API server.
func TestKubernetesPush(t *testing.T) {
	ctx := context.Background()
	ns, remote := env.Namespace(t), env.Namespace(t)
	env.Apply(t, ns, "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: pusher\n")
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
	// The store authenticates with a token of pusher kept in a Secret
	// (ESO's auth.token); a serviceAccount reference would send a token the
	// API server accepts to a server URL, which only the platform may allow
	// (docs/security.md).
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
---
apiVersion: v1
kind: Secret
metadata:
  name: pokedex-credentials
stringData:
  best-pokemon: %s-pikachu
`, remote, env.Cluster.Config.Host, base64.StdEncoding.EncodeToString(env.Cluster.Config.CAData), canary))
	env.Apply(t, ns, "examples/pushsecret/kubernetes")

	remoteSecret := func(name string) *corev1.Secret {
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: remote, Name: name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return nil
			}
			t.Fatal(err)
		}
		return &s
	}

	t.Run("push creates the remote Secret, marked", func(t *testing.T) {
		waitPushReady(t, ns, "example", corev1.ConditionTrue, pushsecret.ReasonSynced)
		s := remoteSecret("remote-best-pokemon")
		if s == nil || string(s.Data["best-pokemon"]) != canary+"-pikachu" {
			t.Fatal("the remote Secret does not hold the pushed value")
		}
		if s.Labels[kubeprovider.LabelPushed] != "true" {
			t.Fatalf("labels = %v; want %s", s.Labels, kubeprovider.LabelPushed)
		}
	})

	t.Run("a changed source is pushed", func(t *testing.T) {
		updateSecret(t, ns, "pokedex-credentials", map[string]string{"best-pokemon": canary + "-eevee"})
		testenv.Eventually(t, "the remote Secret updated", func(context.Context) (bool, string) {
			s := remoteSecret("remote-best-pokemon")
			return s != nil && string(s.Data["best-pokemon"]) == canary+"-eevee", "not updated yet"
		})
	})

	t.Run("a remote Secret keyferry did not create is not overwritten", func(t *testing.T) {
		theirs := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: remote, Name: "foreign"},
			Data: map[string][]byte{"best-pokemon": []byte(canary + "-theirs")}}
		if err := env.Client.Create(ctx, theirs); err != nil {
			t.Fatal(err)
		}
		env.Apply(t, ns, pushSecretYAML("to-foreign", "k8s-store-remote-ns", "Replace", "Delete", "pokedex-credentials",
			[3]string{"best-pokemon", "foreign", "best-pokemon"}))
		waitPushReady(t, ns, "to-foreign", corev1.ConditionFalse, pushsecret.ReasonRemoteNotManaged)
		if s := remoteSecret("foreign"); s == nil || string(s.Data["best-pokemon"]) != canary+"-theirs" {
			t.Fatal("the foreign Secret was overwritten")
		}
	})

	t.Run("deletionPolicy Delete removes only what was pushed", func(t *testing.T) {
		env.Apply(t, ns, pushSecretYAML("pushed-then-deleted", "k8s-store-remote-ns", "Replace", "Delete", "pokedex-credentials",
			[3]string{"best-pokemon", "to-delete", "x"}))
		waitPushReady(t, ns, "pushed-then-deleted", corev1.ConditionTrue, pushsecret.ReasonSynced)
		if remoteSecret("to-delete") == nil {
			t.Fatal("nothing was pushed")
		}
		for _, name := range []string{"pushed-then-deleted", "to-foreign"} {
			ps := &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
			if err := env.Client.Delete(ctx, ps); err != nil {
				t.Fatal(err)
			}
		}
		testenv.Eventually(t, "the pushed Secret deleted", func(ctx context.Context) (bool, string) {
			for _, name := range []string{"pushed-then-deleted", "to-foreign"} {
				var ps esv1alpha1.PushSecret
				if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &ps); !apierrors.IsNotFound(err) {
					return false, "PushSecret " + name + " still there"
				}
			}
			return remoteSecret("to-delete") == nil, "to-delete still exists"
		})
		if s := remoteSecret("foreign"); s == nil || string(s.Data["best-pokemon"]) != canary+"-theirs" {
			t.Fatal("the foreign Secret was touched")
		}
		if remoteSecret("remote-best-pokemon") == nil {
			t.Fatal("the Secret another PushSecret pushed was deleted")
		}
	})
	noLeak(t, ns)
}

func ptr[T any](v T) *T { return &v }
