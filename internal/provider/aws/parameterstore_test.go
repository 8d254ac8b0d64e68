package aws_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine/fetch"
	"github.com/keyferry/keyferry/internal/provider"
)

// putParameter writes a parameter (a new version when it exists).
func putParameter(t *testing.T, name, value string, typ ssmtypes.ParameterType, tags map[string]string) {
	t.Helper()
	in := &ssm.PutParameterInput{Name: aws.String(name), Value: aws.String(value), Type: typ}
	if len(tags) > 0 {
		for _, k := range slices.Sorted(maps.Keys(tags)) {
			in.Tags = append(in.Tags, ssmtypes.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
		}
	} else {
		in.Overwrite = aws.Bool(true)
	}
	if _, err := adminSSM().PutParameter(context.Background(), in); err != nil {
		t.Fatalf("putting parameter %s: %v", name, err)
	}
}

func psSpec() esv1.AWSProvider {
	return esv1.AWSProvider{Service: esv1.AWSServiceParameterStore}
}

func TestParameterStoreGetSecret(t *testing.T) {
	ctx := context.Background()
	putParameter(t, "/ps-get/db/password", "first", ssmtypes.ParameterTypeSecureString, nil)
	putParameter(t, "/ps-get/db/password", valueCanary, ssmtypes.ParameterTypeSecureString, nil)
	putParameter(t, "/ps-get/plain", `{"host":"db.local"}`, ssmtypes.ParameterTypeString, nil)
	c := newClient(t, motoProvider(nil), psSpec())

	tests := []struct {
		name        string
		ref         provider.Ref
		want        string
		wantVersion string
	}{
		{"SecureString is decrypted", provider.Ref{Key: "/ps-get/db/password"}, valueCanary, "2"},
		{"version selects name:version", provider.Ref{Key: "/ps-get/db/password", Version: "1"}, "first", "1"},
		{"String", provider.Ref{Key: "/ps-get/plain"}, `{"host":"db.local"}`, "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := c.GetSecret(ctx, tt.ref)
			if err != nil {
				t.Fatalf("GetSecret(%s): %v", tt.ref, err)
			}
			if string(v.Data) != tt.want || v.Version != tt.wantVersion {
				t.Errorf("GetSecret(%s) = %q version %q, want %q version %q", tt.ref, v.Data, v.Version, tt.want, tt.wantVersion)
			}
		})
	}
	for _, ref := range []provider.Ref{{Key: "/ps-get/missing"}, {Key: "/ps-get/db/password", Version: "9"}} {
		t.Run("not found: "+ref.String(), func(t *testing.T) {
			_, err := c.GetSecret(ctx, ref)
			if !errors.Is(err, provider.ErrNotFound) {
				t.Fatalf("GetSecret(%s) = %v, want ErrNotFound", ref, err)
			}
			assertNoCanary(t, err)
		})
	}

	t.Run("prefix is prepended to keys", func(t *testing.T) {
		spec := psSpec()
		spec.Prefix = "/ps-get/"
		c := newClient(t, motoProvider(nil), spec)
		v, err := c.GetSecret(ctx, provider.Ref{Key: "plain"})
		if err != nil || string(v.Data) != `{"host":"db.local"}` {
			t.Fatalf("GetSecret(plain) with prefix /ps-get/ = %q, %v; want the value of /ps-get/plain", v.Data, err)
		}
	})
}

// N unversioned refs cost ceil(N/10) GetParameters calls; versioned refs
// are read one by one.
func TestParameterStoreBatch(t *testing.T) {
	ctx := context.Background()
	const n = 23
	var refs []provider.Ref
	for i := range n {
		name := fmt.Sprintf("/ps-batch/p%02d", i)
		refs = append(refs, provider.Ref{Key: name})
		if i == 7 {
			continue // missing
		}
		putParameter(t, name, "value"+name, ssmtypes.ParameterTypeSecureString, nil)
	}
	putParameter(t, "/ps-batch/p00", "second", ssmtypes.ParameterTypeSecureString, nil)
	versioned := provider.Ref{Key: "/ps-batch/p00", Version: "1"}
	refs = append(refs, versioned)

	rec := newRecorder()
	c := newClient(t, motoProvider(rec), psSpec())
	rec.reset()
	values, errs := c.(provider.BatchGetter).GetSecrets(ctx, refs)
	if got, want := len(rec.calls("GetParameters")), (n+9)/10; got != want {
		t.Errorf("%d refs cost %d GetParameters calls, want %d", n, got, want)
	}
	if got := len(rec.calls("GetParameter")); got != 1 {
		t.Errorf("GetSecrets made %d GetParameter calls, want 1 (the versioned ref)", got)
	}
	for i, ref := range refs[:n] {
		want := "value" + ref.Key
		switch i {
		case 0:
			want = "second"
		case 7:
			if !errors.Is(errs[ref], provider.ErrNotFound) {
				t.Errorf("GetSecrets[%s] error = %v, want ErrNotFound", ref, errs[ref])
			}
			continue
		}
		if got := string(values[ref].Data); got != want || errs[ref] != nil {
			t.Errorf("GetSecrets[%s] = %q (error %v), want %q", ref, got, errs[ref], want)
		}
	}
	if got := string(values[versioned].Data); got != "value/ps-batch/p00" {
		t.Errorf("GetSecrets[%s] = %q (error %v), want the first version", versioned, got, errs[versioned])
	}
}

func TestParameterStoreFind(t *testing.T) {
	ctx := context.Background()
	putParameter(t, "/ps-find/app/db/password", "db", ssmtypes.ParameterTypeSecureString, map[string]string{"team": "payments", "env": "prod"})
	putParameter(t, "/ps-find/app/api-key", "api", ssmtypes.ParameterTypeSecureString, map[string]string{"team": "payments", "env": "dev"})
	putParameter(t, "/ps-find/other/password", "other", ssmtypes.ParameterTypeString, map[string]string{"team": "search"})

	rec := newRecorder()
	c := newClient(t, motoProvider(rec), psSpec())
	tests := []struct {
		name       string
		find       provider.Find
		want       map[string]string
		wantAction string
	}{
		{"path is read recursively with GetParametersByPath", provider.Find{Path: "/ps-find/app"},
			map[string]string{"/ps-find/app/db/password": "db", "/ps-find/app/api-key": "api"}, "GetParametersByPath"},
		{"path and name", provider.Find{Path: "/ps-find", Name: "password$"},
			map[string]string{"/ps-find/app/db/password": "db", "/ps-find/other/password": "other"}, "GetParametersByPath"},
		{"tags are filtered by DescribeParameters", provider.Find{Tags: map[string]string{"team": "payments", "env": "prod"}},
			map[string]string{"/ps-find/app/db/password": "db"}, "DescribeParameters"},
		{"name alone lists with DescribeParameters", provider.Find{Name: "^/ps-find/.*/password$"},
			map[string]string{"/ps-find/app/db/password": "db", "/ps-find/other/password": "other"}, "DescribeParameters"},
		{"tags and path", provider.Find{Path: "/ps-find/app", Tags: map[string]string{"team": "payments"}},
			map[string]string{"/ps-find/app/db/password": "db", "/ps-find/app/api-key": "api"}, "DescribeParameters"},
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
			if len(rec.calls(tt.wantAction)) == 0 {
				t.Errorf("Find(%+v) made no %s call", tt.find, tt.wantAction)
			}
			// One value is read with one plain call, as the fetch layer
			// reads a single ref; more are read in batches.
			if n := len(rec.calls("GetParameter")); n != 0 && len(tt.want) > 1 {
				t.Errorf("Find made %d GetParameter calls, want values read in batches", n)
			}
		})
	}
}

// A find by path ignores the store's prefix (as in ESO) and returns the
// values with the listing; DescribeParameters lists names outside the
// prefix, read by ARN.
func TestParameterStoreFindIgnoresThePrefix(t *testing.T) {
	ctx := context.Background()
	putParameter(t, "/ps-pfx/in/db", "in", ssmtypes.ParameterTypeSecureString, map[string]string{"pfx": "yes"})
	putParameter(t, "/ps-pfx/out/db", "out", ssmtypes.ParameterTypeSecureString, map[string]string{"pfx": "yes"})
	spec := psSpec()
	spec.Prefix = "/ps-pfx/in/"
	c := newClient(t, motoProvider(nil), spec)
	for _, f := range []provider.Find{{Path: "/ps-pfx"}, {Tags: map[string]string{"pfx": "yes"}}} {
		got, err := fetch.FindIn(ctx, c, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || string(got["/ps-pfx/in/db"]) != "in" || string(got["/ps-pfx/out/db"]) != "out" {
			t.Fatalf("Find(%+v) = %q, want /ps-pfx/in/db=in and /ps-pfx/out/db=out", f, got)
		}
	}
}
