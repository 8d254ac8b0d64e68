package gcpsm

import (
	"context"
	"errors"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/gcpsmemulator"
)

// canary is a secret value no error may contain.
const canary = "kf-canary-Zq7Xw2Lp9"

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func gcpStore(g *esv1.GCPSMProvider) provider.Store {
	return provider.Store{
		Kind:      esv1.SecretStoreKind,
		Name:      "gcp",
		Namespace: "default",
		Spec:      &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{GCPSM: g}},
	}
}

// newClient builds a client of store g through the provider, with extra
// client options, and closes it when the test ends.
func newClient(t *testing.T, g *esv1.GCPSMProvider, opts ...option.ClientOption) provider.Client {
	t.Helper()
	c, err := NewWithClientOptions(opts...).NewClient(testContext(t), provider.Options{
		Store:     gcpStore(g),
		Namespace: "default",
		Kube:      kube,
		Tokens:    tokenRequester{clientset},
	})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// assertNoCanary fails when err's message holds the canary.
func assertNoCanary(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Fatalf("error message leaks a secret value: %v", err)
	}
}

func TestGetSecretReadsLatestAndNumberedVersions(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	name := srv.CreateSecret(t, "projects/p1", "db-password", nil)
	srv.AddVersion(t, name, []byte("first"))
	srv.AddVersion(t, name, []byte("second"))
	c := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"}, srv.ClientOptions()...)
	ctx := testContext(t)

	for _, tc := range []struct {
		version, wantData, wantVersion string
	}{
		{"", "second", "2"},
		{"latest", "second", "2"},
		{"1", "first", "1"},
		{"2", "second", "2"},
	} {
		v, err := c.GetSecret(ctx, provider.Ref{Key: "db-password", Version: tc.version})
		if err != nil {
			t.Fatalf("GetSecret version %q: %v", tc.version, err)
		}
		if string(v.Data) != tc.wantData || v.Version != tc.wantVersion {
			t.Errorf("GetSecret version %q = (%q, version %q), want (%q, version %q)", tc.version, v.Data, v.Version, tc.wantData, tc.wantVersion)
		}
	}

	_, err := c.GetSecret(ctx, provider.Ref{Key: "db-password", Version: "3"})
	if !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("GetSecret of a missing version: got %v, want ErrNotFound", err)
	}
}

func TestGetSecretMissingIsNotFound(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	srv.AddVersion(t, srv.CreateSecret(t, "projects/other", "elsewhere", nil), []byte("x"))
	srv.CreateSecret(t, "projects/p1", "no-versions", nil)
	c := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"}, srv.ClientOptions()...)
	ctx := testContext(t)

	for _, key := range []string{"does-not-exist", "elsewhere", "no-versions"} {
		_, err := c.GetSecret(ctx, provider.Ref{Key: key})
		if !errors.Is(err, provider.ErrNotFound) {
			t.Errorf("GetSecret(%s): got %v, want ErrNotFound", key, err)
			continue
		}
		if !strings.Contains(err.Error(), key) {
			t.Errorf("GetSecret(%s): error %q does not name the key", key, err)
		}
	}
}

func TestGetSecretRejectsKeysThatChangeThePath(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	c := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"}, srv.ClientOptions()...)
	for _, ref := range []provider.Ref{
		{Key: ""},
		{Key: "../../projects/p2/secrets/x"},
		{Key: "ok", Version: "1/../2"},
	} {
		if _, err := c.GetSecret(testContext(t), ref); err == nil {
			t.Errorf("GetSecret(%q) succeeded, want an error", ref)
		}
	}
}

// A rotated secret is read fresh: the client keeps no cache.
func TestGetSecretSeesRotation(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	name := srv.CreateSecret(t, "projects/p1", "api-key", nil)
	srv.AddVersion(t, name, []byte("before"))
	c := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"}, srv.ClientOptions()...)
	ctx := testContext(t)

	v, err := c.GetSecret(ctx, provider.Ref{Key: "api-key"})
	if err != nil || string(v.Data) != "before" {
		t.Fatalf("GetSecret before rotation = (%q, %v), want \"before\"", v.Data, err)
	}
	srv.AddVersion(t, name, []byte("after"))
	v, err = c.GetSecret(ctx, provider.Ref{Key: "api-key"})
	if err != nil || string(v.Data) != "after" || v.Version != "2" {
		t.Fatalf("GetSecret after rotation = (%q, version %q, %v), want \"after\" version 2", v.Data, v.Version, err)
	}
}

func TestRegionalStoreReadsRegionalSecrets(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	srv.AddVersion(t, srv.CreateSecret(t, "projects/p1/locations/europe-west1", "token", nil), []byte("regional"))
	srv.AddVersion(t, srv.CreateSecret(t, "projects/p1", "token", nil), []byte("global"))
	srv.AddVersion(t, srv.CreateSecret(t, "projects/p1", "global-only", nil), []byte("global"))
	ctx := testContext(t)

	// The emulator's endpoint replaces the regional one; the resource names
	// are the regional ones.
	regional := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1", Location: "europe-west1"}, srv.ClientOptions()...)
	v, err := regional.GetSecret(ctx, provider.Ref{Key: "token"})
	if err != nil || string(v.Data) != "regional" {
		t.Fatalf("regional GetSecret = (%q, %v), want \"regional\"", v.Data, err)
	}
	if _, err := regional.GetSecret(ctx, provider.Ref{Key: "global-only"}); !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("regional GetSecret of a global secret: got %v, want ErrNotFound", err)
	}
	found, err := fetch.FindIn(ctx, regional, provider.Find{})
	if err != nil {
		t.Fatalf("regional Find: %v", err)
	}
	if got := slices.Sorted(maps.Keys(found)); !slices.Equal(got, []string{"token"}) {
		t.Fatalf("regional Find = %v, want [token]", got)
	}

	global := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"}, srv.ClientOptions()...)
	v, err = global.GetSecret(ctx, provider.Ref{Key: "token"})
	if err != nil || string(v.Data) != "global" {
		t.Fatalf("global GetSecret = (%q, %v), want \"global\"", v.Data, err)
	}
}

func TestFindByNameRegexpPathAndLabels(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	seed := func(project, id, value string, labels map[string]string) {
		name := srv.CreateSecret(t, "projects/"+project, id, labels)
		if value != "" {
			srv.AddVersion(t, name, []byte(value))
		}
	}
	seed("p1", "app-db", "v-app-db", map[string]string{"team": "payments", "env": "prod"})
	seed("p1", "app-cache", "v-app-cache", map[string]string{"team": "payments", "env": "dev"})
	seed("p1", "other-db", "v-other-db", map[string]string{"team": "search", "env": "prod"})
	seed("p1", "app-empty", "", map[string]string{"team": "payments", "env": "prod"})
	seed("p2", "app-db", "v-p2", map[string]string{"team": "payments", "env": "prod"})
	c := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"}, srv.ClientOptions()...)

	for _, tc := range []struct {
		name string
		find provider.Find
		want map[string]string
	}{
		{"everything with a version", provider.Find{},
			map[string]string{"app-db": "v-app-db", "app-cache": "v-app-cache", "other-db": "v-other-db"}},
		{"name regexp", provider.Find{Name: "^app-"},
			map[string]string{"app-db": "v-app-db", "app-cache": "v-app-cache"}},
		{"one label", provider.Find{Tags: map[string]string{"env": "prod"}},
			map[string]string{"app-db": "v-app-db", "other-db": "v-other-db"}},
		{"all labels must match", provider.Find{Tags: map[string]string{"team": "payments", "env": "prod"}},
			map[string]string{"app-db": "v-app-db"}},
		{"name and labels", provider.Find{Name: "db$", Tags: map[string]string{"env": "prod"}},
			map[string]string{"app-db": "v-app-db", "other-db": "v-other-db"}},
		{"path prefix", provider.Find{Path: "other"},
			map[string]string{"other-db": "v-other-db"}},
		{"label value differs", provider.Find{Tags: map[string]string{"team": "Payments"}},
			map[string]string{}},
		{"label missing", provider.Find{Tags: map[string]string{"owner": "x"}},
			map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := fetch.FindIn(testContext(t), c, tc.find)
			if err != nil {
				t.Fatalf("Find: %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("Find = %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(tc.want)))
			}
			for k, v := range tc.want {
				if string(got[k]) != v {
					t.Errorf("Find[%s] = %q, want %q", k, got[k], v)
				}
			}
		})
	}

	if _, err := fetch.FindIn(testContext(t), c, provider.Find{Name: "("}); err == nil {
		t.Fatal("Find with an invalid regexp succeeded")
	}
}

func TestUnreachableStore(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens on addr any more
	c := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"},
		option.WithEndpoint(addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))

	_, err = c.GetSecret(testContext(t), provider.Ref{Key: "x"})
	if !errors.Is(err, provider.ErrUnreachable) {
		t.Fatalf("GetSecret from a closed port: got %v, want ErrUnreachable", err)
	}
	_, err = fetch.FindIn(testContext(t), c, provider.Find{})
	if !errors.Is(err, provider.ErrUnreachable) {
		t.Fatalf("Find from a closed port: got %v, want ErrUnreachable", err)
	}
}

// Every error the client returns for a secret holding the canary, or with
// credentials holding it, leaves it out.
func TestErrorsNeverContainSecretValues(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	name := srv.CreateSecret(t, "projects/p1", "canary", map[string]string{"env": "prod"})
	srv.AddVersion(t, name, []byte(canary))
	srv.AddVersion(t, name, []byte(`{"password":"`+canary+`"}`))
	c := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"}, srv.ClientOptions()...)
	ctx := testContext(t)

	// The value is readable, so the canary really is in the store.
	v, err := c.GetSecret(ctx, provider.Ref{Key: "canary", Version: "1"})
	if err != nil || string(v.Data) != canary {
		t.Fatalf("GetSecret(canary@1) = (%q, %v)", v.Data, err)
	}

	var errs []error
	for _, ref := range []provider.Ref{
		{Key: "canary", Version: "9"},
		{Key: "canary", Version: "a/b"},
		{Key: "canary/versions/1"},
		{Key: "missing"},
	} {
		_, err := c.GetSecret(ctx, ref)
		errs = append(errs, err)
	}
	_, err = fetch.FindIn(ctx, c, provider.Find{Name: "("})
	errs = append(errs, err)
	errs = append(errs, credentialErrors(t, canary)...)

	for _, err := range errs {
		if err == nil {
			t.Fatal("a provoked error did not happen")
		}
		assertNoCanary(t, err)
	}
}

// A listing makes one ListSecrets call a page (5 secrets, 2 a page: 3
// calls) and follows the page token to the end.
func TestListingIsOneCallAPage(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	want := []string{"page-0", "page-1", "page-2", "page-3", "page-4"}
	for _, id := range want {
		srv.AddVersion(t, srv.CreateSecret(t, "projects/p1", id, nil), []byte("v-"+id))
	}
	c := newClient(t, &esv1.GCPSMProvider{ProjectID: "p1"}, srv.ClientOptions()...).(*Client)
	c.pageSize = 2
	pages := c.ListSecrets(testContext(t), provider.List{Path: "page-"})
	var got []string
	n := 0
	for pages.More() {
		page, err := pages.NextPage(testContext(t))
		if err != nil {
			t.Fatal(err)
		}
		n++
		for _, l := range page {
			got = append(got, l.Name)
		}
	}
	// The emulator lists in map order, which changes from call to call, so
	// its pages may overlap: count them and their entries, not the names.
	if len(got) != len(want) || n != 3 {
		t.Fatalf("listed %v in %d pages, want %d secrets in 3", got, n, len(want))
	}
}
