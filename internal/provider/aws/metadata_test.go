package aws_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
)

// assertTags checks that v is the tag map want (as JSON and field by
// field) and that the secret's value is nowhere in it.
func assertTags(t *testing.T, v provider.Value, want map[string]string) {
	t.Helper()
	var got map[string]string
	if err := json.Unmarshal(v.Data, &got); err != nil {
		t.Fatalf("metadata is not a JSON object of strings: %v", err)
	}
	if len(got) != len(want) || len(v.Fields) != len(want) {
		t.Fatalf("metadata = %s (%d fields), want %v", v.Data, len(v.Fields), want)
	}
	for k, w := range want {
		if got[k] != w || string(v.Fields[k]) != w {
			t.Errorf("tag %q = %q (field %q), want %q", k, got[k], v.Fields[k], w)
		}
	}
	if strings.Contains(string(v.Data), valueCanary) {
		t.Fatalf("metadata holds the secret's value")
	}
}

func TestSecretsManagerMetadataIsTheTags(t *testing.T) {
	ctx := context.Background()
	tags := map[string]string{"dev": "seb", "team.name": "payments"}
	createSecret(t, "sm-meta/db", `{"password":"`+valueCanary+`"}`, tags)
	createSecret(t, "sm-meta/untagged", valueCanary, nil)
	rec := newRecorder()
	c := newClient(t, motoProvider(rec), smSpec())

	t.Run("GetSecret returns the tags, not the value", func(t *testing.T) {
		v, err := c.GetSecret(ctx, provider.Ref{Key: "sm-meta/db", Metadata: true})
		if err != nil {
			t.Fatal(err)
		}
		assertTags(t, v, tags)
		// property selects one tag, a dotted tag name included.
		for prop, want := range map[string]string{"dev": "seb", "team.name": "payments"} {
			b, err := values.Property(v, prop)
			if err != nil || string(b) != want {
				t.Errorf("property %q = %q, %v; want %q", prop, b, err, want)
			}
		}
		// dataFrom.extract gives one key per tag.
		m, err := values.Extract(v, "")
		if err != nil || len(m) != 2 || string(m["dev"]) != "seb" {
			t.Errorf("extract = %v, %v", m, err)
		}
	})
	t.Run("a secret without tags is an empty object", func(t *testing.T) {
		v, err := c.GetSecret(ctx, provider.Ref{Key: "sm-meta/untagged", Metadata: true})
		if err != nil || string(v.Data) != "{}" {
			t.Fatalf("metadata = %q, %v; want {}", v.Data, err)
		}
	})
	t.Run("a missing secret is not found", func(t *testing.T) {
		_, err := c.GetSecret(ctx, provider.Ref{Key: "sm-meta/missing", Metadata: true})
		if !errors.Is(err, provider.ErrNotFound) {
			t.Fatalf("error = %v, want ErrNotFound", err)
		}
	})
	t.Run("the batch reads metadata refs apart from values", func(t *testing.T) {
		value := provider.Ref{Key: "sm-meta/db"}
		meta := provider.Ref{Key: "sm-meta/db", Metadata: true}
		rec.reset()
		vals, errs := c.(provider.BatchGetter).GetSecrets(ctx, []provider.Ref{value, meta})
		if errs[value] != nil || errs[meta] != nil {
			t.Fatalf("errors: %v, %v", errs[value], errs[meta])
		}
		if got := string(vals[value].Data); got != `{"password":"`+valueCanary+`"}` {
			t.Errorf("value ref = %q", got)
		}
		assertTags(t, vals[meta], tags)
		if n := len(rec.calls("DescribeSecret")); n != 1 {
			t.Errorf("%d DescribeSecret calls, want 1", n)
		}
	})
}

func TestParameterStoreMetadataIsTheTags(t *testing.T) {
	ctx := context.Background()
	tags := map[string]string{"dev": "seb", "env": "prod"}
	putParameter(t, "/ps-meta/db", valueCanary, ssmtypes.ParameterTypeSecureString, tags)
	putParameter(t, "/ps-meta/untagged", valueCanary, ssmtypes.ParameterTypeString, nil)
	rec := newRecorder()
	c := newClient(t, motoProvider(rec), psSpec())

	v, err := c.GetSecret(ctx, provider.Ref{Key: "/ps-meta/db", Metadata: true})
	if err != nil {
		t.Fatal(err)
	}
	assertTags(t, v, tags)
	if b, err := values.Property(v, "env"); err != nil || string(b) != "prod" {
		t.Errorf("property env = %q, %v", b, err)
	}
	if v, err := c.GetSecret(ctx, provider.Ref{Key: "/ps-meta/untagged", Metadata: true}); err != nil || string(v.Data) != "{}" {
		t.Errorf("untagged metadata = %q, %v; want {}", v.Data, err)
	}
	_, err = c.GetSecret(ctx, provider.Ref{Key: "/ps-meta/missing", Metadata: true})
	if !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("missing parameter: error = %v, want ErrNotFound", err)
	}
	assertNoCanary(t, err)

	value := provider.Ref{Key: "/ps-meta/db"}
	meta := provider.Ref{Key: "/ps-meta/db", Metadata: true}
	rec.reset()
	vals, errs := c.(provider.BatchGetter).GetSecrets(ctx, []provider.Ref{value, meta})
	if errs[value] != nil || errs[meta] != nil {
		t.Fatalf("errors: %v, %v", errs[value], errs[meta])
	}
	if string(vals[value].Data) != valueCanary {
		t.Errorf("value ref = %q", vals[value].Data)
	}
	assertTags(t, vals[meta], tags)
	if n := len(rec.calls("ListTagsForResource")); n != 1 {
		t.Errorf("%d ListTagsForResource calls, want 1", n)
	}
}
