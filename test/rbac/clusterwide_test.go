package rbac

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/clusterexternalsecret"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
	"github.com/keyferry/keyferry/internal/provider/fake"
	"github.com/keyferry/keyferry/internal/provider/kubernetes"
	"github.com/keyferry/keyferry/internal/testing/testenv"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// The identity of examples/secretsync (see its manifests).
const (
	exampleNamespace = "my-namespace"
	exampleSA        = "my-service-account"
	exampleClientID  = "3b9e0f4c-6a1d-4f2e-9c7b-5d8a2e1f0c34"
	exampleTenantID  = "8d2f6c1a-0b4e-4a7d-b3c9-1e5f7a9d2b60"
)

// The chart's default install plus leader election, as a platform team
// would run it (two replicas need it): every front-end and provider path
// below runs as the chart's ServiceAccount.
func TestClusterWideInstallSyncsEveryFrontEndAsTheChartsServiceAccount(t *testing.T) {
	const release = "keyferry"
	objs := install(t, release, map[string]any{"leaderElect": true, "replicaCount": 2})
	cfg := serviceAccountConfig(t, releaseNamespace, release)

	// The Key Vault server of the SecretSync path trusts the API server's
	// ServiceAccount tokens, as Entra ID trusts an AKS cluster's issuer.
	kv := kvserver.New(t, kvserver.Options{TenantID: exampleTenantID, VaultName: "my-kv"})
	issuer := kv.TrustKubernetesIssuer(ctxFor(t, time.Minute), t, admin)
	kv.AddApp(kvserver.App{ClientID: exampleClientID, Access: kvserver.SecretsGet | kvserver.SecretsList,
		Federated: []kvserver.FederatedCredential{{Issuer: issuer, Subject: "system:serviceaccount:" + exampleNamespace + ":" + exampleSA}}})
	kv.SetSecret("my-secret", "version-1")
	kv.SetSecret("my-secret", "version-2")
	router := kv.Router()
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	reg.Register("kubernetes", kubernetes.New(cfg))
	reg.Register(azurekv.Name, azurekv.NewWithOptions(azurekv.Options{
		Transport: router, AuthorityHost: kv.AuthorityHost(), DisableChallengeResourceVerification: true,
		LookupEnv: func(string) (string, bool) { return "", false },
	}))
	reg.RegisterClass(azurekv.ClassName, azurekv.Name) // SecretProviderClasses with provider azure

	op := startOperator(t, cfg, objs, reg)

	t.Run("leader election takes the keyferry.io Lease in the release namespace", func(t *testing.T) {
		testenv.Eventually(t, "the keyferry.io Lease to have a holder", func(ctx context.Context) (bool, string) {
			var lease coordinationv1.Lease
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "keyferry.io"}, &lease); err != nil {
				return false, err.Error()
			}
			return lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "", "no holder yet"
		})
	})

	// Namespace a is also provisioned by the ClusterExternalSecret and
	// carries ESO's finalizer for it, as ESO leaves namespaces.
	nsA, nsB := "rbac-a", "rbac-b"
	ensureNamespace(t, nsA, "rbac-test", "ces")
	ensureNamespace(t, nsB, "rbac-test", "ces")
	addNamespaceFinalizer(t, nsA, clusterexternalsecret.ESONamespaceFinalizer("rbac-ces"))

	t.Run("the quickstart (fake provider, a template, an owned Secret) syncs", func(t *testing.T) {
		env.Apply(t, nsA, "examples/quickstart")
		env.WaitStoreReady(t, nsA, "quickstart")
		env.WaitReady(t, nsA, "database", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
		s := env.WaitSecret(t, nsA, "database-credentials", testenv.HasData(map[string]string{"username": "app"}))
		if ref := metav1.GetControllerOf(s); ref == nil || ref.Kind != "ExternalSecret" || ref.BlockOwnerDeletion == nil || !*ref.BlockOwnerDeletion {
			t.Fatalf("the Secret is not owned with blockOwnerDeletion: %+v", ref)
		}
		waitEvent(t, nsA, "database")
	})

	t.Run("templateFrom a ConfigMap syncs", func(t *testing.T) {
		env.Apply(t, nsA, `apiVersion: v1
kind: ConfigMap
metadata:
  name: dsn-template
data:
  dsn: "postgres://{{ .username }}@{{ .host }}/app"
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: templated
spec:
  refreshInterval: 1h
  secretStoreRef: {kind: SecretStore, name: quickstart}
  target:
    name: templated
    template:
      templateFrom:
        - configMap:
            name: dsn-template
            items:
              - key: dsn
                templateAs: Values
  data:
    - secretKey: username
      remoteRef: {key: /demo/db, property: username}
    - secretKey: host
      remoteRef: {key: /demo/host}
`)
		env.WaitReady(t, nsA, "templated", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
		env.WaitSecret(t, nsA, "templated", testenv.HasData(map[string]string{"dsn": "postgres://app@db.demo.svc:5432/app"}))
	})

	t.Run("ESO kinds keyferry does not implement get Ready=False Unsupported", func(t *testing.T) {
		// Generators keyferry does not run (those it runs for
		// ExternalSecrets it reports nothing on: docs/generators.md).
		env.Apply(t, nsA, `apiVersion: generators.external-secrets.io/v1alpha1
kind: GithubAccessToken
metadata:
  name: my-github
spec: {appID: "1", installID: "2"}
`)
		env.Apply(t, "", `apiVersion: generators.external-secrets.io/v1alpha1
kind: ClusterGenerator
metadata:
  name: rbac-github
spec:
  kind: GithubAccessToken
  generator:
    githubAccessTokenSpec: {appID: "1", installID: "2"}
`)
		for _, o := range []struct{ apiVersion, kind, ns, name string }{
			{"generators.external-secrets.io/v1alpha1", "GithubAccessToken", nsA, "my-github"},
			{"generators.external-secrets.io/v1alpha1", "ClusterGenerator", "", "rbac-github"},
		} {
			testenv.Eventually(t, o.kind+" "+o.name+" Unsupported", func(ctx context.Context) (bool, string) {
				u := &unstructured.Unstructured{}
				u.SetAPIVersion(o.apiVersion)
				u.SetKind(o.kind)
				if err := env.Client.Get(ctx, client.ObjectKey{Namespace: o.ns, Name: o.name}, u); err != nil {
					return false, err.Error()
				}
				conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
				for _, c := range conds {
					if m, ok := c.(map[string]any); ok && m["type"] == "Ready" && m["reason"] == "Unsupported" {
						return true, ""
					}
				}
				return false, fmt.Sprintf("conditions %v", conds)
			})
		}
	})

	t.Run("a PushSecret pushes, keeps ESO's finalizer and is deleted", func(t *testing.T) {
		// Status patch, finalizer update, the source Secret read live and
		// its metadata watched, all as the chart's ServiceAccount.
		env.Apply(t, nsA, `apiVersion: v1
kind: Secret
metadata:
  name: push-source
stringData:
  k: v
---
apiVersion: external-secrets.io/v1alpha1
kind: PushSecret
metadata:
  name: rbac-push
spec:
  deletionPolicy: Delete
  secretStoreRefs: [{name: quickstart}]
  selector: {secret: {name: push-source}}
  data:
    - match: {secretKey: k, remoteRef: {remoteKey: pushed-by-rbac}}
`)
		ps := &unstructured.Unstructured{}
		ps.SetAPIVersion("external-secrets.io/v1alpha1")
		ps.SetKind("PushSecret")
		testenv.Eventually(t, "PushSecret rbac-push Synced with ESO's finalizer", func(ctx context.Context) (bool, string) {
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsA, Name: "rbac-push"}, ps); err != nil {
				return false, err.Error()
			}
			conds, _, _ := unstructured.NestedSlice(ps.Object, "status", "conditions")
			for _, c := range conds {
				if m, ok := c.(map[string]any); ok && m["type"] == "Ready" && m["reason"] == "Synced" {
					return controllerutil.ContainsFinalizer(ps, "pushsecret.externalsecrets.io/finalizer"), fmt.Sprintf("finalizers %v", ps.GetFinalizers())
				}
			}
			return false, fmt.Sprintf("conditions %v", conds)
		})
		if err := env.Client.Delete(context.Background(), ps); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "PushSecret rbac-push gone", func(ctx context.Context) (bool, string) {
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsA, Name: "rbac-push"}, ps)
			return apierrors.IsNotFound(err), fmt.Sprintf("get: %v", err)
		})
	})

	t.Run("a ClusterPushSecret provisions a PushSecret that pushes, and deletes it when the namespace stops matching", func(t *testing.T) {
		// ClusterPushSecrets watched and their status patched; PushSecrets
		// created with blockOwnerDeletion (OwnerReferencesPermissionEnforcement
		// is on) and deleted, all as the chart's ServiceAccount.
		const nsP = "rbac-cps"
		ensureNamespace(t, nsP, "rbac-cps", "yes")
		env.Apply(t, nsP, `apiVersion: v1
kind: Secret
metadata:
  name: cps-source
stringData:
  k: v
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: cps-store
spec:
  provider:
    fake:
      data: []
`)
		cps := func(selected string) string {
			return `apiVersion: external-secrets.io/v1alpha1
kind: ClusterPushSecret
metadata:
  name: rbac-cps
spec:
  pushSecretName: rbac-cps-ps
  namespaceSelectors:
    - matchLabels: {rbac-cps: "` + selected + `"}
  pushSecretSpec:
    deletionPolicy: Delete
    secretStoreRefs: [{name: cps-store, kind: SecretStore}]
    selector: {secret: {name: cps-source}}
    data:
      - match: {secretKey: k, remoteRef: {remoteKey: pushed-by-cps, property: p}}
`
		}
		env.Apply(t, "", cps("yes"))
		t.Cleanup(func() {
			_ = env.Client.Delete(context.Background(), &esv1alpha1.ClusterPushSecret{ObjectMeta: metav1.ObjectMeta{Name: "rbac-cps"}})
		})
		testenv.Eventually(t, "PushSecret rbac-cps-ps Synced", func(ctx context.Context) (bool, string) {
			var ps esv1alpha1.PushSecret
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsP, Name: "rbac-cps-ps"}, &ps); err != nil {
				return false, err.Error()
			}
			for _, c := range ps.Status.Conditions {
				if c.Type == esv1alpha1.PushSecretReady {
					return c.Reason == "Synced", fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
				}
			}
			return false, "no Ready condition"
		})
		testenv.Eventually(t, "ClusterPushSecret rbac-cps Ready", func(ctx context.Context) (bool, string) {
			var c esv1alpha1.ClusterPushSecret
			if err := env.Client.Get(ctx, client.ObjectKey{Name: "rbac-cps"}, &c); err != nil {
				return false, err.Error()
			}
			for _, cond := range c.Status.Conditions {
				if cond.Type == esv1alpha1.PushSecretReady {
					return cond.Status == corev1.ConditionTrue, fmt.Sprintf("Ready=%s %s: %s", cond.Status, cond.Reason, cond.Message)
				}
			}
			return false, fmt.Sprintf("status %+v", c.Status)
		})
		env.Apply(t, "", cps("no"))
		testenv.Eventually(t, "PushSecret rbac-cps-ps gone", func(ctx context.Context) (bool, string) {
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsP, Name: "rbac-cps-ps"}, &esv1alpha1.PushSecret{})
			return apierrors.IsNotFound(err), fmt.Sprintf("get: %v", err)
		})
	})

	t.Run("ESO's Password and ClusterGenerator examples generate their Secrets", func(t *testing.T) {
		env.Apply(t, nsA, "examples/generators/password.yaml")
		env.Apply(t, nsA, "examples/generators/cluster.yaml")
		for _, o := range []struct{ es, secret string }{{"password", "password-secret"}, {"cluster-secret", "cluster-secret"}} {
			env.WaitReady(t, nsA, o.es, metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
			env.WaitSecret(t, nsA, o.secret, func(s *corev1.Secret) (bool, string) {
				return len(s.Data["password"]) == 42, "no 42-character password"
			})
		}
	})

	t.Run("the kubernetes provider reads another namespace with a ServiceAccount token it requests", func(t *testing.T) {
		const remote = "rbac-remote"
		ensureNamespace(t, remote)
		env.Apply(t, remote, `apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: from-the-remote-namespace
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: read-secrets
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    verbs: ["get", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: reader
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read-secrets}
subjects:
  - {kind: ServiceAccount, name: reader, namespace: `+nsA+`}
`)
		env.Apply(t, nsA, fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: reader
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: remote
spec:
  provider:
    kubernetes:
      remoteNamespace: %s
      server:
        url: %s
        caBundle: %s
      auth:
        serviceAccount:
          name: reader
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: remote
spec:
  refreshInterval: 1h
  secretStoreRef: {kind: SecretStore, name: remote}
  target: {name: remote}
  data:
    - secretKey: password
      remoteRef: {key: db, property: password}
`, remote, apiServerURL(admin), base64.StdEncoding.EncodeToString(admin.CAData)))
		env.WaitStoreReady(t, nsA, "remote")
		env.WaitReady(t, nsA, "remote", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
		env.WaitSecret(t, nsA, "remote", testenv.HasData(map[string]string{"password": "from-the-remote-namespace"}))
	})

	t.Run("an Azure Key Vault store with workload identity reads its ServiceAccount and requests its token", func(t *testing.T) {
		const clientID = "5e1d7c2a-9b3f-4e8d-a6c1-2f4b8d9e0a17"
		kv.AddApp(kvserver.App{ClientID: clientID, Access: kvserver.SecretsGet,
			Federated: []kvserver.FederatedCredential{{Issuer: issuer, Subject: "system:serviceaccount:" + nsA + ":azure-app"}}})
		kv.SetSecret("api-token", "from-key-vault")
		env.Apply(t, nsA, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: azure-app
  annotations:
    azure.workload.identity/client-id: `+clientID+`
---
apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: azure
spec:
  provider:
    azurekv:
      authType: WorkloadIdentity
      tenantId: `+exampleTenantID+`
      vaultUrl: https://my-kv.vault.azure.net/
      serviceAccountRef:
        name: azure-app
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: azure
spec:
  refreshInterval: 1h
  secretStoreRef: {kind: SecretStore, name: azure}
  target: {name: azure}
  data:
    - secretKey: token
      remoteRef: {key: api-token}
`)
		env.WaitStoreReady(t, nsA, "azure")
		env.WaitReady(t, nsA, "azure", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
		env.WaitSecret(t, nsA, "azure", testenv.HasData(map[string]string{"token": "from-key-vault"}))
	})

	t.Run("deletionPolicy Delete deletes the Secret when every remote value is gone", func(t *testing.T) {
		store := func(data string) string {
			return `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: shrinking
spec:
  provider:
    fake:
      data:
` + data
		}
		env.Apply(t, nsA, store(`        - key: temporary
          value: soon-gone
`)+`---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: shrinking
spec:
  refreshInterval: 1h
  secretStoreRef: {kind: SecretStore, name: shrinking}
  target: {name: shrinking, deletionPolicy: Delete}
  data:
    - secretKey: value
      remoteRef: {key: temporary}
`)
		env.WaitSecret(t, nsA, "shrinking", testenv.HasData(map[string]string{"value": "soon-gone"}))
		env.Apply(t, nsA, store(`        - key: other
          value: unrelated
`))
		testenv.Eventually(t, "Secret "+nsA+"/shrinking deleted", func(ctx context.Context) (bool, string) {
			err := env.Client.Get(ctx, client.ObjectKey{Namespace: nsA, Name: "shrinking"}, &corev1.Secret{})
			return apierrors.IsNotFound(err), fmt.Sprintf("get: %v", err)
		})
	})

	t.Run("a ClusterExternalSecret provisions ExternalSecrets in every selected namespace from a ClusterSecretStore with namespace conditions", func(t *testing.T) {
		env.Apply(t, "", `apiVersion: external-secrets.io/v1
kind: ClusterSecretStore
metadata:
  name: rbac-shared
spec:
  conditions:
    - namespaceSelector:
        matchLabels: {rbac-test: ces}
  provider:
    fake:
      data:
        - key: shared-token
          value: shared-value
---
apiVersion: external-secrets.io/v1
kind: ClusterExternalSecret
metadata:
  name: rbac-ces
  finalizers: ["`+clusterexternalsecret.ESOFinalizer+`"]
spec:
  externalSecretName: shared
  namespaceSelectors:
    - matchLabels: {rbac-test: ces}
  refreshTime: 1m
  externalSecretSpec:
    refreshInterval: 1h
    secretStoreRef: {kind: ClusterSecretStore, name: rbac-shared}
    target: {name: shared}
    data:
      - secretKey: token
        remoteRef: {key: shared-token}
`)
		env.WaitStoreReady(t, "", "rbac-shared")
		for _, ns := range []string{nsA, nsB} {
			env.WaitReady(t, ns, "shared", metav1.ConditionTrue, externalsecret.ReasonSecretSynced)
			env.WaitSecret(t, ns, "shared", testenv.HasData(map[string]string{"token": "shared-value"}))
		}
		testenv.Eventually(t, "ClusterExternalSecret rbac-ces Ready", func(ctx context.Context) (bool, string) {
			var ces esv1.ClusterExternalSecret
			if err := env.Client.Get(ctx, client.ObjectKey{Name: "rbac-ces"}, &ces); err != nil {
				return false, err.Error()
			}
			for _, c := range ces.Status.Conditions {
				if c.Type == esv1.ClusterExternalSecretReady {
					return c.Status == metav1.ConditionTrue, fmt.Sprintf("Ready=%s message=%s", c.Status, c.Message)
				}
			}
			return false, fmt.Sprintf("status %+v", ces.Status)
		})
	})

	t.Run("deleting a ClusterExternalSecret ESO finalized releases ESO's finalizers", func(t *testing.T) {
		ces := &esv1.ClusterExternalSecret{ObjectMeta: metav1.ObjectMeta{Name: "rbac-ces"}}
		if err := env.Client.Delete(ctxFor(t, time.Minute), ces); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, "ClusterExternalSecret rbac-ces gone and namespace "+nsA+" released", func(ctx context.Context) (bool, string) {
			err := env.Client.Get(ctx, client.ObjectKey{Name: "rbac-ces"}, &esv1.ClusterExternalSecret{})
			if !apierrors.IsNotFound(err) {
				return false, fmt.Sprintf("ClusterExternalSecret still there (%v)", err)
			}
			var ns corev1.Namespace
			if err := env.Client.Get(ctx, client.ObjectKey{Name: nsA}, &ns); err != nil {
				return false, err.Error()
			}
			return !controllerutil.ContainsFinalizer(&ns, clusterexternalsecret.ESONamespaceFinalizer("rbac-ces")), fmt.Sprintf("finalizers %v", ns.Finalizers)
		})
	})

	t.Run("a SecretSync (Secret Store extension example) syncs from Key Vault with its ServiceAccount's token", func(t *testing.T) {
		env.Apply(t, "", "examples/secretsync")
		testenv.Eventually(t, "SecretSync secret-sync-name created its Secret", func(ctx context.Context) (bool, string) {
			var ss ssv1.SecretSync
			if err := env.Client.Get(ctx, client.ObjectKey{Namespace: exampleNamespace, Name: "secret-sync-name"}, &ss); err != nil {
				return false, err.Error()
			}
			c := meta.FindStatusCondition(ss.Status.Conditions, ssv1.ConditionTypeCreate)
			if c == nil {
				return false, fmt.Sprintf("conditions %+v", ss.Status.Conditions)
			}
			return c.Reason == ssv1.ReasonCreateSucceeded, fmt.Sprintf("%s=%s reason=%s message=%s", c.Type, c.Status, c.Reason, c.Message)
		})
		s := env.WaitSecret(t, exampleNamespace, "secret-sync-name", testenv.HasData(map[string]string{"my-secret-data-key0": "version-2", "my-secret-data-key1": "version-1"}))
		if ref := metav1.GetControllerOf(s); ref == nil || ref.Kind != "SecretSync" {
			t.Fatalf("controller reference %+v", ref)
		}
	})

	t.Run("metrics are served to a scraper bound to the metrics-reader ClusterRole, and only to it", func(t *testing.T) {
		env.Apply(t, releaseNamespace, `apiVersion: v1
kind: ServiceAccount
metadata:
  name: prometheus
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: nosy
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: prometheus-reads-keyferry-metrics
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: `+release+`-metrics-reader}
subjects:
  - {kind: ServiceAccount, name: prometheus, namespace: `+releaseNamespace+`}
`)
		prometheus := serviceAccountConfig(t, releaseNamespace, "prometheus").BearerToken
		nosy := serviceAccountConfig(t, releaseNamespace, "nosy").BearerToken
		testenv.Eventually(t, "/metrics to answer the bound scraper", func(ctx context.Context) (bool, string) {
			code, body, err := scrape(ctx, op.metricsURL, prometheus)
			if err != nil {
				return false, err.Error()
			}
			return code == 200 && strings.Contains(body, "keyferry_syncs_total"), fmt.Sprintf("HTTP %d", code)
		})
		for name, token := range map[string]string{"an unbound ServiceAccount": nosy, "no token": ""} {
			code, _, err := scrape(ctxFor(t, time.Minute), op.metricsURL, token)
			if err != nil {
				t.Fatal(err)
			}
			if code != 401 && code != 403 {
				t.Errorf("%s got HTTP %d from /metrics, want 401 or 403", name, code)
			}
		}
	})

	t.Run("the API server refused the operator nothing", func(t *testing.T) {
		op.assertNothingForbidden(t)
	})
}

func addNamespaceFinalizer(t *testing.T, name, finalizer string) {
	t.Helper()
	ctx := ctxFor(t, time.Minute)
	var ns corev1.Namespace
	if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(ns.DeepCopy())
	controllerutil.AddFinalizer(&ns, finalizer)
	if err := env.Client.Patch(ctx, &ns, patch); err != nil {
		t.Fatal(err)
	}
}

// waitEvent waits for an events.k8s.io Event about the object.
func waitEvent(t *testing.T, ns, name string) {
	t.Helper()
	testenv.Eventually(t, "an Event about "+ns+"/"+name, func(ctx context.Context) (bool, string) {
		evs, err := env.Events(ctx, ns, name)
		if err != nil {
			return false, err.Error()
		}
		return len(evs) > 0, "no Event"
	})
}

// apiServerURL is the API server's URL as a store names it.
func apiServerURL(cfg *rest.Config) string {
	return strings.TrimSuffix(cfg.Host, "/")
}
