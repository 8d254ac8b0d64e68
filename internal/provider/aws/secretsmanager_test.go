package aws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// createSecret creates a secret with a string value and tags.
func createSecret(t *testing.T, name, value string, tags map[string]string) *secretsmanager.CreateSecretOutput {
	t.Helper()
	in := &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		in.Tags = append(in.Tags, smtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	out, err := adminSM().CreateSecret(context.Background(), in)
	if err != nil {
		t.Fatalf("creating secret %s: %v", name, err)
	}
	return out
}

func putSecret(t *testing.T, name, value string) *secretsmanager.PutSecretValueOutput {
	t.Helper()
	out, err := adminSM().PutSecretValue(context.Background(), &secretsmanager.PutSecretValueInput{
		SecretId: aws.String(name), SecretString: aws.String(value),
	})
	if err != nil {
		t.Fatalf("putting a value in secret %s: %v", name, err)
	}
	return out
}

func smSpec() esv1.AWSProvider {
	return esv1.AWSProvider{Service: esv1.AWSServiceSecretsManager}
}

func TestSecretsManagerGetSecret(t *testing.T) {
	ctx := context.Background()
	first := createSecret(t, "sm-get/api-key", "first", nil)
	second := putSecret(t, "sm-get/api-key", `{"user":"admin","password":"`+valueCanary+`"}`)
	binary := []byte{0x00, 0x01, 0xfe, 0xff, '\n'}
	if _, err := adminSM().CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String("sm-get/binary"), SecretBinary: binary,
	}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, motoProvider(nil), smSpec())

	tests := []struct {
		name        string
		ref         provider.Ref
		want        []byte
		wantVersion string
	}{
		{"no version reads AWSCURRENT", provider.Ref{Key: "sm-get/api-key"},
			[]byte(`{"user":"admin","password":"` + valueCanary + `"}`), aws.ToString(second.VersionId)},
		{"stage AWSCURRENT", provider.Ref{Key: "sm-get/api-key", Version: "AWSCURRENT"},
			[]byte(`{"user":"admin","password":"` + valueCanary + `"}`), aws.ToString(second.VersionId)},
		{"stage AWSPREVIOUS", provider.Ref{Key: "sm-get/api-key", Version: "AWSPREVIOUS"},
			[]byte("first"), aws.ToString(first.VersionId)},
		{"uuid/ selects a VersionId", provider.Ref{Key: "sm-get/api-key", Version: "uuid/" + aws.ToString(first.VersionId)},
			[]byte("first"), aws.ToString(first.VersionId)},
		{"SecretBinary is returned as raw bytes", provider.Ref{Key: "sm-get/binary"}, binary, ""},
		{"a key may be the secret's ARN", provider.Ref{Key: aws.ToString(first.ARN)},
			[]byte(`{"user":"admin","password":"` + valueCanary + `"}`), aws.ToString(second.VersionId)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := c.GetSecret(ctx, tt.ref)
			if err != nil {
				t.Fatalf("GetSecret(%s): %v", tt.ref, err)
			}
			if !bytes.Equal(v.Data, tt.want) {
				t.Errorf("GetSecret(%s).Data = %q, want %q", tt.ref, v.Data, tt.want)
			}
			if tt.wantVersion != "" && v.Version != tt.wantVersion {
				t.Errorf("GetSecret(%s).Version = %q, want %q", tt.ref, v.Version, tt.wantVersion)
			}
			if v.Fields != nil {
				t.Errorf("GetSecret(%s).Fields = %v, want nil: the engine applies properties", tt.ref, v.Fields)
			}
		})
	}

	notFound := []provider.Ref{
		{Key: "sm-get/missing"},
		{Key: "sm-get/api-key", Version: "NOSUCHSTAGE"},
		{Key: "sm-get/api-key", Version: "uuid/00000000-0000-0000-0000-000000000099"},
	}
	for _, ref := range notFound {
		t.Run("not found: "+ref.String(), func(t *testing.T) {
			_, err := c.GetSecret(ctx, ref)
			if !errors.Is(err, provider.ErrNotFound) {
				t.Fatalf("GetSecret(%s) = %v, want ErrNotFound", ref, err)
			}
			assertNoCanary(t, err)
		})
	}
}

func TestSecretsManagerPrefix(t *testing.T) {
	createSecret(t, "team-a/db", "prefixed", nil)
	spec := smSpec()
	spec.Prefix = "team-a/"
	c := newClient(t, motoProvider(nil), spec)
	v, err := c.GetSecret(context.Background(), provider.Ref{Key: "db"})
	if err != nil {
		t.Fatal(err)
	}
	if string(v.Data) != "prefixed" {
		t.Fatalf("GetSecret(db) with prefix team-a/ = %q, want the value of team-a/db", v.Data)
	}
}

func TestSecretsManagerSecretMarkedForDeletionIsNotFound(t *testing.T) {
	ctx := context.Background()
	createSecret(t, "sm-deleted/old", valueCanary, nil)
	if _, err := adminSM().DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{
		SecretId: aws.String("sm-deleted/old"), RecoveryWindowInDays: aws.Int64(7),
	}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, motoProvider(nil), smSpec())
	_, err := c.GetSecret(ctx, provider.Ref{Key: "sm-deleted/old"})
	if !errors.Is(err, provider.ErrNotFound) {
		t.Fatalf("GetSecret of a secret marked for deletion = %v, want ErrNotFound", err)
	}
	assertNoCanary(t, err)
}

// A value rotated in Secrets Manager is what the next read returns: the
// provider keeps no cache of its own (the engine caches per refresh window).
func TestSecretsManagerRotation(t *testing.T) {
	ctx := context.Background()
	createSecret(t, "sm-rotate/token", "v1", nil)
	c := newClient(t, motoProvider(nil), smSpec())
	batch := c.(provider.BatchGetter)
	ref := provider.Ref{Key: "sm-rotate/token"}
	for _, want := range []string{"v1", "v2", "v3"} {
		if want != "v1" {
			putSecret(t, "sm-rotate/token", want)
		}
		v, err := c.GetSecret(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		if string(v.Data) != want {
			t.Fatalf("GetSecret after rotation = %q, want %q", v.Data, want)
		}
		values, errs := batch.GetSecrets(ctx, []provider.Ref{ref})
		if len(errs) > 0 || string(values[ref].Data) != want {
			t.Fatalf("GetSecrets after rotation = %q (errors %v), want %q", values[ref].Data, errs, want)
		}
	}
}

// N refs of one refresh cost ceil(N/20) BatchGetSecretValue calls and no
// GetSecretValue calls, whatever their mix of found and missing secrets.
func TestSecretsManagerBatchCallCount(t *testing.T) {
	ctx := context.Background()
	const n = 45
	var refs []provider.Ref
	missing := map[string]bool{}
	for i := range n - 1 {
		name := fmt.Sprintf("sm-batch/key-%02d", i)
		refs = append(refs, provider.Ref{Key: name})
		if i%11 == 0 {
			missing[name] = true // never created
			continue
		}
		createSecret(t, name, "value-"+name, nil)
	}
	// The same secret twice (as AWSCURRENT) costs nothing more.
	refs = append(refs, provider.Ref{Key: "sm-batch/key-01", Version: "AWSCURRENT"})

	rec := newRecorder()
	c := newClient(t, motoProvider(rec), smSpec())
	rec.reset()
	values, errs := c.(provider.BatchGetter).GetSecrets(ctx, refs)

	if got, want := len(rec.calls("BatchGetSecretValue")), (n+19)/20; got != want {
		t.Errorf("%d refs cost %d BatchGetSecretValue calls, want %d", n, got, want)
	}
	if got := len(rec.calls("GetSecretValue")); got != 0 {
		t.Errorf("GetSecrets made %d GetSecretValue calls, want 0", got)
	}
	for _, ref := range refs {
		if missing[ref.Key] {
			if !errors.Is(errs[ref], provider.ErrNotFound) {
				t.Errorf("GetSecrets[%s] error = %v, want ErrNotFound", ref, errs[ref])
			}
			assertNoCanary(t, errs[ref])
			continue
		}
		want := "value-" + ref.Key
		if got := string(values[ref].Data); got != want || errs[ref] != nil {
			t.Errorf("GetSecrets[%s] = %q (error %v), want %q", ref, got, errs[ref], want)
		}
	}
}

// Refs to other versions than AWSCURRENT are read one by one
// (BatchGetSecretValue reads current versions only); a secret without a
// current value fails moto's whole batch call, and the batch's other secrets
// are then read one by one.
func TestSecretsManagerBatchMixedVersions(t *testing.T) {
	ctx := context.Background()
	createSecret(t, "sm-mixed/a", "a1", nil)
	putSecret(t, "sm-mixed/a", "a2")
	createSecret(t, "sm-mixed/b", "b1", nil)
	if _, err := adminSM().CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("sm-mixed/no-value")}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, motoProvider(nil), smSpec())
	refs := []provider.Ref{
		{Key: "sm-mixed/a"},
		{Key: "sm-mixed/a", Version: "AWSPREVIOUS"},
		{Key: "sm-mixed/b"},
		{Key: "sm-mixed/no-value"},
	}
	values, errs := c.(provider.BatchGetter).GetSecrets(ctx, refs)
	want := map[provider.Ref]string{refs[0]: "a2", refs[1]: "a1", refs[2]: "b1"}
	for ref, w := range want {
		if got := string(values[ref].Data); got != w || errs[ref] != nil {
			t.Errorf("GetSecrets[%s] = %q (error %v), want %q", ref, got, errs[ref], w)
		}
	}
	if _, ok := values[refs[3]]; ok || !errors.Is(errs[refs[3]], provider.ErrNotFound) {
		t.Errorf("GetSecrets[%s] error = %v, want ErrNotFound", refs[3], errs[refs[3]])
	}
}

func TestSecretsManagerFind(t *testing.T) {
	ctx := context.Background()
	createSecret(t, "find/app/db-password", "db", map[string]string{"team": "payments", "env": "prod"})
	createSecret(t, "find/app/api-key", "api", map[string]string{"team": "payments", "env": "dev"})
	createSecret(t, "find/other/db-password", "other", map[string]string{"team": "payments-legacy"})
	createSecret(t, "Find/app/upper", "upper", map[string]string{"team": "payments"})
	createSecret(t, "unrelated/app/db-password", "unrelated", nil)

	rec := newRecorder()
	c := newClient(t, motoProvider(rec), smSpec())
	tests := []struct {
		name string
		find provider.Find
		want map[string]string
	}{
		{"path is a case-sensitive prefix", provider.Find{Path: "find/app/"},
			map[string]string{"find/app/db-password": "db", "find/app/api-key": "api"}},
		{"name is a regular expression", provider.Find{Name: "^find/.*/db-password$"},
			map[string]string{"find/app/db-password": "db", "find/other/db-password": "other"}},
		{"tags must all match exactly", provider.Find{Tags: map[string]string{"team": "payments", "env": "prod"}},
			map[string]string{"find/app/db-password": "db"}},
		{"a tag value is not a prefix", provider.Find{Tags: map[string]string{"team": "payments"}},
			map[string]string{"find/app/db-password": "db", "find/app/api-key": "api", "Find/app/upper": "upper"}},
		{"path, name and tags together", provider.Find{Path: "find/", Name: "password", Tags: map[string]string{"team": "payments"}},
			map[string]string{"find/app/db-password": "db"}},
		{"nothing matches", provider.Find{Path: "find/none/"}, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec.reset()
			got, err := fetch.FindIn(ctx, c, tt.find)
			if err != nil {
				t.Fatalf("Find(%+v): %v", tt.find, err)
			}
			if len(got) != len(tt.want) {
				t.Errorf("Find(%+v) returned %v, want %v", tt.find, slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(tt.want)))
			}
			for k, w := range tt.want {
				if string(got[k]) != w {
					t.Errorf("Find(%+v)[%s] = %q, want %q", tt.find, k, got[k], w)
				}
			}
			// One value is read with one plain call, as the fetch layer
			// reads a single ref; more are read in batches.
			if n := len(rec.calls("GetSecretValue")); n != 0 && len(tt.want) > 1 {
				t.Errorf("Find made %d GetSecretValue calls, want values read in batches", n)
			}
		})
	}

	_, err := fetch.FindIn(ctx, c, provider.Find{Name: "("})
	if !errors.Is(err, provider.ErrInvalidConfig) {
		t.Errorf("Find with an invalid regular expression = %v, want ErrInvalidConfig", err)
	}
}

// A find ignores the store's prefix (as in ESO); what it lists is read
// through GetSecret: names under the prefix by the key relative to it,
// others by ARN.
func TestSecretsManagerFindIgnoresThePrefix(t *testing.T) {
	ctx := context.Background()
	createSecret(t, "pfx-in/db", "in", nil)
	createSecret(t, "pfx-out/db", "out", nil)
	spec := smSpec()
	spec.Prefix = "pfx-in/"
	c := newClient(t, motoProvider(nil), spec)
	got, err := fetch.FindIn(ctx, c, provider.Find{Name: "^pfx-"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || string(got["pfx-in/db"]) != "in" || string(got["pfx-out/db"]) != "out" {
		t.Fatalf("Find = %q, want pfx-in/db=in and pfx-out/db=out", got)
	}
	pages := c.(provider.Lister).ListSecrets(ctx, provider.List{Path: "pfx-"})
	for pages.More() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range page {
			v, err := c.GetSecret(ctx, l.Ref)
			if err != nil || string(v.Data) != strings.TrimPrefix(strings.TrimSuffix(l.Name, "/db"), "pfx-") {
				t.Errorf("listed %s as %s, which reads %q (%v)", l.Name, l.Ref, v.Data, err)
			}
		}
	}
}
