package azurekv

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/internal/provider"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// metadataOf is a PushSecretMetadata object with spec (raw JSON).
func metadataOf(spec string) []byte {
	return []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":` + spec + `}`)
}

func TestParsePushMetadata(t *testing.T) {
	date := time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC)
	manyTags := map[string]string{}
	for i := range maxTags {
		manyTags[fmt.Sprintf("t%d", i)] = "v"
	}
	many, _ := json.Marshal(manyTags)
	long := strings.Repeat("x", maxTagValueLen+1)
	tests := []struct {
		name string
		raw  string
		// want is the parsed metadata; field the field a refusal names.
		want  pushMetadata
		field string
	}{
		{name: "no metadata", raw: ``},
		{name: "null metadata", raw: `null`},
		{name: "without spec", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata"}`},
		{name: "null spec", raw: string(metadataOf(`null`))},
		{name: "ESO's example", raw: string(metadataOf(`{"expirationDate":"2024-12-31T23:59:59Z","contentType":"application/json","tags":{"environment":"production"}}`)),
			want: pushMetadata{expires: &date, contentType: ptr("application/json"), tags: map[string]string{"environment": "production"}}},
		{name: "field names match in any case, as ESO's JSON decoder",
			raw:  `{"APIVERSION":"kubernetes.external-secrets.io/v1alpha1","Kind":"PushSecretMetadata","Spec":{"ContentType":"text/plain","TAGS":{}}}`,
			want: pushMetadata{contentType: ptr("text/plain"), tags: map[string]string{}}},
		{name: "empty expirationDate and contentType are absent", raw: string(metadataOf(`{"expirationDate":"","contentType":"","tags":null}`))},
		{name: "a date with an offset and fractions is kept in UTC to the second",
			raw:  string(metadataOf(`{"expirationDate":"2025-01-01T00:59:59.75+01:00"}`)),
			want: pushMetadata{expires: &date}},

		{name: "not a JSON object", raw: `"PushSecretMetadata"`, field: "metadata is not a JSON object"},
		{name: "not JSON", raw: `{apiVersion: x`, field: "metadata is not a JSON object"},
		{name: "no apiVersion", raw: `{"kind":"PushSecretMetadata"}`, field: "metadata.apiVersion"},
		{name: "another apiVersion", raw: `{"apiVersion":"kf-canary-5b1e7c/v1","kind":"PushSecretMetadata"}`, field: "metadata.apiVersion"},
		{name: "apiVersion not a string", raw: `{"apiVersion":1,"kind":"PushSecretMetadata"}`, field: "metadata.apiVersion"},
		{name: "another kind", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"kf-canary-5b1e7c"}`, field: "metadata.kind"},
		{name: "unknown top-level field", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","metadata":{}}`, field: "metadata.metadata"},
		{name: "spec not an object", raw: string(metadataOf(`["kf-canary-5b1e7c"]`)), field: "metadata.spec is not a JSON object"},
		{name: "unknown spec field", raw: string(metadataOf(`{"labels":{"a":"b"}}`)), field: "metadata.spec.labels"},
		{name: "a field twice in different cases", raw: string(metadataOf(`{"tags":{},"Tags":{}}`)), field: "metadata.spec.tags"},
		{name: "a date that is not RFC 3339", raw: string(metadataOf(`{"expirationDate":"31/12/2024 kf-canary-5b1e7c"}`)), field: "metadata.spec.expirationDate"},
		{name: "a date without a zone", raw: string(metadataOf(`{"expirationDate":"2024-12-31T23:59:59"}`)), field: "metadata.spec.expirationDate"},
		{name: "a date that is a number", raw: string(metadataOf(`{"expirationDate":1735689599}`)), field: "metadata.spec.expirationDate"},
		{name: "contentType not a string", raw: string(metadataOf(`{"contentType":{"a":"kf-canary-5b1e7c"}}`)), field: "metadata.spec.contentType"},
		{name: "tags not an object", raw: string(metadataOf(`{"tags":["kf-canary-5b1e7c"]}`)), field: "metadata.spec.tags"},
		{name: "a tag that is not a string", raw: string(metadataOf(`{"tags":{"a":1}}`)), field: "metadata.spec.tags"},
		{name: "the managed-by tag", raw: string(metadataOf(`{"tags":{"managed-by":"kf-canary-5b1e7c"}}`)), field: "metadata.spec.tags must not set the managed-by tag"},
		{name: "more tags than Key Vault keeps with managed-by", raw: string(metadataOf(`{"tags":` + string(many) + `}`)), field: "metadata.spec.tags has 15 tags"},
		{name: "a tag with an empty name", raw: string(metadataOf(`{"tags":{"":"kf-canary-5b1e7c"}}`)), field: "metadata.spec.tags"},
		{name: "a tag name too long", raw: string(metadataOf(`{"tags":{"` + strings.Repeat("n", maxTagNameLen+1) + `":"v"}}`)), field: "metadata.spec.tags"},
		{name: "a tag value too long", raw: string(metadataOf(`{"tags":{"big":"kf-canary-5b1e7c` + long + `"}}`)), field: "metadata.spec.tags: tag big"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePushMetadata([]byte(tt.raw))
			if tt.field != "" {
				wantErr(t, err, provider.ErrInvalidPush)
				if !strings.Contains(err.Error(), tt.field) {
					t.Fatalf("error %q does not name %q", err, tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !sameTime(got.expires, tt.want.expires) || !samePtr(got.contentType, tt.want.contentType) ||
				(got.tags == nil) != (tt.want.tags == nil) || !maps.Equal(got.tags, tt.want.tags) {
				t.Fatalf("got expires %v, contentType %v, tags %v; want %v, %v, %v",
					got.expires, deref(got.contentType), got.tags, tt.want.expires, deref(tt.want.contentType), tt.want.tags)
			}
		})
	}
}

func TestPushMetadataForKeysAndCertificatesIsTagsOnly(t *testing.T) {
	for _, tt := range []struct {
		objectType, spec, field string
	}{
		{objectSecret, `{"expirationDate":"2024-12-31T23:59:59Z","contentType":"text/plain","tags":{"a":"b"}}`, ""},
		{objectKey, `{"tags":{"a":"b"}}`, ""},
		{objectCert, `{"tags":{"a":"b"}}`, ""},
		{objectKey, `{"expirationDate":"2024-12-31T23:59:59Z"}`, "metadata.spec.expirationDate applies only to a secret"},
		{objectCert, `{"contentType":"application/x-pem-file"}`, "metadata.spec.contentType applies only to a secret"},
	} {
		_, err := metadataFor(tt.objectType, metadataOf(tt.spec))
		if tt.field == "" {
			if err != nil {
				t.Errorf("%s %s: %v", tt.objectType, tt.spec, err)
			}
			continue
		}
		if !errors.Is(err, provider.ErrInvalidPush) || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("%s %s: error %v, want ErrInvalidPush naming %q", tt.objectType, tt.spec, err, tt.field)
		}
	}
}

func TestSecretUnchangedAsESODecides(t *testing.T) {
	d1 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	d1ms := d1.Add(400 * time.Millisecond)
	d2 := d1.Add(time.Hour)
	cur := func(exp *time.Time, ct *string) remote {
		return remote{exists: true, value: ptr("v"), expires: exp, contentType: ct}
	}
	for _, tt := range []struct {
		name string
		cur  remote
		next string
		md   pushMetadata
		want bool
	}{
		{"same value, no metadata", cur(nil, nil), "v", pushMetadata{}, true},
		{"another value", cur(nil, nil), "w", pushMetadata{}, false},
		{"tags alone changed", cur(nil, nil), "v", pushMetadata{tags: map[string]string{"a": "b"}}, true},
		{"same expiry to the second", cur(&d1ms, nil), "v", pushMetadata{expires: &d1}, true},
		{"another expiry", cur(&d1, nil), "v", pushMetadata{expires: &d2}, false},
		{"an expiry asked, none set", cur(nil, nil), "v", pushMetadata{expires: &d1}, false},
		{"no expiry asked, one set", cur(&d1, nil), "v", pushMetadata{}, false},
		{"no content type asked: any", cur(nil, ptr("text/plain")), "v", pushMetadata{}, true},
		{"the content type asked", cur(nil, ptr("text/plain")), "v", pushMetadata{contentType: ptr("text/plain")}, true},
		{"another content type asked", cur(nil, ptr("text/plain")), "v", pushMetadata{contentType: ptr("application/json")}, false},
		{"a content type asked, none set", cur(nil, nil), "v", pushMetadata{contentType: ptr("application/json")}, false},
	} {
		if got := secretUnchanged(tt.cur, tt.next, tt.md); got != tt.want {
			t.Errorf("%s: unchanged %t, want %t", tt.name, got, tt.want)
		}
	}
}

// A push with ESO's metadata sets the secret's expiry, content type and
// tags; as ESO, a change of tags alone writes no version, a change of the
// expiry or of the content type asked does, and spec.tags replace the
// current tags where no spec.tags keeps them.
func TestPushHonoursMetadataOnSecrets(t *testing.T) {
	srv := newServer(t)
	c := pusher(t, srv)
	ref := provider.PushRef{RemoteKey: "app-config"}
	value := []byte(`{"password":"` + canary + `"}`)
	pushWith := func(spec string) bool {
		t.Helper()
		return push(t, c, ref, provider.PushValue{SecretKey: "config", Value: value, Metadata: metadataOf(spec)})
	}
	want := func(step string, versions int, ct string, exp *time.Time, tags map[string]string) {
		t.Helper()
		o := object(t, srv, kvserver.KindSecret, "app-config")
		tags = maps.Clone(tags)
		tags[provider.ManagedByKey] = provider.ManagedByValue
		if o.Versions != versions || o.ContentType != ct || !sameTime(o.Expires, exp) || !maps.Equal(o.Tags, tags) || o.Value != string(value) {
			t.Fatalf("%s: %d versions, contentType %q, expires %v, tags %v; want %d, %q, %v, %v",
				step, o.Versions, o.ContentType, o.Expires, o.Tags, versions, ct, exp, tags)
		}
	}
	d1 := time.Date(2024, 12, 31, 23, 59, 59, 0, time.UTC)
	d2 := time.Date(2099, 12, 31, 23, 59, 59, 0, time.UTC)

	if !pushWith(`{"expirationDate":"2024-12-31T23:59:59Z","contentType":"application/json","tags":{"environment":"production"}}`) {
		t.Fatal("the first push wrote nothing")
	}
	want("first push", 1, "application/json", &d1, map[string]string{"environment": "production"})

	if pushWith(`{"expirationDate":"2024-12-31T23:59:59Z","contentType":"application/json","tags":{"environment":"staging"}}`) {
		t.Fatal("a change of tags alone wrote a version (ESO writes none)")
	}
	want("tags alone changed", 1, "application/json", &d1, map[string]string{"environment": "production"})

	if pushWith(`{"expirationDate":"2024-12-31T23:59:59Z","tags":{"environment":"staging"}}`) {
		t.Fatal("dropping contentType wrote a version (ESO: don't change)")
	}

	if !pushWith(`{"expirationDate":"2099-12-31T23:59:59Z","tags":{"environment":"staging"}}`) {
		t.Fatal("a new expiry wrote nothing")
	}
	want("new expiry", 2, "application/json", &d2, map[string]string{"environment": "staging"})

	if !pushWith(`{"expirationDate":"2099-12-31T23:59:59Z","contentType":"text/plain"}`) {
		t.Fatal("a new content type wrote nothing")
	}
	want("new content type, no spec.tags", 3, "text/plain", &d2, map[string]string{"environment": "staging"})

	if !push(t, c, ref, provider.PushValue{SecretKey: "config", Value: value}) {
		t.Fatal("dropping the expiry wrote nothing (ESO writes a version without it)")
	}
	want("no metadata", 4, "text/plain", nil, map[string]string{"environment": "staging"})

	if !pushWith(`{"expirationDate":"2099-12-31T23:59:59Z","tags":{}}`) {
		t.Fatal("a new expiry wrote nothing")
	}
	want("empty spec.tags", 5, "text/plain", &d2, map[string]string{})

	// Deleting a property keeps the expiry of the version it rewrites.
	push(t, c, provider.PushRef{RemoteKey: "app-config", Property: "user"}, provider.PushValue{SecretKey: "user", Value: []byte("u"), Metadata: metadataOf(`{"expirationDate":"2099-12-31T23:59:59Z"}`)})
	if err := c.Delete(testContext(t), provider.PushRef{RemoteKey: "app-config", Property: "user"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if o := object(t, srv, kvserver.KindSecret, "app-config"); o.Value != string(value) || !sameTime(o.Expires, &d2) {
		t.Fatalf("after deleting a property: expires %v, value back as before %t", o.Expires, o.Value == string(value))
	}

	// Metadata Push cannot honour is refused before anything is written.
	wantErr(t, pushErr(t, c, provider.PushRef{RemoteKey: "other"}, provider.PushValue{SecretKey: "k", Value: value,
		Metadata: metadataOf(`{"tags":{"managed-by":"someone"}}`)}), provider.ErrInvalidPush)
	if _, ok := srv.Object(kvserver.KindSecret, "other"); ok {
		t.Fatal("refused metadata wrote the secret")
	}
}

// Keys and certificates take spec.tags (as ESO); as ESO, new tags alone
// import nothing again.
func TestPushHonoursMetadataTagsOnKeysAndCertificates(t *testing.T) {
	srv := newServer(t)
	c := pusher(t, srv)
	cert, key := selfSigned(t, "tls")
	bundle := pemBundle(t, cert, key)
	for _, tt := range []struct {
		ref  string
		kind kvserver.Kind
		name string
	}{
		{"key/signing", kvserver.KindKey, "signing"},
		{"cert/tls", kvserver.KindCertificate, "tls"},
	} {
		ref := provider.PushRef{RemoteKey: tt.ref}
		v := provider.PushValue{SecretKey: "tls.pem", Value: bundle, Metadata: metadataOf(`{"tags":{"team":"payments"}}`)}
		if tt.kind == kvserver.KindKey {
			v.Value = pemPrivateKey(t, key)
		}
		if !push(t, c, ref, v) {
			t.Fatalf("%s: nothing imported", tt.ref)
		}
		o := object(t, srv, tt.kind, tt.name)
		if !maps.Equal(o.Tags, map[string]string{"team": "payments", provider.ManagedByKey: provider.ManagedByValue}) {
			t.Fatalf("%s: tags %v", tt.ref, o.Tags)
		}
		v.Metadata = metadataOf(`{"tags":{"team":"billing"}}`)
		if push(t, c, ref, v) {
			t.Fatalf("%s: new tags alone imported again (ESO imports nothing)", tt.ref)
		}
		v.Metadata = metadataOf(`{"expirationDate":"2099-12-31T23:59:59Z","tags":{"team":"billing"}}`)
		wantErr(t, pushErr(t, c, ref, v), provider.ErrInvalidPush)
		if o := object(t, srv, tt.kind, tt.name); o.Versions != 1 || o.Tags["team"] != "payments" {
			t.Fatalf("%s: %d versions, tags %v after pushes that write nothing", tt.ref, o.Versions, o.Tags)
		}
	}
}

// FuzzPushMetadata feeds arbitrary metadata to the parser: it never
// panics, a refusal wraps ErrInvalidPush and quotes no string value of
// the input, and what it accepts holds only what ESO's spec allows.
func FuzzPushMetadata(f *testing.F) {
	f.Add(metadataOf(`{"expirationDate":"2024-12-31T23:59:59Z","contentType":"application/json","tags":{"environment":"production"}}`))
	f.Add(metadataOf(`{"tags":{"managed-by":"external-secrets"}}`))
	f.Add(metadataOf(`{"expirationDate":"not a date #@~ at all"}`))
	f.Add([]byte(`{"apiVersion":"v1","kind":"Secret","spec":{"x":1}}`))
	f.Add([]byte(`{"APIVERSION":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"Tags":{"a":"b"}}}`))
	f.Add([]byte(`[1,2`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		md, err := parsePushMetadata(raw)
		if err != nil {
			if !errors.Is(err, provider.ErrInvalidPush) {
				t.Fatalf("error %q does not wrap ErrInvalidPush", err)
			}
			// Values with a character no message of the parser uses (the
			// fixed texts could otherwise contain a value by chance).
			for _, s := range stringValues(raw) {
				if len(s) >= 8 && strings.ContainsAny(s, "#@~!$^&*=|<>?") && strings.Contains(err.Error(), s) {
					t.Fatalf("error %q quotes the value %q", err, s)
				}
			}
			return
		}
		if _, ok := md.tags[provider.ManagedByKey]; ok || len(md.tags) >= maxTags {
			t.Fatalf("accepted tags %v", md.tags)
		}
		if md.contentType != nil && *md.contentType == "" {
			t.Fatal("accepted an empty content type as one to set")
		}
		if md.expires != nil && (md.expires.Location() != time.UTC || md.expires.Nanosecond() != 0) {
			t.Fatalf("expiry %v is not UTC to the second", md.expires)
		}
	})
}

// stringValues are the string values (not names) anywhere in raw, when it
// is JSON.
func stringValues(raw []byte) []string {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil
	}
	var out []string
	names := map[string]bool{}
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, e := range v {
				walk(e)
			}
		case map[string]any:
			for k, e := range v {
				names[k] = true
				walk(e)
			}
		}
	}
	walk(v)
	// A value that is part of a name may be named.
	kept := out[:0]
	for _, s := range out {
		if !slices.ContainsFunc(slices.Collect(maps.Keys(names)), func(n string) bool { return strings.Contains(n, s) }) {
			kept = append(kept, s)
		}
	}
	return kept
}

func pemPrivateKey(t *testing.T, key any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func sameTime(a, b *time.Time) bool {
	return (a == nil) == (b == nil) && (a == nil || a.Equal(*b))
}

func samePtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
