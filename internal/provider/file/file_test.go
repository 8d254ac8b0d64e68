package file

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// canary is the content of files outside the root and of values the tests
// read; it must never show in an error.
const canary = "CANARY-5eb63bbbe01eeed0"

func store(root, poll string) provider.Store {
	return provider.Store{Kind: esv1.ClusterSecretStoreKind, Name: "mounted",
		Spec: &esv1.SecretStoreSpec{Provider: &esv1.SecretStoreProvider{File: &esv1.FileProvider{Path: root, PollInterval: poll}}}}
}

func newClient(t *testing.T, root, poll string) *Client {
	t.Helper()
	c, err := New().NewClient(context.Background(), provider.Options{Store: store(root, poll), Log: testr.New(t)})
	if err != nil {
		t.Fatalf("building the client: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("closing: %v", err)
		}
	})
	return c.(*Client)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// writeAtomic updates root the way kubelet's atomic writer (and the Secrets
// Store CSI driver, which uses it) does: the payload goes into a new
// timestamped directory, a ..data_tmp link to it is renamed over ..data in
// one step, each top-level name is a link through ..data, and the previous
// timestamped directory is removed.
func writeAtomic(t *testing.T, root string, payload map[string]string) {
	t.Helper()
	dataDir := filepath.Join(root, "..data")
	old, _ := os.Readlink(dataDir)
	tsDir, err := os.MkdirTemp(root, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		t.Fatal(err)
	}
	tops := map[string]bool{}
	for name, content := range payload {
		writeFile(t, filepath.Join(tsDir, name), content)
		tops[strings.SplitN(name, "/", 2)[0]] = true
	}
	tmpLink := filepath.Join(root, "..data_tmp")
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmpLink, dataDir); err != nil {
		t.Fatal(err)
	}
	for top := range tops {
		link := filepath.Join(root, top)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", top), link); err != nil {
			t.Fatal(err)
		}
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(root, old)); err != nil {
			t.Fatal(err)
		}
	}
}

func assertNoCanary(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Fatalf("error leaks a value: %v", err)
	}
}

func get(t *testing.T, c *Client, key string) (string, error) {
	t.Helper()
	v, err := c.GetSecret(context.Background(), provider.Ref{Key: key})
	assertNoCanary(t, err)
	return string(v.Data), err
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	assertNoCanary(t, err)
	if !errors.Is(err, target) {
		t.Fatalf("got %v, want an error wrapping %q", err, target)
	}
	t.Logf("error as the user sees it: %v", err)
}

func TestGetSecretReadsFiles(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "password"), canary)
	writeFile(t, filepath.Join(root, "team-a", "db", "user"), "app\n")
	writeFile(t, filepath.Join(root, "empty"), "")
	c := newClient(t, root, "")

	for key, want := range map[string]string{"password": canary, "team-a/db/user": "app\n", "empty": "", "./password": canary, "team-a//db/user": "app\n"} {
		got, err := get(t, c, key)
		if err != nil {
			t.Fatalf("GetSecret(%q): %v", key, err)
		}
		if got != want {
			t.Fatalf("GetSecret(%q) = %q, want %q", key, got, want)
		}
	}
	for _, key := range []string{"nope", "team-a/nope", "team-a", "password/x", "", "."} {
		_, err := get(t, c, key)
		wantErr(t, err, provider.ErrNotFound)
	}
	_, err := c.GetSecret(context.Background(), provider.Ref{Key: "password", Version: "2"})
	wantErr(t, err, provider.ErrNotSupported)
}

func TestAtomicWriterLayoutIsReadThroughItsLinks(t *testing.T) {
	root := t.TempDir()
	writeAtomic(t, root, map[string]string{"tls.crt": "CERT", "tls.key": canary, "nested/ca.crt": "CA"})
	c := newClient(t, root, "")
	for key, want := range map[string]string{"tls.crt": "CERT", "tls.key": canary, "nested/ca.crt": "CA", "..data/tls.crt": "CERT"} {
		got, err := get(t, c, key)
		if err != nil {
			t.Fatalf("GetSecret(%q): %v", key, err)
		}
		if got != want {
			t.Fatalf("GetSecret(%q) = %q, want %q", key, got, want)
		}
	}
	all, err := fetch.FindIn(context.Background(), c, provider.Find{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedKeys(all), []string{"nested/ca.crt", "tls.crt", "tls.key"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Find listed %v, want %v (dot entries such as ..data skipped)", got, want)
	}

	writeAtomic(t, root, map[string]string{"tls.crt": "CERT2", "tls.key": canary, "nested/ca.crt": "CA"})
	if got, _ := get(t, c, "tls.crt"); got != "CERT2" {
		t.Fatalf("after the swap GetSecret(tls.crt) = %q, want CERT2", got)
	}
}

func TestKeysThatEscapeTheRootAreRefused(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	writeFile(t, filepath.Join(outside, "secret"), canary)
	writeFile(t, filepath.Join(root, "a"), "in-root")
	writeFile(t, filepath.Join(root, "sub", "b"), "in-root-b")
	symlink(t, "../outside/secret", filepath.Join(root, "link-out"))
	symlink(t, "../outside", filepath.Join(root, "dir-out"))
	symlink(t, filepath.Join(outside, "secret"), filepath.Join(root, "abs-link"))
	symlink(t, filepath.Join(root, "a"), filepath.Join(root, "abs-link-inside"))
	symlink(t, "hop2", filepath.Join(root, "hop1"))
	symlink(t, "sub/../../outside/secret", filepath.Join(root, "hop2"))
	symlink(t, "../../outside/secret", filepath.Join(root, "sub", "deep-out"))
	symlink(t, "../a", filepath.Join(root, "sub", "up-in")) // stays inside: allowed
	symlink(t, "loop", filepath.Join(root, "loop"))
	c := newClient(t, root, "")

	for _, key := range []string{
		"../outside/secret",
		"sub/../../outside/secret",
		"..",
		"/etc/passwd",
		filepath.Join(outside, "secret"),
		"link-out",
		"dir-out/secret",
		"abs-link",
		"abs-link-inside", // absolute links are refused even when they point inside
		"hop1",
		"sub/deep-out",
	} {
		t.Run(key, func(t *testing.T) {
			_, err := get(t, c, key)
			wantErr(t, err, ErrEscapesRoot)
			wantErr(t, err, provider.ErrForbidden)
			if !strings.Contains(err.Error(), "path escapes the store root") {
				t.Fatalf("error %q does not say the path escapes the store root", err)
			}
		})
	}
	if got, err := get(t, c, "sub/up-in"); err != nil || got != "in-root" {
		t.Fatalf("an in-root link with ..: got %q, %v", got, err)
	}
	if _, err := get(t, c, "loop"); err == nil {
		t.Fatal("a link loop was read")
	}

	all, err := fetch.FindIn(context.Background(), c, provider.Find{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedKeys(all), []string{"a", "sub/b", "sub/up-in"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Find listed %v, want %v (links out of the root skipped)", got, want)
	}
}

func TestResolve(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "..2025_01_01_00_00_00.123", "tls.crt"), "x")
	writeFile(t, filepath.Join(root, "..2025_01_01_00_00_00.123", "dir", "f"), "x")
	symlink(t, "..2025_01_01_00_00_00.123", filepath.Join(root, "..data"))
	symlink(t, "..data/tls.crt", filepath.Join(root, "tls.crt"))
	symlink(t, "..data/dir", filepath.Join(root, "dir"))
	symlink(t, "../..", filepath.Join(root, "dir-up"))
	tests := []struct {
		key, want string
		err       error
	}{
		{"tls.crt", "..2025_01_01_00_00_00.123/tls.crt", nil},
		{"dir/f", "..2025_01_01_00_00_00.123/dir/f", nil},
		{"..data/dir/f", "..2025_01_01_00_00_00.123/dir/f", nil},
		{"./tls.crt", "..2025_01_01_00_00_00.123/tls.crt", nil},
		{"missing", "", os.ErrNotExist},
		{"tls.crt/under-a-file", "", os.ErrNotExist},
		{"../x", "", ErrEscapesRoot},
		{"/abs", "", ErrEscapesRoot},
		{"dir-up/x", "", ErrEscapesRoot},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			got, err := resolve(root, tt.key)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("resolve(%q) = %q, %v; want an error wrapping %v", tt.key, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("resolve(%q) = %q, %v; want %q", tt.key, got, err, tt.want)
			}
		})
	}
}

func TestFind(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "db-password"), "p")
	writeFile(t, filepath.Join(root, "db-user"), "u")
	writeFile(t, filepath.Join(root, "api-key"), "k")
	writeFile(t, filepath.Join(root, "certs", "tls.crt"), "c")
	writeFile(t, filepath.Join(root, "certs", "tls.key"), "k")
	writeFile(t, filepath.Join(root, ".hidden"), "h")
	c := newClient(t, root, "")
	tests := []struct {
		name string
		find provider.Find
		want []string
	}{
		{"everything", provider.Find{}, []string{"api-key", "certs/tls.crt", "certs/tls.key", "db-password", "db-user"}},
		{"name regexp", provider.Find{Name: "^db-"}, []string{"db-password", "db-user"}},
		{"regexp over the whole key", provider.Find{Name: `\.key$`}, []string{"certs/tls.key"}},
		{"path prefix", provider.Find{Path: "certs/"}, []string{"certs/tls.crt", "certs/tls.key"}},
		{"path prefix with a leading slash", provider.Find{Path: "/certs"}, []string{"certs/tls.crt", "certs/tls.key"}},
		{"path and name", provider.Find{Path: "certs/", Name: "crt"}, []string{"certs/tls.crt"}},
		{"nothing", provider.Find{Name: "^nope$"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fetch.FindIn(context.Background(), c, tt.find)
			if err != nil {
				t.Fatal(err)
			}
			if keys := sortedKeys(got); !reflect.DeepEqual(keys, tt.want) {
				t.Fatalf("Find(%+v) = %v, want %v", tt.find, keys, tt.want)
			}
		})
	}
	got, _ := fetch.FindIn(context.Background(), c, provider.Find{Name: "^db-password$"})
	if string(got["db-password"]) != "p" {
		t.Fatalf("Find returned %q for db-password, want its content", got["db-password"])
	}
	_, err := fetch.FindIn(context.Background(), c, provider.Find{Tags: map[string]string{"env": "prod"}})
	wantErr(t, err, provider.ErrNotSupported)
	_, err = fetch.FindIn(context.Background(), c, provider.Find{Name: "("})
	wantErr(t, err, provider.ErrInvalidConfig)
}

func TestNewClientChecksTheRoot(t *testing.T) {
	dir := t.TempDir()
	_, err := New().NewClient(context.Background(), provider.Options{Store: store(filepath.Join(dir, "missing"), "")})
	wantErr(t, err, provider.ErrUnreachable)
	writeFile(t, filepath.Join(dir, "file"), "x")
	_, err = New().NewClient(context.Background(), provider.Options{Store: store(filepath.Join(dir, "file"), "")})
	wantErr(t, err, provider.ErrInvalidConfig)
}

func TestValidateSpec(t *testing.T) {
	tests := []struct {
		name, path, poll string
		valid            bool
	}{
		{"defaults", "/mnt/secrets", "", true},
		{"poll interval", "/mnt/secrets", "30s", true},
		{"relative path", "mnt/secrets", "", false},
		{"empty path", "", "", false},
		{"bad poll interval", "/mnt/secrets", "often", false},
		{"poll interval too short", "/mnt/secrets", "1ms", false},
		{"negative poll interval", "/mnt/secrets", "-1m", false},
	}
	namespaced := store("/mnt/secrets", "")
	namespaced.Kind, namespaced.Namespace = esv1.SecretStoreKind, "team-a"
	if err := New().ValidateSpec(namespaced); !errors.Is(err, provider.ErrInvalidConfig) {
		t.Fatalf("a namespaced SecretStore: got %v, want it refused", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := New().ValidateSpec(store(tt.path, tt.poll))
			if tt.valid && err != nil {
				t.Fatalf("want valid, got %v", err)
			}
			if !tt.valid && !errors.Is(err, provider.ErrInvalidConfig) {
				t.Fatalf("got %v, want an invalid configuration", err)
			}
		})
	}
}

func sortedKeys(m map[string][]byte) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestLinkedDirectoriesAreListedUnderEachName(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "real", "f"), "x")
	symlink(t, "real", filepath.Join(root, "alias"))
	symlink(t, "..", filepath.Join(root, "real", "up")) // a loop back to the root
	c := newClient(t, root, "")
	all, err := fetch.FindIn(context.Background(), c, provider.Find{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedKeys(all), []string{"alias/f", "real/f"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Find listed %v, want %v", got, want)
	}
}
