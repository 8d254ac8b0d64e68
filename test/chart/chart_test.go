package chart_test

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/keyferry/keyferry/internal/devcluster"
	"github.com/keyferry/keyferry/internal/manifest"
	"github.com/keyferry/keyferry/test/chart"
)

// valueSets are the configurations every structural check runs against.
var valueSets = map[string]map[string]any{
	"defaults":            nil,
	"scoped":              {"scopedNamespace": "team-a", "scopedRBAC": true},
	"scoped namespace":    {"scopedNamespace": "team-a"},
	"leader election":     {"leaderElect": true, "replicaCount": 2, "podDisruptionBudget": map[string]any{"enabled": true}},
	"controller class":    {"controllerClass": "keyferry"},
	"metrics insecure":    {"metrics": map[string]any{"listen": map[string]any{"secure": map[string]any{"enabled": false}}}},
	"CRDs off":            {"installCRDs": false},
	"SPC CRD off":         {"crds": map[string]any{"createSecretProviderClass": false}},
	"serviceMonitor on":   {"serviceMonitor": map[string]any{"enabled": true, "renderMode": "alwaysRender"}},
	"cluster kinds off":   {"processClusterStore": false, "processClusterExternalSecret": false, "processClusterPushSecret": false, "processSecretSync": false},
	"dashboard":           {"grafanaDashboard": map[string]any{"enabled": true}},
	"no service account":  {"serviceAccount": map[string]any{"create": false, "name": "existing"}},
	"restart workloads":   {"restartWorkloads": map[string]any{"enabled": true, "debounce": "5s"}},
	"generic targets":     {"genericTargets": map[string]any{"enabled": true, "resources": []any{map[string]any{"apiGroup": "config.example.com", "resources": []any{"appconfigs"}, "verbs": []any{"get", "create", "update"}}}}},
	"secretsync defaults": {"secretSync": map[string]any{"vaultAddress": "https://vault.vault:8200", "awsRegion": "eu-west-1"}},
	"CSI provider plugins": {"csiProviders": map[string]any{"enabled": true, "tokenAudiences": []any{"api://acme", "vault"}, "mountTimeout": "20s",
		"sidecars": []any{map[string]any{"name": "acme", "image": "example.com/acme-provider:1", "args": []any{"--endpoint=unix:///provider/acme.sock"},
			"volumeMounts": []any{map[string]any{"name": "csi-providers", "mountPath": "/provider"}}}}}},
	"extra args and envs": {"extraArgs": map[string]any{"store-qps": 50, "client-burst": "300"}, "extraEnv": []any{map[string]any{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}}},
}

func root(t *testing.T) string {
	t.Helper()
	r, err := devcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ctx(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return c
}

func render(t *testing.T, values map[string]any) []*unstructured.Unstructured {
	t.Helper()
	objs, err := chart.Template(ctx(t), root(t), chart.Options{Values: values})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func args(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	a, err := chart.Args(objs)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLint(t *testing.T) {
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			if out, err := chart.Lint(ctx(t), root(t), values); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

func TestSecureByDefault(t *testing.T) {
	objs := render(t, nil)
	dep := chart.Find(objs, "Deployment")[0]
	pod, _, _ := unstructured.NestedMap(dep.Object, "spec", "template", "spec")
	c := pod["containers"].([]any)[0].(map[string]any)

	checks := map[string]struct {
		obj  map[string]any
		path []string
		want any
	}{
		"pod runs as non-root":               {pod, []string{"securityContext", "runAsNonRoot"}, true},
		"pod runs as 65532":                  {pod, []string{"securityContext", "runAsUser"}, int64(65532)},
		"pod seccomp RuntimeDefault":         {pod, []string{"securityContext", "seccompProfile", "type"}, "RuntimeDefault"},
		"container runs as non-root":         {c, []string{"securityContext", "runAsNonRoot"}, true},
		"container runs as 65532":            {c, []string{"securityContext", "runAsUser"}, int64(65532)},
		"read-only root filesystem":          {c, []string{"securityContext", "readOnlyRootFilesystem"}, true},
		"no privilege escalation":            {c, []string{"securityContext", "allowPrivilegeEscalation"}, false},
		"all capabilities dropped":           {c, []string{"securityContext", "capabilities", "drop"}, []any{"ALL"}},
		"container seccomp RuntimeDefault":   {c, []string{"securityContext", "seccompProfile", "type"}, "RuntimeDefault"},
		"liveness probe on /healthz":         {c, []string{"livenessProbe", "httpGet", "path"}, "/healthz"},
		"liveness probe on the health port":  {c, []string{"livenessProbe", "httpGet", "port"}, "health"},
		"readiness probe on /readyz":         {c, []string{"readinessProbe", "httpGet", "path"}, "/readyz"},
		"readiness probe on the health port": {c, []string{"readinessProbe", "httpGet", "port"}, "health"},
		"CPU request":                        {c, []string{"resources", "requests", "cpu"}, "50m"},
		"memory request":                     {c, []string{"resources", "requests", "memory"}, "64Mi"},
		"image is the chart's appVersion":    {c, []string{"image"}, "ghcr.io/keyferry/keyferry:v0.1.0"},
		"one replica":                        {dep.Object, []string{"spec", "replicas"}, int64(1)},
	}
	for name, ck := range checks {
		t.Run(name, func(t *testing.T) {
			got, ok, err := unstructured.NestedFieldNoCopy(ck.obj, ck.path...)
			if err != nil || !ok {
				t.Fatalf("%s is not set (%v)", strings.Join(ck.path, "."), err)
			}
			if !reflect.DeepEqual(got, ck.want) {
				t.Fatalf("%s = %#v, want %#v", strings.Join(ck.path, "."), got, ck.want)
			}
		})
	}
	t.Run("the health port is 8081", func(t *testing.T) {
		if !hasPort(c, "health", 8081) || !hasPort(c, "metrics", 8080) {
			t.Fatalf("ports %v", c["ports"])
		}
	})
	t.Run("no host namespaces or privileged mode", func(t *testing.T) {
		for _, k := range []string{"hostNetwork", "hostPID", "hostIPC"} {
			if v, ok := pod[k]; ok && v != false {
				t.Fatalf("%s = %v", k, v)
			}
		}
		if p, ok, _ := unstructured.NestedBool(c, "securityContext", "privileged"); ok && p {
			t.Fatal("privileged")
		}
	})
	t.Run("a writable /tmp on the read-only root", func(t *testing.T) {
		mounts, _, _ := unstructured.NestedSlice(c, "volumeMounts")
		if len(mounts) == 0 || mounts[0].(map[string]any)["mountPath"] != "/tmp" {
			t.Fatalf("volumeMounts %v", mounts)
		}
	})
	t.Run("securityContext.enabled=false leaves the container's out", func(t *testing.T) {
		objs := render(t, map[string]any{"securityContext": map[string]any{"enabled": false}, "podSecurityContext": map[string]any{"enabled": false}})
		pod, _, _ := unstructured.NestedMap(chart.Find(objs, "Deployment")[0].Object, "spec", "template", "spec")
		if _, ok := pod["securityContext"]; ok {
			t.Fatal("pod securityContext rendered")
		}
		if _, ok := pod["containers"].([]any)[0].(map[string]any)["securityContext"]; ok {
			t.Fatal("container securityContext rendered")
		}
	})
}

func hasPort(c map[string]any, name string, port int64) bool {
	ports, _, _ := unstructured.NestedSlice(c, "ports")
	for _, p := range ports {
		m := p.(map[string]any)
		if m["name"] == name && m["containerPort"] == port {
			return true
		}
	}
	return false
}

func TestArgs(t *testing.T) {
	base := []string{"--metrics-bind-address=:8080", "--health-probe-bind-address=:8081", "--concurrent=16", "--log-level=info"}
	cases := map[string]struct {
		values       map[string]any
		want, absent []string
	}{
		"defaults pass the listen addresses, concurrency and log level": {
			want: base,
			absent: []string{"--leader-elect", "--namespace", "--controller-class", "--metrics-secure",
				"--enable-cluster-store-reconciler", "--enable-cluster-external-secret-reconciler", "--enable-cluster-push-secret-reconciler", "--enable-secretsync-reconciler",
				"--restart-workloads", "--restart-debounce", "--secretsync-vault-address"},
		},
		"secretSync.vaultAddress is the vault classes' default address": {
			values: valueSets["secretsync defaults"],
			want:   []string{"--secretsync-vault-address=https://vault.vault:8200"},
		},
		"restartWorkloads.enabled turns the restart controller on": {
			values: valueSets["restart workloads"],
			want:   []string{"--restart-workloads", "--restart-debounce=5s"},
		},
		"leaderElect elects in the release namespace": {
			values: map[string]any{"leaderElect": true, "replicaCount": 2},
			want:   []string{"--leader-elect", "--leader-election-namespace=keyferry-system"},
		},
		"controllerClass": {
			values: map[string]any{"controllerClass": "kf-east"},
			want:   []string{"--controller-class=kf-east"},
		},
		"scopedNamespace serves one namespace, keeps ClusterSecretStores and drops ClusterExternalSecrets": {
			values: map[string]any{"scopedNamespace": "team-a"},
			want:   []string{"--namespace=team-a", "--enable-cluster-external-secret-reconciler=false"},
			absent: []string{"--enable-cluster-store-reconciler"},
		},
		"scopedRBAC turns off the cluster kinds": {
			values: map[string]any{"scopedNamespace": "team-a", "scopedRBAC": true},
			want:   []string{"--namespace=team-a", "--enable-cluster-store-reconciler=false", "--enable-cluster-external-secret-reconciler=false", "--enable-cluster-push-secret-reconciler=false"},
		},
		"scopedRBAC without scopedNamespace serves the release namespace": {
			values: map[string]any{"scopedRBAC": true},
			want:   []string{"--namespace=keyferry-system"},
		},
		"processClusterStore=false": {
			values: map[string]any{"processClusterStore": false},
			want:   []string{"--enable-cluster-store-reconciler=false"},
			absent: []string{"--enable-cluster-external-secret-reconciler", "--enable-secretsync-reconciler"},
		},
		"processClusterExternalSecret=false": {
			values: map[string]any{"processClusterExternalSecret": false},
			want:   []string{"--enable-cluster-external-secret-reconciler=false"},
		},
		"processClusterPushSecret=false": {
			values: map[string]any{"processClusterPushSecret": false},
			want:   []string{"--enable-cluster-push-secret-reconciler=false"},
			absent: []string{"--enable-cluster-external-secret-reconciler"},
		},
		"processSecretSync=false": {
			values: map[string]any{"processSecretSync": false},
			want:   []string{"--enable-secretsync-reconciler=false"},
		},
		"metrics insecure": {
			values: map[string]any{"metrics": map[string]any{"listen": map[string]any{"port": 9090, "secure": map[string]any{"enabled": false}}}},
			want:   []string{"--metrics-secure=false", "--metrics-bind-address=:9090"},
		},
		"concurrent, log level and health port": {
			values: map[string]any{"concurrent": 4, "log": map[string]any{"level": "debug"}, "healthProbe": map[string]any{"port": 9443}},
			want:   []string{"--concurrent=4", "--log-level=debug", "--health-probe-bind-address=:9443"},
		},
		"extraArgs: a value gives --name=value, an empty one --name": {
			values: map[string]any{"extraArgs": map[string]any{"store-qps": 50, "client-burst": "300", "some-switch": ""}},
			want:   []string{"--store-qps=50", "--client-burst=300", "--some-switch"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := args(t, render(t, tc.values))
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("args %v lack %s", got, w)
				}
			}
			for _, a := range tc.absent {
				for _, g := range got {
					if g == a || strings.HasPrefix(g, a+"=") {
						t.Errorf("args %v hold %s", got, g)
					}
				}
			}
		})
	}
}

func TestValuesThatCannotWorkAreRefused(t *testing.T) {
	cases := map[string]struct {
		values map[string]any
		msg    string
	}{
		"two replicas without leader election": {map[string]any{"replicaCount": 2}, "needs leaderElect: true"},
		"an unknown log level":                 {map[string]any{"log": map[string]any{"level": "verbose"}}, "/log/level"},
		"zero concurrency":                     {map[string]any{"concurrent": 0}, "/concurrent"},
		"a ServiceMonitor the cluster cannot serve, failIfMissing": {
			map[string]any{"serviceMonitor": map[string]any{"enabled": true, "renderMode": "failIfMissing"}}, "does not serve monitoring.coreos.com/v1 ServiceMonitor"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := chart.Template(ctx(t), root(t), chart.Options{Values: tc.values})
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want an error saying %q", err, tc.msg)
			}
		})
	}
}

// ESO's chart values that keyferry has no use for are accepted, so an ESO
// values file installs as it is; the shared ones take effect.
func TestESOValuesFileCarriesOver(t *testing.T) {
	eso := map[string]any{
		"installCRDs": true,
		"crds":        map[string]any{"createClusterExternalSecret": true, "createPushSecret": true, "createClusterGenerator": true, "conversion": map[string]any{"enabled": false}},
		"concurrent":  2, "leaderElect": true, "replicaCount": 2, "controllerClass": "eso-b",
		"log":                 map[string]any{"level": "debug", "timeEncoding": "epoch"},
		"webhook":             map[string]any{"create": true, "port": 10250},
		"certController":      map[string]any{"create": true},
		"serviceAccount":      map[string]any{"create": true, "name": "external-secrets", "automount": true},
		"metrics":             map[string]any{"listen": map[string]any{"port": 8080, "auth": map[string]any{"enabled": false}}, "service": map[string]any{"enabled": true, "port": 8080}},
		"processClusterStore": true, "processPushSecret": false, "extendedMetricLabels": false,
	}
	objs := render(t, eso)
	got := args(t, objs)
	for _, w := range []string{"--concurrent=2", "--leader-elect", "--controller-class=eso-b", "--log-level=debug"} {
		if !slices.Contains(got, w) {
			t.Errorf("args %v lack %s", got, w)
		}
	}
	if sa := chart.Find(objs, "ServiceAccount"); len(sa) != 1 || sa[0].GetName() != "external-secrets" {
		t.Errorf("ServiceAccount %v", names(sa))
	}
	if len(chart.Find(objs, "Service")) != 1 {
		t.Errorf("metrics.service.enabled did not render the Service")
	}
}

func names(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

func TestCRDs(t *testing.T) {
	want, err := manifest.Read(filepath.Join(root(t), "config", "crd"))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*unstructured.Unstructured{}
	for _, c := range want {
		byName[c.GetName()] = c
	}
	t.Run("by default every CRD of config/crd ships, unchanged, kept on uninstall", func(t *testing.T) {
		crds := chart.Find(render(t, nil), "CustomResourceDefinition")
		if len(crds) != len(want) {
			t.Fatalf("the chart renders %v, config/crd has %d CRDs", names(crds), len(want))
		}
		for _, c := range crds {
			src, ok := byName[c.GetName()]
			if !ok {
				t.Fatalf("CRD %s is not in config/crd", c.GetName())
			}
			if !reflect.DeepEqual(c.Object["spec"], src.Object["spec"]) {
				t.Errorf("CRD %s: spec differs from config/crd: run `make generate`", c.GetName())
			}
			if c.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
				t.Errorf("CRD %s lacks helm.sh/resource-policy: keep (annotations %v)", c.GetName(), c.GetAnnotations())
			}
			for k, v := range src.GetAnnotations() {
				if c.GetAnnotations()[k] != v {
					t.Errorf("CRD %s lost annotation %s", c.GetName(), k)
				}
			}
		}
	})
	t.Run("crds.unsafeServeV1Beta1 serves v1beta1 of ESO's four kinds, and only then", func(t *testing.T) {
		served := func(values map[string]any) map[string]bool {
			out := map[string]bool{}
			for _, c := range chart.Find(render(t, values), "CustomResourceDefinition") {
				versions, _, _ := unstructured.NestedSlice(c.Object, "spec", "versions")
				for _, v := range versions {
					v := v.(map[string]any)
					if v["name"] == "v1beta1" {
						out[c.GetName()] = v["served"] == true
					}
				}
			}
			return out
		}
		kinds := []string{"externalsecrets", "secretstores", "clustersecretstores", "clusterexternalsecrets"}
		off, on := served(nil), served(map[string]any{"crds": map[string]any{"unsafeServeV1Beta1": true}})
		if len(off) != len(kinds) || len(on) != len(kinds) {
			t.Fatalf("CRDs with a v1beta1 version: %v; want %v", on, kinds)
		}
		for _, k := range kinds {
			name := k + ".external-secrets.io"
			if off[name] || !on[name] {
				t.Errorf("%s v1beta1 served: by default %t, with the value %t; want false, true", name, off[name], on[name])
			}
		}
	})
	t.Run("crds.keep=false drops the keep annotation; crds.annotations are added", func(t *testing.T) {
		crds := chart.Find(render(t, map[string]any{"crds": map[string]any{"keep": false, "annotations": map[string]any{"team": "platform"}}}), "CustomResourceDefinition")
		for _, c := range crds {
			if _, ok := c.GetAnnotations()["helm.sh/resource-policy"]; ok {
				t.Errorf("CRD %s keeps the keep annotation", c.GetName())
			}
			if c.GetAnnotations()["team"] != "platform" {
				t.Errorf("CRD %s lacks crds.annotations", c.GetName())
			}
		}
	})
	t.Run("installCRDs=false installs none", func(t *testing.T) {
		if crds := chart.Find(render(t, map[string]any{"installCRDs": false}), "CustomResourceDefinition"); len(crds) != 0 {
			t.Fatalf("rendered %v", names(crds))
		}
	})
	toggles := map[string]string{
		"createExternalSecret":        "externalsecrets.external-secrets.io",
		"createSecretStore":           "secretstores.external-secrets.io",
		"createClusterSecretStore":    "clustersecretstores.external-secrets.io",
		"createClusterExternalSecret": "clusterexternalsecrets.external-secrets.io",
		"createSecretProviderClass":   "secretproviderclasses.secrets-store.csi.x-k8s.io",
		"createSecretSync":            "secretsyncs.secret-sync.x-k8s.io",
		"createPushSecret":            "pushsecrets.external-secrets.io",
		"createClusterPushSecret":     "clusterpushsecrets.external-secrets.io",
		"createClusterGenerator":      "clustergenerators.generators.external-secrets.io",
	}
	// The namespaced generators (and GeneratorState) share one toggle.
	generators := 0
	for _, c := range want {
		if strings.HasSuffix(c.GetName(), ".generators.external-secrets.io") && !slices.Contains(slices.Collect(maps.Values(toggles)), c.GetName()) {
			generators++
		}
	}
	if len(toggles)+generators != len(want) {
		t.Fatalf("config/crd has %d CRDs and this test knows %d toggles and %d generator CRDs", len(want), len(toggles), generators)
	}
	t.Run("crds.createGenerators=false leaves out only the namespaced generators", func(t *testing.T) {
		crds := chart.Find(render(t, map[string]any{"crds": map[string]any{"createGenerators": false}}), "CustomResourceDefinition")
		if len(crds) != len(want)-generators {
			t.Fatalf("rendered %d CRDs, want %d: %v", len(crds), len(want)-generators, names(crds))
		}
		for _, c := range crds {
			if strings.HasSuffix(c.GetName(), ".generators.external-secrets.io") && c.GetName() != "clustergenerators.generators.external-secrets.io" {
				t.Fatalf("%s is still rendered", c.GetName())
			}
		}
	})
	for value, crd := range toggles {
		t.Run("crds."+value+"=false leaves out only "+crd, func(t *testing.T) {
			crds := chart.Find(render(t, map[string]any{"crds": map[string]any{value: false}}), "CustomResourceDefinition")
			if len(crds) != len(want)-1 {
				t.Fatalf("rendered %v", names(crds))
			}
			for _, c := range crds {
				if c.GetName() == crd {
					t.Fatalf("%s is still rendered", crd)
				}
			}
		})
	}
}

// rule is one RBAC policy rule as rendered.
type rule struct {
	APIGroups       []string `json:"apiGroups"`
	Resources       []string `json:"resources"`
	Verbs           []string `json:"verbs"`
	ResourceNames   []string `json:"resourceNames"`
	NonResourceURLs []string `json:"nonResourceURLs"`
}

func rules(t *testing.T, o *unstructured.Unstructured) []rule {
	t.Helper()
	b, err := json.Marshal(o.Object["rules"])
	if err != nil {
		t.Fatal(err)
	}
	var rs []rule
	if err := json.Unmarshal(b, &rs); err != nil {
		t.Fatal(err)
	}
	return rs
}

// grants reports whether any rule of objs grants verb on resource in group.
func grants(t *testing.T, objs []*unstructured.Unstructured, group, resource, verb string) bool {
	t.Helper()
	for _, o := range objs {
		for _, r := range rules(t, o) {
			if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
				return true
			}
		}
	}
	return false
}

func roles(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	return append(chart.Find(objs, "ClusterRole"), chart.Find(objs, "Role")...)
}

func TestRBACHasNoWildcardsOrEscalation(t *testing.T) {
	forbiddenVerbs := []string{"*", "escalate", "bind", "impersonate", "deletecollection"}
	forbiddenResources := []string{"mutatingwebhookconfigurations", "validatingwebhookconfigurations", "validatingadmissionpolicies",
		"clusterroles", "roles", "clusterrolebindings", "rolebindings", "nodes", "pods", "customresourcedefinitions"}
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			objs := render(t, values)
			for _, o := range roles(objs) {
				for _, r := range rules(t, o) {
					for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames, r.NonResourceURLs} {
						for _, s := range list {
							if strings.Contains(s, "*") {
								t.Errorf("%s %s: wildcard %q in %+v", o.GetKind(), o.GetName(), s, r)
							}
						}
					}
					for _, v := range r.Verbs {
						if slices.Contains(forbiddenVerbs, v) {
							t.Errorf("%s %s grants %s: %+v", o.GetKind(), o.GetName(), v, r)
						}
					}
					for _, res := range r.Resources {
						if slices.Contains(forbiddenResources, strings.Split(res, "/")[0]) {
							t.Errorf("%s %s grants access to %s", o.GetKind(), o.GetName(), res)
						}
					}
					if slices.Contains(r.APIGroups, "rbac.authorization.k8s.io") || slices.Contains(r.APIGroups, "admissionregistration.k8s.io") {
						t.Errorf("%s %s grants access to API group %v", o.GetKind(), o.GetName(), r.APIGroups)
					}
				}
			}
		})
	}
}

func TestRBACModes(t *testing.T) {
	t.Run("cluster-wide: one ClusterRole, bound to the chart's ServiceAccount", func(t *testing.T) {
		objs := render(t, nil)
		cr := chart.Find(objs, "ClusterRole")
		if !grants(t, cr, "", "secrets", "create") || !grants(t, cr, "external-secrets.io", "clusterexternalsecrets", "watch") {
			t.Fatalf("ClusterRoles %v do not grant what the operator needs", names(cr))
		}
		if len(chart.Find(objs, "Role")) != 0 {
			t.Fatalf("Roles rendered without leader election or scopedRBAC: %v", names(chart.Find(objs, "Role")))
		}
		assertBoundTo(t, objs, "keyferry", "keyferry-system")
	})
	t.Run("scopedRBAC: a Role in the namespace, no ClusterRole for Secrets", func(t *testing.T) {
		objs := render(t, map[string]any{"scopedNamespace": "team-a", "scopedRBAC": true})
		for _, cr := range chart.Find(objs, "ClusterRole") {
			for _, r := range rules(t, cr) {
				if len(r.Resources) > 0 && !slices.Contains(r.APIGroups, "authentication.k8s.io") && !slices.Contains(r.APIGroups, "authorization.k8s.io") {
					t.Errorf("ClusterRole %s grants %+v in scoped mode", cr.GetName(), r)
				}
			}
		}
		rs := chart.Find(objs, "Role")
		if len(rs) != 1 || rs[0].GetNamespace() != "team-a" || !grants(t, rs, "", "secrets", "create") {
			t.Fatalf("Roles %v", names(rs))
		}
		if grants(t, rs, "external-secrets.io", "clusterexternalsecrets", "get") || grants(t, rs, "", "namespaces", "get") {
			t.Fatal("the scoped Role grants cluster-scoped kinds")
		}
		rb := chart.Find(objs, "RoleBinding")
		if len(rb) != 1 || rb[0].GetNamespace() != "team-a" {
			t.Fatalf("RoleBindings %v", names(rb))
		}
		assertBoundTo(t, objs, "keyferry", "keyferry-system")
	})
	t.Run("leader election: a Role for the keyferry.io Lease in the release namespace", func(t *testing.T) {
		objs := render(t, map[string]any{"leaderElect": true})
		var lease *unstructured.Unstructured
		for _, r := range chart.Find(objs, "Role") {
			if grants(t, []*unstructured.Unstructured{r}, "coordination.k8s.io", "leases", "update") {
				lease = r
			}
		}
		if lease == nil || lease.GetNamespace() != "keyferry-system" {
			t.Fatalf("no Lease Role in keyferry-system: %v", names(chart.Find(objs, "Role")))
		}
		for _, r := range rules(t, lease) {
			if slices.Contains(r.Resources, "leases") && slices.Contains(r.Verbs, "update") && !reflect.DeepEqual(r.ResourceNames, []string{"keyferry.io"}) {
				t.Fatalf("Lease updates are not limited to keyferry.io: %+v", r)
			}
		}
		if grants(t, chart.Find(objs, "ClusterRole"), "coordination.k8s.io", "leases", "get") {
			t.Fatal("a ClusterRole grants Leases")
		}
	})
	t.Run("metrics auth needs TokenReviews and SubjectAccessReviews only when secure", func(t *testing.T) {
		secure := chart.Find(render(t, nil), "ClusterRole")
		if !grants(t, secure, "authentication.k8s.io", "tokenreviews", "create") || !grants(t, secure, "authorization.k8s.io", "subjectaccessreviews", "create") {
			t.Fatal("secure metrics without TokenReview/SubjectAccessReview permissions")
		}
		insecure := chart.Find(render(t, valueSets["metrics insecure"]), "ClusterRole")
		if grants(t, insecure, "authentication.k8s.io", "tokenreviews", "create") {
			t.Fatal("insecure metrics still grant TokenReviews")
		}
	})
	t.Run("switched-off kinds lose their permissions", func(t *testing.T) {
		cr := chart.Find(render(t, valueSets["cluster kinds off"]), "ClusterRole")
		for _, g := range [][2]string{
			{"external-secrets.io", "clusterexternalsecrets"}, {"external-secrets.io", "clustersecretstores"}, {"external-secrets.io", "clustersecretstores/status"},
			{"external-secrets.io", "clusterpushsecrets"}, {"external-secrets.io", "clusterpushsecrets/status"},
			{"", "namespaces"},
			{"secret-sync.x-k8s.io", "secretsyncs"}, {"secrets-store.csi.x-k8s.io", "secretproviderclasses"},
		} {
			for _, verb := range []string{"get", "update", "patch"} {
				if grants(t, cr, g[0], g[1], verb) {
					t.Errorf("%s %s still granted", verb, g[1])
				}
			}
		}
		for _, verb := range []string{"list", "watch", "patch"} {
			if grants(t, cr, "", "namespaces", verb) {
				t.Errorf("namespaces %s still granted without cluster kinds", verb)
			}
		}
	})
	t.Run("workloads are granted only with restartWorkloads", func(t *testing.T) {
		off := chart.Find(render(t, nil), "ClusterRole")
		on := chart.Find(render(t, valueSets["restart workloads"]), "ClusterRole")
		for _, gr := range [][2]string{{"apps", "deployments"}, {"apps", "statefulsets"}, {"apps", "daemonsets"}, {"argoproj.io", "rollouts"}} {
			if grants(t, off, gr[0], gr[1], "get") {
				t.Errorf("%s granted by default", gr[1])
			}
			for _, verb := range []string{"get", "list", "patch"} {
				if !grants(t, on, gr[0], gr[1], verb) {
					t.Errorf("%s %s not granted with restartWorkloads", verb, gr[1])
				}
			}
			for _, verb := range []string{"update", "delete", "watch", "create"} {
				if grants(t, on, gr[0], gr[1], verb) {
					t.Errorf("%s: %s granted; only get, list and patch are needed", gr[1], verb)
				}
			}
		}
	})
	t.Run("rbac.create=false renders no RBAC", func(t *testing.T) {
		objs := render(t, map[string]any{"rbac": map[string]any{"create": false}, "leaderElect": true})
		for _, k := range []string{"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"} {
			if got := chart.Find(objs, k); len(got) != 0 {
				t.Errorf("%v", names(got))
			}
		}
	})
	t.Run("serviceAccount.create=false uses the named one", func(t *testing.T) {
		objs := render(t, valueSets["no service account"])
		if len(chart.Find(objs, "ServiceAccount")) != 0 {
			t.Fatal("a ServiceAccount is rendered")
		}
		sa, _, _ := unstructured.NestedString(chart.Find(objs, "Deployment")[0].Object, "spec", "template", "spec", "serviceAccountName")
		if sa != "existing" {
			t.Fatalf("serviceAccountName %q", sa)
		}
		assertBoundTo(t, objs, "existing", "keyferry-system")
	})
}

// assertBoundTo checks that every binding names exactly the ServiceAccount.
func assertBoundTo(t *testing.T, objs []*unstructured.Unstructured, sa, ns string) {
	t.Helper()
	bindings := append(chart.Find(objs, "ClusterRoleBinding"), chart.Find(objs, "RoleBinding")...)
	if len(bindings) == 0 {
		t.Fatal("no bindings")
	}
	for _, b := range bindings {
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		want := []any{map[string]any{"kind": "ServiceAccount", "name": sa, "namespace": ns}}
		if !reflect.DeepEqual(subjects, want) {
			t.Errorf("%s %s subjects %v, want %v", b.GetKind(), b.GetName(), subjects, want)
		}
	}
}

func TestMonitoring(t *testing.T) {
	t.Run("serviceMonitor renders a ServiceMonitor and the metrics Service, over HTTPS with a token", func(t *testing.T) {
		objs := render(t, valueSets["serviceMonitor on"])
		sm := chart.Find(objs, "ServiceMonitor")
		svc := chart.Find(objs, "Service")
		if len(sm) != 1 || len(svc) != 1 {
			t.Fatalf("rendered %v", names(objs))
		}
		ep, _, _ := unstructured.NestedSlice(sm[0].Object, "spec", "endpoints")
		e := ep[0].(map[string]any)
		if e["scheme"] != "https" || e["port"] != "metrics" || e["bearerTokenFile"] == nil {
			t.Fatalf("endpoint %v", e)
		}
		sel, _, _ := unstructured.NestedStringMap(sm[0].Object, "spec", "selector", "matchLabels")
		for k, v := range sel {
			if svc[0].GetLabels()[k] != v {
				t.Fatalf("the ServiceMonitor's selector %v does not match the Service's labels %v", sel, svc[0].GetLabels())
			}
		}
	})
	t.Run("skipIfMissing renders it only where the cluster serves ServiceMonitors", func(t *testing.T) {
		values := map[string]any{"serviceMonitor": map[string]any{"enabled": true}}
		if got := chart.Find(render(t, values), "ServiceMonitor"); len(got) != 0 {
			t.Fatal("rendered without the API")
		}
		objs, err := chart.Template(ctx(t), root(t), chart.Options{Values: values, APIVersions: []string{"monitoring.coreos.com/v1/ServiceMonitor"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(chart.Find(objs, "ServiceMonitor")) != 1 {
			t.Fatal("not rendered with the API")
		}
	})
	t.Run("insecure metrics are scraped over HTTP", func(t *testing.T) {
		values := map[string]any{"serviceMonitor": map[string]any{"enabled": true, "renderMode": "alwaysRender"}, "metrics": valueSets["metrics insecure"]["metrics"]}
		ep, _, _ := unstructured.NestedSlice(chart.Find(render(t, values), "ServiceMonitor")[0].Object, "spec", "endpoints")
		if e := ep[0].(map[string]any); e["scheme"] != "http" || e["bearerTokenFile"] != nil {
			t.Fatalf("endpoint %v", e)
		}
	})
	t.Run("the Grafana dashboard is off by default", func(t *testing.T) {
		if got := chart.Find(render(t, nil), "ConfigMap"); len(got) != 0 {
			t.Fatalf("rendered %v", names(got))
		}
	})
	t.Run("the Grafana dashboard charts keyferry's own metrics", func(t *testing.T) {
		cms := chart.Find(render(t, valueSets["dashboard"]), "ConfigMap")
		if len(cms) != 1 || cms[0].GetLabels()["grafana_dashboard"] != "1" {
			t.Fatalf("ConfigMaps %v", names(cms))
		}
		raw, _, _ := unstructured.NestedString(cms[0].Object, "data", "keyferry.json")
		var d struct {
			Panels []struct {
				Title   string `json:"title"`
				Targets []struct {
					Expr string `json:"expr"`
				} `json:"targets"`
			} `json:"panels"`
		}
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			t.Fatalf("the dashboard is not JSON: %v", err)
		}
		var exprs strings.Builder
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				exprs.WriteString(tg.Expr + "\n")
			}
		}
		for _, m := range []string{"keyferry_syncs_total", "keyferry_provider_calls_total", "keyferry_fetch_lookups_total", "keyferry_secret_writes_total"} {
			if !strings.Contains(exprs.String(), m) {
				t.Errorf("no panel queries %s", m)
			}
		}
	})
	t.Run("podDisruptionBudget", func(t *testing.T) {
		pdb := chart.Find(render(t, valueSets["leader election"]), "PodDisruptionBudget")
		if len(pdb) != 1 {
			t.Fatal("no PodDisruptionBudget")
		}
		if v, _, _ := unstructured.NestedInt64(pdb[0].Object, "spec", "minAvailable"); v != 1 {
			t.Fatalf("minAvailable %v", v)
		}
		pdb = chart.Find(render(t, map[string]any{"podDisruptionBudget": map[string]any{"enabled": true, "maxUnavailable": "50%"}}), "PodDisruptionBudget")
		spec, _, _ := unstructured.NestedMap(pdb[0].Object, "spec")
		if spec["maxUnavailable"] != "50%" || spec["minAvailable"] != nil {
			t.Fatalf("spec %v", spec)
		}
	})
}

func TestPodValues(t *testing.T) {
	objs := render(t, map[string]any{
		"nodeSelector":      map[string]any{"kubernetes.io/os": "linux"},
		"tolerations":       []any{map[string]any{"key": "dedicated", "operator": "Exists"}},
		"affinity":          map[string]any{"podAntiAffinity": map[string]any{}},
		"priorityClassName": "system-cluster-critical",
		"podAnnotations":    map[string]any{"a": "b"},
		"podLabels":         map[string]any{"team": "platform"},
		"extraVolumes":      []any{map[string]any{"name": "mounted", "secret": map[string]any{"secretName": "s"}}},
		"extraVolumeMounts": []any{map[string]any{"name": "mounted", "mountPath": "/mnt/secrets"}},
		"image":             map[string]any{"repository": "registry.local/keyferry", "tag": "dev", "pullPolicy": "Never"},
		"serviceAccount":    map[string]any{"annotations": map[string]any{"azure.workload.identity/client-id": "x"}},
	})
	pod, _, _ := unstructured.NestedMap(chart.Find(objs, "Deployment")[0].Object, "spec", "template")
	spec := pod["spec"].(map[string]any)
	c := spec["containers"].([]any)[0].(map[string]any)
	meta := pod["metadata"].(map[string]any)
	checks := map[string]bool{
		"nodeSelector":               spec["nodeSelector"] != nil,
		"tolerations":                spec["tolerations"] != nil,
		"affinity":                   spec["affinity"] != nil,
		"priorityClassName":          spec["priorityClassName"] == "system-cluster-critical",
		"podAnnotations":             meta["annotations"].(map[string]any)["a"] == "b",
		"podLabels":                  meta["labels"].(map[string]any)["team"] == "platform",
		"extraVolumes":               len(spec["volumes"].([]any)) == 2,
		"extraVolumeMounts":          len(c["volumeMounts"].([]any)) == 2,
		"image":                      c["image"] == "registry.local/keyferry:dev" && c["imagePullPolicy"] == "Never",
		"serviceAccount.annotations": chart.Find(objs, "ServiceAccount")[0].GetAnnotations()["azure.workload.identity/client-id"] == "x",
	}
	for name, ok := range checks {
		if !ok {
			t.Errorf("%s did not take effect", name)
		}
	}
}

// secretSync.awsRegion is the operator's AWS_REGION, next to extraEnv.
func TestSecretSyncAWSRegionIsTheOperatorsRegion(t *testing.T) {
	objs := render(t, map[string]any{
		"secretSync": map[string]any{"awsRegion": "eu-west-1"},
		"extraEnv":   []any{map[string]any{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}},
	})
	containers, _, _ := unstructured.NestedSlice(chart.Find(objs, "Deployment")[0].Object, "spec", "template", "spec", "containers")
	env := map[string]any{}
	for _, e := range containers[0].(map[string]any)["env"].([]any) {
		env[e.(map[string]any)["name"].(string)] = e.(map[string]any)["value"]
	}
	if env["AWS_REGION"] != "eu-west-1" || env["HTTPS_PROXY"] != "http://proxy:3128" {
		t.Errorf("env %v, want AWS_REGION=eu-west-1 and the extra HTTPS_PROXY", env)
	}
	defaults := render(t, nil)
	containers, _, _ = unstructured.NestedSlice(chart.Find(defaults, "Deployment")[0].Object, "spec", "template", "spec", "containers")
	if env, ok := containers[0].(map[string]any)["env"]; ok {
		t.Errorf("defaults set env %v", env)
	}
}

// TestREADMEListsEveryValue keeps the chart README's table in step with
// values.yaml.
func TestREADMEListsEveryValue(t *testing.T) {
	dir := filepath.Join(root(t), chart.Dir)
	raw, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Objects passed through as they are, documented as one row.
	whole := map[string]bool{"podSecurityContext": true, "securityContext": true, "resources": true}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			path := prefix + k
			if sub, ok := v.(map[string]any); ok && len(sub) > 0 && !whole[path] {
				walk(path+".", sub)
				continue
			}
			if !strings.Contains(string(readme), "| `"+path+"` |") {
				t.Errorf("README.md does not list %s", path)
			}
		}
	}
	walk("", values)
}

// TestArgsAreFlagsOfTheOperator runs the operator binary with the arguments
// the chart renders for every value set, followed by -h: the flag package
// stops at the first flag it does not know, so a chart that passes a flag
// `keyferry controller` lacks fails here instead of in a crash-looping pod.
func TestArgsAreFlagsOfTheOperator(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "keyferry")
	build := exec.CommandContext(ctx(t), "go", "build", "-o", bin, "./cmd/keyferry")
	build.Dir = root(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building keyferry: %v\n%s", err, out)
	}
	for name, values := range valueSets {
		t.Run(name, func(t *testing.T) {
			a := append([]string{"controller"}, args(t, render(t, values))...)
			out, err := exec.CommandContext(ctx(t), bin, append(a, "-h")...).CombinedOutput()
			if err != nil || strings.Contains(string(out), "flag provided but not defined") {
				t.Fatalf("keyferry %s -h: %v\n%s", strings.Join(a, " "), err, out)
			}
		})
	}
}

// An image tag of digits only (a short commit hash such as 5104869) reaches
// the templates as a number: from a values file, or from the stored values
// of `helm upgrade --reuse-values`, as a float64 that Go would print as
// 5.104869e+06. The image and the version label carry the digits.
func TestImageTagOfDigitsOnly(t *testing.T) {
	for tag, want := range map[any]string{5104869: "5104869", "5104869": "5104869", "v1.2.3": "v1.2.3", 1.5: "1.5"} {
		objs := render(t, map[string]any{"image": map[string]any{"repository": "registry.local/keyferry", "tag": tag}})
		deploy := chart.Find(objs, "Deployment")[0]
		containers, _, _ := unstructured.NestedSlice(deploy.Object, "spec", "template", "spec", "containers")
		if got := containers[0].(map[string]any)["image"]; got != "registry.local/keyferry:"+want {
			t.Errorf("tag %v (%T): image %v; want registry.local/keyferry:%s", tag, tag, got, want)
		}
		if got := deploy.GetLabels()["app.kubernetes.io/version"]; got != want {
			t.Errorf("tag %v (%T): version label %q; want %q", tag, tag, got, want)
		}
	}
}
