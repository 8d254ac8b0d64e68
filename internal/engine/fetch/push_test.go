package fetch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/fake"
)

// A push goes through the store's client, counts as a call, and makes the
// next read of the key it wrote fetch the new value instead of the cached
// one; its subscribers are told.
func TestAPushInvalidatesTheCachedValueOfItsKey(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var told []string
	l := New(ctx, Options{Registry: reg, OnChange: func(subs []string) { told = append(told, subs...) }})
	r := req("es", time.Hour)
	r.Store.Spec = &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Fake: &esv1.FakeProvider{}}}
	ref := provider.PushRef{RemoteKey: "k"}
	push := func(v string) {
		t.Helper()
		st, err := l.Inspect(context.Background(), r, ref)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Push(context.Background(), r, ref, provider.PushValue{SecretKey: "s", Value: []byte(v)}, st); err != nil {
			t.Fatal(err)
		}
	}
	push("one")
	get := func() string {
		t.Helper()
		vals, errs := l.Get(context.Background(), r, []provider.Ref{{Key: "k"}})
		if len(errs) != 0 {
			t.Fatal(errs)
		}
		return string(vals[provider.Ref{Key: "k"}].Data)
	}
	if got := get(); got != "one" {
		t.Fatalf("k = %q", got)
	}
	push("two")
	if got := get(); got != "two" {
		t.Fatalf("k = %q after a push; want the pushed value, not the cached one", got)
	}
	if len(told) == 0 {
		t.Fatal("the subscribers of the pushed key were not told")
	}
	if n := l.Calls(r.Store.Kind, r.Store.Namespace, r.Store.Name); n != 6 {
		t.Fatalf("%d calls; want 6 (2 inspects, 2 pushes, 2 reads)", n)
	}
}

// A client that cannot push fails with ErrNotSupported, calling nothing.
func TestAPushToAStoreThatCannotPushIsNotSupported(t *testing.T) {
	p := &countingProvider{}
	l, _ := newLayer(t, p, nil)
	_, err := l.Inspect(context.Background(), req("ps", 0), provider.PushRef{RemoteKey: "k"})
	if !errors.Is(err, provider.ErrNotSupported) {
		t.Fatalf("Inspect = %v; want ErrNotSupported", err)
	}
}

// aliasingProvider is the fake provider whose clients say that a push to
// "secret/<k>" is also read as "<k>" (provider.PushReadKeys), as Azure Key
// Vault's are.
type aliasingProvider struct{ provider.Provider }

type aliasingClient struct {
	provider.Client
	provider.Pusher
}

func (p aliasingProvider) NewClient(ctx context.Context, opts provider.Options) (provider.Client, error) {
	c, err := p.Provider.NewClient(ctx, opts)
	if err != nil {
		return nil, err
	}
	return aliasingClient{Client: c, Pusher: c.(provider.Pusher)}, nil
}

func (aliasingClient) ReadKeys(ref provider.PushRef) []string {
	if k, ok := strings.CutPrefix(ref.RemoteKey, "secret/"); ok {
		return []string{k}
	}
	return nil
}

// A push invalidates the cached values of every spelling the provider
// reads the pushed secret by, not only the remote key it was pushed to.
func TestAPushInvalidatesEverySpellingTheProviderReadsItBy(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register("fake", aliasingProvider{fake.New()})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var told []string
	l := New(ctx, Options{Registry: reg, OnChange: func(subs []string) { told = append(told, subs...) }})
	r := req("es", time.Hour)
	r.Store.Spec = &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Fake: &esv1.FakeProvider{}}}
	read := provider.Ref{Key: "k"}
	if _, errs := l.Get(context.Background(), r, []provider.Ref{read}); len(errs) != 1 {
		t.Fatalf("reading k before any push: %v; want one not-found error", errs)
	}
	ref := provider.PushRef{RemoteKey: "secret/k"}
	st, err := l.Inspect(context.Background(), r, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Push(context.Background(), r, ref, provider.PushValue{SecretKey: "s", Value: []byte("v")}, st); err != nil {
		t.Fatal(err)
	}
	if len(told) == 0 {
		t.Fatal("the subscribers of k were not told of a push to secret/k")
	}
}

// A push with metadata to a provider that takes none is refused as an
// invalid push before anything is written; without metadata it pushes.
func TestPushMetadataToAProviderThatTakesNoneIsRefused(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := New(ctx, Options{Registry: reg})
	r := req("ps", time.Hour)
	r.Store.Spec = &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{Fake: &esv1.FakeProvider{}}}
	ref := provider.PushRef{RemoteKey: "k"}
	st, err := l.Inspect(context.Background(), r, ref)
	if err != nil {
		t.Fatal(err)
	}
	meta := []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"tags":{"a":"b"}}}`)
	_, err = l.Push(context.Background(), r, ref, provider.PushValue{SecretKey: "s", Value: []byte("v"), Metadata: meta}, st)
	if !errors.Is(err, provider.ErrInvalidPush) || !strings.Contains(err.Error(), "takes no metadata") {
		t.Fatalf("Push with metadata = %v; want ErrInvalidPush saying the provider takes no metadata", err)
	}
	if st, err := l.Inspect(context.Background(), r, ref); err != nil || st.Exists {
		t.Fatalf("after the refusal: %+v, %v; want nothing written", st, err)
	}
	if _, err := l.Push(context.Background(), r, ref, provider.PushValue{SecretKey: "s", Value: []byte("v")}, st); err != nil {
		t.Fatalf("Push without metadata = %v", err)
	}
}

// Two fake SecretStores with the same spec in two namespaces never share
// what is pushed to them: a tenant must not read another tenant's pushes.
func TestFakeStoresOfTwoNamespacesNeverShareTheirPushes(t *testing.T) {
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := New(ctx, Options{Registry: reg})
	in := func(ns string) Request {
		r := req("ps-"+ns, time.Hour)
		r.Store.Namespace, r.Namespace = ns, ns
		return r
	}
	a, b := in("tenant-a"), in("tenant-b")
	ref := provider.PushRef{RemoteKey: "k"}
	st, err := l.Inspect(context.Background(), a, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Push(context.Background(), a, ref, provider.PushValue{SecretKey: "s", Value: []byte("tenant-a's value")}, st); err != nil {
		t.Fatal(err)
	}
	if st, err := l.Inspect(context.Background(), b, ref); err != nil || st.Exists {
		t.Fatalf("tenant-b's identical store sees tenant-a's push: %+v, %v", st, err)
	}
	if _, errs := l.Get(context.Background(), b, []provider.Ref{{Key: "k"}}); len(errs) == 0 {
		t.Fatal("tenant-b read the value tenant-a pushed")
	}
	if vals, errs := l.Get(context.Background(), a, []provider.Ref{{Key: "k"}}); len(errs) != 0 || string(vals[provider.Ref{Key: "k"}].Data) != "tenant-a's value" {
		t.Fatalf("tenant-a reads %v, %v; want its own push", vals, errs)
	}
}
