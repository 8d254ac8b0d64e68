package engine_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/kube"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/all"
)

// laggingCache answers reads of one Secret with an older version of it, as
// the operator's informer does until it has relisted (after an API-server
// restart, for example); every other read and every write goes to the API
// server.
type laggingCache struct {
	client.Client
	old *corev1.Secret
}

func (c laggingCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if s, ok := obj.(*corev1.Secret); ok && key == client.ObjectKeyFromObject(c.old) {
		c.old.DeepCopyInto(s)
		return nil
	}
	return c.Client.Get(ctx, key, obj, opts...)
}

// fakeStore is a SecretStore "ours" of the fake provider with one key k.
func fakeStore(value string) string {
	return `apiVersion: external-secrets.io/v1
kind: SecretStore
metadata:
  name: ours
spec:
  provider:
    fake:
      data:
      - key: k
        value: ` + value + "\n"
}

// orphanPlan is an engine on the test API server and the plan of an
// ExternalSecret "es" that writes k of store "ours" into Secret "out".
func orphanPlan(ctx context.Context, ns string) (*engine.Engine, engine.Plan) {
	reg := all.Registry(all.Options{Config: env.Cluster.Config})
	layer := fetch.New(ctx, fetch.Options{Registry: reg, Kube: env.Client})
	plan := engine.Plan{
		Owner:   engine.Owner{APIVersion: esv1.GroupVersion.String(), Kind: "ExternalSecret", Namespace: ns, Name: "es"},
		Target:  engine.Target{Name: "out", Type: corev1.SecretTypeOpaque, CreationPolicy: esv1.CreatePolicyOrphan, ManagedBy: "ExternalSecret/es"},
		Sources: []engine.Source{{Store: engine.StoreRef{Kind: esv1.SecretStoreKind, Name: "ours"}, Data: &engine.DataSource{SecretKey: "k", Ref: provider.Ref{Key: "k"}}}},
	}
	return &engine.Engine{Client: env.Client, APIReader: env.Client, Fetch: layer, Registry: reg}, plan
}

// A write decided on a stale cached Secret conflicts; apply decides again on
// the Secret as the API server has it and writes, instead of failing every
// refresh until the cache catches up.
func TestApplyRecoversFromAStaleCache(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("v"))
	e, plan := orphanPlan(ctx, ns)
	if _, err := e.Execute(ctx, plan); err != nil {
		t.Fatalf("first sync: %v", err)
	}

	// Someone edits the Secret twice; the cache has seen only the first edit.
	key := client.ObjectKey{Namespace: ns, Name: "out"}
	var s corev1.Secret
	if err := env.Client.Get(ctx, key, &s); err != nil {
		t.Fatal(err)
	}
	s.Data["k"] = []byte("edited")
	if err := env.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	stale := s.DeepCopy()
	s.Annotations["someone"] = "else"
	if err := env.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}

	e.Client = laggingCache{Client: env.Client, old: stale}
	res, err := e.Execute(ctx, plan)
	if err != nil {
		t.Fatalf("sync on a stale cache = %v; want the Secret restored", err)
	}
	if !res.Updated {
		t.Errorf("sync on a stale cache: Result %+v, want Updated", res)
	}
	if err := env.Client.Get(ctx, key, &s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data["k"]) != "v" || s.Annotations["someone"] != "else" {
		t.Errorf("Secret after the sync: data k = %q, annotation someone = %q; want k restored and the other edit kept", s.Data["k"], s.Annotations["someone"])
	}
}

// Result.SecretRV is the Secret's resourceVersion as the API server has it
// after each kind of sync (created, unchanged, updated), so the controller
// can tell its own write from someone else's without reading its cache.
func TestResultCarriesTheSecretResourceVersion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("v1"))
	e, plan := orphanPlan(ctx, ns)
	current := func() string {
		var s corev1.Secret
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "out"}, &s); err != nil {
			t.Fatal(err)
		}
		return s.ResourceVersion
	}
	for _, step := range []struct {
		name, value string
		want        func(engine.Result) bool
	}{
		{"created", "v1", func(r engine.Result) bool { return r.Created }},
		{"unchanged", "v1", func(r engine.Result) bool { return !r.Changed() }},
		{"updated", "v2", func(r engine.Result) bool { return r.Updated }},
	} {
		env.Apply(t, ns, fakeStore(step.value))
		plan.MaxAge = 0 // fetch afresh: the store's value may have changed
		res, err := e.Execute(ctx, plan)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if !step.want(res) {
			t.Fatalf("%s: Result %+v", step.name, res)
		}
		if rv := current(); res.SecretRV == "" || res.SecretRV != rv {
			t.Errorf("%s: Result.SecretRV = %q, the Secret is at %q", step.name, res.SecretRV, rv)
		}
	}
}

// digestingCache answers reads of Secrets as the operator's cache holds
// them: their values replaced by a digest (kube.DigestSecretData).
type digestingCache struct{ client.Client }

func (c digestingCache) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if err := c.Client.Get(ctx, key, obj, opts...); err != nil {
		return err
	}
	if s, ok := obj.(*corev1.Secret); ok {
		kube.DigestSecretData(s)
	}
	return nil
}

// countingReader counts the Secrets read from the API server.
type countingReader struct {
	client.Reader
	secretReads *int
}

func (r countingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if _, ok := obj.(*corev1.Secret); ok {
		*r.secretReads++
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

// With the cache holding only a digest of a Secret's values, a sync that
// changes nothing reads nothing more; one that changes the values, or
// merges into the Secret, reads it from the API server and writes it whole,
// without the cache's annotation.
func TestApplyDecidesOnTheDigestTheCacheHolds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := env.Namespace(t)
	env.Apply(t, ns, fakeStore("v1"))
	e, plan := orphanPlan(ctx, ns)
	if _, err := e.Execute(ctx, plan); err != nil {
		t.Fatalf("first sync: %v", err)
	}
	reads := 0
	e.Client, e.APIReader = digestingCache{env.Client}, countingReader{env.Client, &reads}
	key := client.ObjectKey{Namespace: ns, Name: "out"}
	check := func(step, want string, wantReads int, changed bool) {
		t.Helper()
		plan.MaxAge = 0 // fetch afresh: the store's value may have changed
		reads = 0
		res, err := e.Execute(ctx, plan)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		if res.Changed() != changed || reads != wantReads {
			t.Errorf("%s: changed %v after %d reads of the Secret; want %v after %d", step, res.Changed(), reads, changed, wantReads)
		}
		var s corev1.Secret
		if err := env.Client.Get(ctx, key, &s); err != nil {
			t.Fatal(err)
		}
		if string(s.Data["k"]) != want {
			t.Errorf("%s: k = %q, want %q", step, s.Data["k"], want)
		}
		if _, ok := s.Annotations[kube.AnnotationCachedDataDigest]; ok {
			t.Errorf("%s: the Secret carries the cache's annotation %s", step, kube.AnnotationCachedDataDigest)
		}
	}
	check("unchanged", "v1", 0, false)
	env.Apply(t, ns, fakeStore("v2"))
	check("new value", "v2", 1, true)
	check("unchanged again", "v2", 0, false)

	// A merge keeps the keys it does not write, so it reads them.
	var s corev1.Secret
	if err := env.Client.Get(ctx, key, &s); err != nil {
		t.Fatal(err)
	}
	s.Data["theirs"] = []byte("kept")
	if err := env.Client.Update(ctx, &s); err != nil {
		t.Fatal(err)
	}
	plan.Target.CreationPolicy = esv1.CreatePolicyMerge
	env.Apply(t, ns, fakeStore("v3"))
	check("merge", "v3", 1, true)
	if err := env.Client.Get(ctx, key, &s); err != nil {
		t.Fatal(err)
	}
	if string(s.Data["theirs"]) != "kept" {
		t.Errorf("merge: theirs = %q, want it kept", s.Data["theirs"])
	}
}
