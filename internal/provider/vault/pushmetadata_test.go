package vault

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// pushMetadataJSON wraps spec (JSON) in ESO's PushSecretMetadata envelope.
func pushMetadataJSON(spec string) []byte {
	return []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":` + spec + `}`)
}

func TestParsePushMetadata(t *testing.T) {
	long := strings.Repeat("k", maxCustomMetadataKeyLength+1)
	many := map[string]string{}
	for i := range maxCustomMetadataKeys {
		many[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
	}
	manyJSON, _ := json.Marshal(many)
	for _, tc := range []struct {
		name string
		raw  []byte
		want pushMetadata
		// field is what a refusal names; empty: accepted.
		field string
	}{
		{name: "the example of ESO's pull request #6589", raw: pushMetadataJSON(`{"mergePolicy":"Merge","customMetadata":{"environment":"dev","team":"payments"}}`),
			want: pushMetadata{MergePolicy: "Merge", CustomMetadata: map[string]string{"environment": "dev", "team": "payments"}}},
		{name: "Replace", raw: pushMetadataJSON(`{"mergePolicy":"Replace","customMetadata":{"a":"b"}}`),
			want: pushMetadata{MergePolicy: "Replace", CustomMetadata: map[string]string{"a": "b"}}},
		{name: "no spec", raw: []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata"}`)},
		{name: "an unknown field", raw: pushMetadataJSON(`{"labels":{"a":"b"}}`), field: `"labels"`},
		{name: "a field spelled otherwise", raw: pushMetadataJSON(`{"CustomMetadata":{"a":"b"}}`), field: `"CustomMetadata"`},
		{name: "an unknown top-level field", raw: []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","extra":1}`), field: `"extra"`},
		{name: "another apiVersion", raw: []byte(`{"apiVersion":"v1","kind":"PushSecretMetadata"}`), field: "metadata.apiVersion"},
		{name: "another kind", raw: []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"Secret"}`), field: "metadata.kind"},
		{name: "not an object", raw: []byte(`[1]`), field: "metadata must be an object"},
		{name: "spec not an object", raw: pushMetadataJSON(`"x"`), field: "metadata.spec must be an object"},
		{name: "customMetadata not strings", raw: pushMetadataJSON(`{"customMetadata":{"a":1}}`), field: "metadata.spec.customMetadata must be"},
		{name: "an unknown mergePolicy", raw: pushMetadataJSON(`{"mergePolicy":"Ignore"}`), field: "metadata.spec.mergePolicy"},
		{name: "the managed-by mark", raw: pushMetadataJSON(`{"customMetadata":{"managed-by":"me"}}`), field: "cannot set managed-by"},
		{name: "an empty key", raw: pushMetadataJSON(`{"customMetadata":{"":"v"}}`), field: "an empty key"},
		{name: "a key too long", raw: pushMetadataJSON(`{"customMetadata":{"` + long + `":"v"}}`), field: "a key of 129 bytes"},
		{name: "a value too long", raw: pushMetadataJSON(`{"customMetadata":{"k":"` + strings.Repeat("v", 513) + `"}}`), field: "customMetadata.k is 513 bytes"},
		{name: "an unprintable value", raw: pushMetadataJSON(`{"customMetadata":{"k":"a\nb"}}`), field: "customMetadata.k has unprintable"},
		{name: "too many keys", raw: pushMetadataJSON(`{"customMetadata":` + string(manyJSON) + `}`), field: "has 64 keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePushMetadata(tc.raw)
			if tc.field != "" {
				if !errors.Is(err, provider.ErrInvalidPush) || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("parsePushMetadata = %v; want ErrInvalidPush naming %s", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.MergePolicy != tc.want.MergePolicy || !maps.Equal(got.CustomMetadata, tc.want.CustomMetadata) {
				t.Fatalf("parsePushMetadata = %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestWantCustomMetadata(t *testing.T) {
	mark := map[string]string{provider.ManagedByKey: provider.ManagedByValue}
	current := map[string]string{provider.ManagedByKey: provider.ManagedByValue, "team": "payments", "environment": "prod"}
	for _, tc := range []struct {
		name    string
		m       *pushMetadata
		current map[string]string
		want    map[string]string
	}{
		{name: "no metadata on create: the mark", want: mark},
		{name: "create", m: &pushMetadata{CustomMetadata: map[string]string{"a": "b"}}, want: map[string]string{"a": "b", provider.ManagedByKey: provider.ManagedByValue}},
		{name: "Merge (the default) keeps the other keys, the spec's win", m: &pushMetadata{CustomMetadata: map[string]string{"environment": "dev"}}, current: current,
			want: map[string]string{provider.ManagedByKey: provider.ManagedByValue, "team": "payments", "environment": "dev"}},
		{name: "Replace drops the other keys, keeps the mark", m: &pushMetadata{MergePolicy: "Replace", CustomMetadata: map[string]string{"environment": "dev"}}, current: current,
			want: map[string]string{provider.ManagedByKey: provider.ManagedByValue, "environment": "dev"}},
		{name: "Replace with nothing: the mark", m: &pushMetadata{MergePolicy: "Replace"}, current: current, want: mark},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := wantCustomMetadata(tc.m, tc.current); !maps.Equal(got, tc.want) {
				t.Fatalf("wantCustomMetadata = %v; want %v", got, tc.want)
			}
		})
	}
}

// stringMap converts a custom_metadata read from Vault.
func stringMap(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k], _ = v.(string)
	}
	return out
}

// A push with metadata to KV v2 writes customMetadata to the entry's
// custom_metadata on the metadata endpoint beside the managed-by mark; a
// change of the metadata alone is written (the data not), Merge keeps the
// keys someone else set, Replace drops them but never the mark, and an
// entry keyferry did not create is not touched.
func TestPushMetadataKVv2SetsCustomMetadata(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.spec(e.rootAuth()))
	ctx := context.Background()
	ref := provider.PushRef{RemoteKey: "app/meta"}
	value := []byte(`{"password":"` + e.canary() + `"}`)
	push := func(spec string) bool {
		t.Helper()
		meta := pushMetadataJSON(spec)
		if err := c.CheckPushMetadata(meta); err != nil {
			t.Fatalf("CheckPushMetadata: %v", err)
		}
		return e.push(c, ref, provider.PushValue{SecretKey: "k", Value: value, Metadata: meta})
	}
	want := func(m map[string]string) {
		t.Helper()
		if got := stringMap(e.customMetadata("app/meta")); !maps.Equal(got, m) {
			t.Fatalf("custom_metadata = %v; want %v", got, m)
		}
	}

	if !push(`{"mergePolicy":"Merge","customMetadata":{"environment":"dev","team":"payments"}}`) {
		t.Fatal("the first push wrote nothing")
	}
	want(map[string]string{provider.ManagedByKey: provider.ManagedByValue, "environment": "dev", "team": "payments"})
	if push(`{"mergePolicy":"Merge","customMetadata":{"environment":"dev","team":"payments"}}`) {
		t.Fatal("an unchanged push wrote")
	}

	// Someone else adds a key; Merge keeps it.
	e.vault.Write(t, "secret/metadata/app/meta", map[string]any{"custom_metadata": map[string]any{
		provider.ManagedByKey: provider.ManagedByValue, "environment": "dev", "team": "payments", "owner": "ops"}})
	if !push(`{"customMetadata":{"environment":"prod"}}`) {
		t.Fatal("a push changing only the metadata wrote nothing")
	}
	want(map[string]string{provider.ManagedByKey: provider.ManagedByValue, "environment": "prod", "team": "payments", "owner": "ops"})
	if v := e.vault.Read(t, "secret/metadata/app/meta").Data["current_version"]; v != json.Number("1") {
		t.Fatalf("current_version = %v; want 1 (the data was not written again)", v)
	}

	if !push(`{"mergePolicy":"Replace","customMetadata":{"environment":"prod"}}`) {
		t.Fatal("Replace wrote nothing")
	}
	want(map[string]string{provider.ManagedByKey: provider.ManagedByValue, "environment": "prod"})

	// A changed value and metadata: both written, the mark kept.
	value = []byte(`{"password":"` + e.canary() + `"}`)
	if !push(`{"mergePolicy":"Replace","customMetadata":{"environment":"staging"}}`) {
		t.Fatal("a changed value wrote nothing")
	}
	want(map[string]string{provider.ManagedByKey: provider.ManagedByValue, "environment": "staging"})
	if got := e.kvData("app/meta"); got["password"] == nil || !strings.Contains(string(value), got["password"].(string)) {
		t.Fatal("the new value was not written")
	}
	st, err := c.Inspect(ctx, ref)
	if err != nil || !st.Managed {
		t.Fatalf("Inspect = %+v, %v; want the entry still keyferry's", st, err)
	}

	// An entry keyferry did not create: neither its data nor its
	// custom_metadata is written.
	foreign := provider.PushRef{RemoteKey: "app/foreign"}
	e.vault.PutKV(t, "secret", 2, "app/foreign", map[string]any{"password": e.canary()})
	st, err = c.Inspect(ctx, foreign)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Push(ctx, foreign, provider.PushValue{SecretKey: "k", Value: value, Metadata: pushMetadataJSON(`{"customMetadata":{"a":"b"}}`)}, st)
	e.wantErr(err, provider.ErrNotManaged)
	if got := e.customMetadata("app/foreign"); len(got) != 0 {
		t.Fatalf("custom_metadata of a foreign entry = %v; want none", got)
	}
}

// KV v1 has no custom_metadata: metadata is refused before anything is
// written (ESO ignores it there).
func TestPushMetadataKVv1IsRefused(t *testing.T) {
	e := newEnv(t)
	e.vault.EnableKV(t, "kv1", 1)
	spec := e.spec(e.rootAuth())
	spec.Path, spec.Version = ptr("kv1"), esv1.VaultKVStoreV1
	c := e.client(spec)
	meta := pushMetadataJSON(`{"customMetadata":{"a":"b"}}`)
	err := c.CheckPushMetadata(meta)
	if !errors.Is(err, provider.ErrInvalidPush) || !strings.Contains(err.Error(), "KV v1") {
		t.Fatalf("CheckPushMetadata on KV v1 = %v; want ErrInvalidPush naming KV v1", err)
	}
	ref := provider.PushRef{RemoteKey: "app", Property: "password"}
	_, err = c.Push(context.Background(), ref, provider.PushValue{SecretKey: "p", Value: []byte(e.canary()), Metadata: meta}, provider.RemoteState{})
	e.wantErr(err, provider.ErrInvalidPush)
	if sec := e.vault.Read(t, "kv1/app"); sec != nil {
		t.Fatalf("entry = %v; want nothing written", sec.Data)
	}
}

// The parser never panics, refuses only with ErrInvalidPush, never quotes a
// value it refuses, and what it accepts keeps the rules (no managed-by key,
// a known mergePolicy, within Vault's limits), and the custom_metadata it
// leads to always holds the mark.
func FuzzParsePushMetadata(f *testing.F) {
	f.Add(pushMetadataJSON(`{"mergePolicy":"Merge","customMetadata":{"environment":"dev","team":"payments"}}`), "x")
	f.Add(pushMetadataJSON(`{"mergePolicy":"Replace"}`), "Replace")
	f.Add([]byte(`null`), "")
	f.Add([]byte(`{"apiVersion":1}`), "\x00")
	f.Add(pushMetadataJSON(`{"CustomMetadata":{}}`), `"}`)
	const marker = "kfvalue-"
	f.Fuzz(func(t *testing.T, raw []byte, value string) {
		check := func(raw []byte) {
			m, err := parsePushMetadata(raw)
			if err != nil {
				if !errors.Is(err, provider.ErrInvalidPush) {
					t.Fatalf("error %v does not wrap ErrInvalidPush", err)
				}
				if strings.Contains(err.Error(), marker) {
					t.Fatalf("error %q quotes a value", err)
				}
				return
			}
			if _, ok := m.CustomMetadata[provider.ManagedByKey]; ok {
				t.Fatal("accepted a managed-by key")
			}
			if m.MergePolicy != "" && m.MergePolicy != mergePolicyMerge && m.MergePolicy != mergePolicyReplace {
				t.Fatal("accepted an unknown mergePolicy")
			}
			if len(m.CustomMetadata) >= maxCustomMetadataKeys {
				t.Fatal("accepted too many keys")
			}
			for k, v := range m.CustomMetadata {
				if k == "" || len(k) > maxCustomMetadataKeyLength || len(v) > maxCustomMetadataValueLength || !printable(k) || !printable(v) {
					t.Fatal("accepted a key or value Vault refuses")
				}
			}
			for _, current := range []map[string]string{nil, {provider.ManagedByKey: "someone", "x": "y"}} {
				if got := wantCustomMetadata(&m, current); got[provider.ManagedByKey] != provider.ManagedByValue {
					t.Fatal("the custom_metadata lacks the mark")
				}
			}
		}
		check(raw)
		// The value (marked) in every place a value goes.
		q, err := json.Marshal(marker + value)
		if err != nil {
			return
		}
		v := string(q)
		for _, spec := range []string{
			`{"customMetadata":{"a":` + v + `}}`, `{"customMetadata":{"managed-by":` + v + `}}`,
			`{"customMetadata":{"a":` + v + `,"b":1}}`, `{"mergePolicy":` + v + `}`, `{"customMetadata":[` + v + `]}`, v,
		} {
			check(pushMetadataJSON(spec))
		}
		check([]byte(`{"apiVersion":` + v + `,"kind":"PushSecretMetadata"}`))
		check([]byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":` + v + `}`))
	})
}
