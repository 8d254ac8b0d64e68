package pushsecret_test

import (
	"context"
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/pushsecret"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// waitVaultEntry waits until secret/<key> holds exactly fields (KV v2).
func waitVaultEntry(t *testing.T, key string, fields map[string]string) {
	t.Helper()
	testenv.Eventually(t, "secret/"+key+" holds the pushed fields", func(context.Context) (bool, string) {
		got := vaultFields(t, key)
		if len(got) != len(fields) {
			return false, fmt.Sprintf("%d fields, want %d", len(got), len(fields))
		}
		for k, v := range fields {
			if fmt.Sprint(got[k]) != v {
				return false, "field " + k + " differs" // never print values
			}
		}
		return true, ""
	})
}

// ESO's dataTo examples (docs/snippets/pushsecret-datato-*.yaml), applied
// unchanged to a Vault store: every key of the source Secret pushed under
// its own name, only the keys matching a regexp, renamed by a regexp, by
// chained regexps, by a transform template, and explicit data overriding
// dataTo for two keys. Without remoteKey each key is an entry of its own,
// so each value of the source is a JSON object (what Vault stores).
func TestESODataToExamplesPush(t *testing.T) {
	ctx := context.Background()
	val := func(field, v string) string { return fmt.Sprintf(`{"%s":"%s-%s"}`, field, canary, v) }
	// ESO's Vault example (examples/pushsecret/vault) defines a
	// source-secret in default too, with a key that is not a JSON object:
	// start from a Secret holding exactly these keys.
	src := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "source-secret"}}
	if err := env.Client.Delete(ctx, src); client.IgnoreNotFound(err) != nil {
		t.Fatal(err)
	}
	env.Apply(t, "default", fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: source-secret
stringData:
  db-host: '%s'
  db-port: '%s'
  api-key: '%s'
  username: '%s'
`, val("host", "db"), val("port", "5432"), val("key", "api"), val("name", "admin")))
	objs := env.Apply(t, "default", "examples/pushsecret/datato")
	t.Cleanup(func() {
		for _, o := range objs {
			if o.GetKind() == "PushSecret" {
				_ = env.Client.Delete(context.Background(), &esv1alpha1.PushSecret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: o.GetName()}})
			}
		}
	})
	for _, name := range []string{"basic", "regex", "rewrite", "chained", "template", "override"} {
		waitPushReady(t, "default", "pushsecret-datato-"+name, corev1.ConditionTrue, pushsecret.ReasonSynced)
	}
	host := map[string]string{"host": canary + "-db"}
	port := map[string]string{"port": canary + "-5432"}
	for key, fields := range map[string]map[string]string{
		// basic (and regex, override for the keys it does not override)
		"db-host": host, "db-port": port,
		"api-key":  {"key": canary + "-api"},
		"username": {"name": canary + "-admin"},
		// rewrite
		"myapp/database/host": host, "myapp/database/port": port,
		// chained
		"prod/host": host, "prod/port": port,
		// template
		"secrets/DB-HOST": host, "secrets/USERNAME": {"name": canary + "-admin"},
		// override
		"custom/database/hostname": host, "custom/api/secret-key": {"key": canary + "-api"},
	} {
		waitVaultEntry(t, key, fields)
	}
	var ps esv1alpha1.PushSecret
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "pushsecret-datato-override"}, &ps); err != nil {
		t.Fatal(err)
	}
	synced := ps.Status.SyncedPushSecrets["SecretStore/secret-store"]
	for _, k := range []string{"custom/database/hostname", "custom/api/secret-key", "db-port", "username"} {
		if _, ok := synced[k]; !ok {
			t.Errorf("override: syncedPushSecrets lacks %q: %v", k, synced)
		}
	}
	for _, k := range []string{"db-host", "api-key"} {
		if _, ok := synced[k]; ok {
			t.Errorf("override: %q was pushed by dataTo too; explicit data wins", k)
		}
	}
	if d := synced["db-port"]; d.Match.SecretKey != "db-port" || d.Match.RemoteRef.RemoteKey != "db-port" {
		t.Errorf("override: the entry dataTo expanded is recorded as %+v; want ESO's secretKey and remoteKey", d)
	}
	noLeak(t, "default")
}

// dataTo with remoteKey bundles the keys it matches into one remote
// secret (here the fields of one Vault entry), and only those; per-key
// dataTo under deletionPolicy Delete deletes the entry of a key that left
// the source Secret at the next push.
func TestDataToBundlesAndDeletesWhatLeftTheSource(t *testing.T) {
	ns := env.Namespace(t)
	env.Apply(t, ns, fmt.Sprintf(vaultStore, "vault", "vault-token", "vault-token", "root"))
	env.Apply(t, ns, `apiVersion: v1
kind: Secret
metadata:
  name: app
stringData:
  DB_HOST: `+canary+`-host
  DB_USER: `+canary+`-user
  API_TOKEN: `+canary+`-token
  json-a: '{"a":"`+canary+`-a"}'
  json-b: '{"b":"`+canary+`-b"}'
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: app
spec:
  refreshInterval: 0s
  deletionPolicy: Delete
  secretStoreRefs: [{name: vault}]
  selector: {secret: {name: app}}
  dataTo:
    - storeRef: {name: vault}
      remoteKey: `+ns+`/config
      match: {regexp: "^DB_"}
    - storeRef: {name: vault}
      match: {regexp: "^json-"}
      rewrite: [{regexp: {source: "^json-", target: "`+ns+`/"}}]
`)
	waitPushReady(t, ns, "app", corev1.ConditionTrue, pushsecret.ReasonSynced)
	waitVaultEntry(t, ns+"/config", map[string]string{"DB_HOST": canary + "-host", "DB_USER": canary + "-user"})
	waitVaultEntry(t, ns+"/a", map[string]string{"a": canary + "-a"})
	waitVaultEntry(t, ns+"/b", map[string]string{"b": canary + "-b"})

	updateSecret(t, ns, "app", map[string]string{
		"DB_HOST": canary + "-host2", "DB_USER": canary + "-user", "API_TOKEN": canary + "-token", "json-a": `{"a":"` + canary + `-a"}`,
	})
	var s corev1.Secret
	if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "app"}, &s); err != nil {
		t.Fatal(err)
	}
	delete(s.Data, "json-b")
	if err := env.Client.Update(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
	waitVaultEntry(t, ns+"/config", map[string]string{"DB_HOST": canary + "-host2", "DB_USER": canary + "-user"})
	testenv.Eventually(t, "the entry of the key that left the source deleted", func(context.Context) (bool, string) {
		return vaultFields(t, ns+"/b") == nil, ns + "/b still exists"
	})
	if vaultFields(t, ns+"/a") == nil {
		t.Errorf("the entry of a key still in the source was deleted")
	}
	noLeak(t, ns)
}
