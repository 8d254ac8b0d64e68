package azurekv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/keyferry/keyferry/internal/provider"
	kvserver "github.com/keyferry/keyferry/internal/testing/testserver/azurekv"
)

// The write side, through the real SDK against the test vault.

var managedTag = kvserver.WithTags(map[string]string{provider.ManagedByKey: provider.ManagedByValue})

// pusher returns a client allowed to read and write srv.
func pusher(t *testing.T, srv *kvserver.Server) *Client {
	t.Helper()
	return readerClient(t, srv, kvserver.ReadAll|kvserver.WriteAll)
}

// push inspects ref and pushes v, failing the test on error.
func push(t *testing.T, c *Client, ref provider.PushRef, v provider.PushValue) bool {
	t.Helper()
	ctx := testContext(t)
	st, err := c.Inspect(ctx, ref)
	if err != nil {
		noCanary(t, err)
		t.Fatalf("Inspect(%s): %v", ref, err)
	}
	wrote, err := c.Push(ctx, ref, v, st)
	if err != nil {
		noCanary(t, err)
		t.Fatalf("Push(%s): %v", ref, err)
	}
	return wrote
}

// pushErr inspects ref and pushes v, returning Push's error.
func pushErr(t *testing.T, c *Client, ref provider.PushRef, v provider.PushValue) error {
	t.Helper()
	st, err := c.Inspect(testContext(t), ref)
	if err != nil {
		return err
	}
	_, err = c.Push(testContext(t), ref, v, st)
	return err
}

func object(t *testing.T, srv *kvserver.Server, kind kvserver.Kind, name string) kvserver.Object {
	t.Helper()
	o, ok := srv.Object(kind, name)
	if !ok {
		t.Fatalf("%s %q does not exist", kind, name)
	}
	return o
}

func TestPushCreatesTagsAndWritesNoNewVersionWhenUnchanged(t *testing.T) {
	srv := newServer(t)
	c := pusher(t, srv)
	v1, v2 := "v1-"+canary, "v2-"+canary

	if !push(t, c, provider.PushRef{RemoteKey: "app-db"}, provider.PushValue{SecretKey: "password", Value: []byte(v1)}) {
		t.Fatal("the first push wrote nothing")
	}
	o := object(t, srv, kvserver.KindSecret, "app-db")
	if o.Value != v1 || o.Tags[provider.ManagedByKey] != provider.ManagedByValue || o.Versions != 1 {
		t.Fatalf("secret: tags %v, %d versions, value as pushed %t; want ESO's managed-by tag on one version", o.Tags, o.Versions, o.Value == v1)
	}
	// "secret/app-db" is the same secret; the same value writes nothing:
	// two reads (Inspect, and Push's version check), no write.
	calls := srv.VaultRequests("/secrets/app-db")
	if push(t, c, provider.PushRef{RemoteKey: "secret/app-db"}, provider.PushValue{SecretKey: "password", Value: []byte(v1)}) {
		t.Fatal("pushing the same value wrote")
	}
	if n := srv.VaultRequests("/secrets/app-db") - calls; n != 2 {
		t.Fatalf("an unchanged push made %d requests, want 2 reads", n)
	}
	if o := object(t, srv, kvserver.KindSecret, "app-db"); o.Versions != 1 {
		t.Fatalf("%d versions after an unchanged push, want 1", o.Versions)
	}
	st, err := c.Inspect(testContext(t), provider.PushRef{RemoteKey: "app-db"})
	if err != nil || !st.Exists || !st.Managed || st.Version != o.Version {
		t.Fatalf("Inspect = %+v, %v; want an existing managed secret at version %s", st, err, o.Version)
	}
	calls = srv.VaultRequests("/secrets/app-db")
	if !push(t, c, provider.PushRef{RemoteKey: "app-db"}, provider.PushValue{SecretKey: "password", Value: []byte(v2)}) {
		t.Fatal("a changed value was not pushed")
	}
	if n := srv.VaultRequests("/secrets/app-db") - calls; n != 3 {
		t.Fatalf("a changed push made %d requests, want 2 reads and 1 write", n)
	}
	if o := object(t, srv, kvserver.KindSecret, "app-db"); o.Value != v2 || o.Versions != 2 {
		t.Fatalf("after an update: %d versions, new value %t; want a second version", o.Versions, o.Value == v2)
	}

	// A new version keeps the tags and contentType of the current one.
	srv.SetSecret("tagged", "old-"+canary, kvserver.WithContentType("text/plain"),
		kvserver.WithTags(map[string]string{provider.ManagedByKey: provider.ManagedByValue, "team": "payments"}))
	push(t, c, provider.PushRef{RemoteKey: "tagged"}, provider.PushValue{SecretKey: "k", Value: []byte(v1)})
	if o := object(t, srv, kvserver.KindSecret, "tagged"); o.Tags["team"] != "payments" || o.ContentType != "text/plain" || o.Value != v1 {
		t.Fatalf("tags %v, contentType %q; want the current version's kept", o.Tags, o.ContentType)
	}
}

func TestPushPropertyIntoAnExistingJSONSecret(t *testing.T) {
	srv := newServer(t)
	c := pusher(t, srv)
	user, pw := "user-"+canary, "pw-"+canary
	userJSON, _ := json.Marshal(map[string]any{"user": user, "port": 5432})
	srv.SetSecret("db", string(userJSON), managedTag)
	ref := provider.PushRef{RemoteKey: "db", Property: "password"}

	st, err := c.Inspect(testContext(t), ref)
	if err != nil || !st.Exists || !st.Managed || st.PropertyExists {
		t.Fatalf("Inspect = %+v, %v; want a managed secret without the property", st, err)
	}
	push(t, c, ref, provider.PushValue{SecretKey: "password", Value: []byte(pw)})
	var got map[string]any
	if err := json.Unmarshal([]byte(object(t, srv, kvserver.KindSecret, "db").Value), &got); err != nil {
		t.Fatalf("the secret is no longer a JSON object: %v", err)
	}
	if got["user"] != user || got["password"] != pw || got["port"] != float64(5432) {
		t.Fatalf("fields %v; want user and port kept and password added", keysOf(got))
	}
	if st, err := c.Inspect(testContext(t), ref); err != nil || !st.PropertyExists {
		t.Fatalf("Inspect = %+v, %v; want the property", st, err)
	}
	if push(t, c, ref, provider.PushValue{SecretKey: "password", Value: []byte(pw)}) {
		t.Fatal("pushing the same property value wrote a version")
	}
	if o := object(t, srv, kvserver.KindSecret, "db"); o.Versions != 2 {
		t.Fatalf("%d versions, want 2", o.Versions)
	}

	// A property cannot go into a value that is not a JSON object.
	srv.SetSecret("plain", "plain-"+canary, managedTag)
	err = pushErr(t, c, provider.PushRef{RemoteKey: "plain", Property: "p"}, provider.PushValue{SecretKey: "p", Value: []byte(pw)})
	wantErr(t, err, provider.ErrInvalidPush)
	if o := object(t, srv, kvserver.KindSecret, "plain"); o.Versions != 1 {
		t.Fatalf("a refused push wrote: %d versions", o.Versions)
	}
	// Nor into a key or certificate.
	_, err = c.Inspect(testContext(t), provider.PushRef{RemoteKey: "key/k", Property: "p"})
	wantErr(t, err, provider.ErrInvalidPush)
}

func TestPushNeverWritesNorDeletesASecretItDidNotCreate(t *testing.T) {
	srv := newServer(t)
	c := pusher(t, srv)
	theirs := "theirs-" + canary
	srv.SetSecret("foreign", theirs, kvserver.WithTags(map[string]string{"owner": "someone"}))
	ref := provider.PushRef{RemoteKey: "foreign"}
	ctx := testContext(t)

	st, err := c.Inspect(ctx, ref)
	if err != nil || !st.Exists || st.Managed {
		t.Fatalf("Inspect = %+v, %v; want an existing secret that is not managed", st, err)
	}
	_, err = c.Push(ctx, ref, provider.PushValue{SecretKey: "k", Value: []byte("mine-" + canary)}, st)
	wantErr(t, err, provider.ErrNotManaged)
	// Even handed a state that says otherwise, the provider checks the tag
	// it reads before writing.
	forged := st
	forged.Managed = true
	_, err = c.Push(ctx, ref, provider.PushValue{SecretKey: "k", Value: []byte("mine-" + canary)}, forged)
	wantErr(t, err, provider.ErrNotManaged)
	if err := c.Delete(ctx, ref, forged); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	o := object(t, srv, kvserver.KindSecret, "foreign")
	if o.Value != theirs || o.Versions != 1 || srv.IsDeleted(kvserver.KindSecret, "foreign") {
		t.Fatalf("the foreign secret was touched: %d versions, value kept %t", o.Versions, o.Value == theirs)
	}
}

func TestPushChecksTheVersionItInspected(t *testing.T) {
	srv := newServer(t)
	c := pusher(t, srv)
	ref := provider.PushRef{RemoteKey: "shared"}
	push(t, c, ref, provider.PushValue{SecretKey: "a", Value: []byte("a-" + canary)})
	st, err := c.Inspect(testContext(t), ref)
	if err != nil {
		t.Fatal(err)
	}
	// Someone else writes between keyferry's read and its write.
	other := "other-" + canary
	srv.SetSecret("shared", other, managedTag)
	_, err = c.Push(testContext(t), ref, provider.PushValue{SecretKey: "a", Value: []byte("mine-" + canary)}, st)
	wantErr(t, err, provider.ErrConflict)
	if o := object(t, srv, kvserver.KindSecret, "shared"); o.Value != other {
		t.Fatal("the other writer's value was overwritten")
	}
	// A secret created since Inspect saw none is a conflict too.
	srv.SetSecret("raced", "raced-"+canary, managedTag)
	_, err = c.Push(testContext(t), provider.PushRef{RemoteKey: "raced"}, provider.PushValue{SecretKey: "a", Value: []byte("mine-" + canary)}, provider.RemoteState{})
	wantErr(t, err, provider.ErrConflict)
}

func TestPushWholeSecretAndDelete(t *testing.T) {
	srv := newServer(t)
	c := pusher(t, srv)
	a, b := "a-"+canary, "b-"+canary
	whole := provider.PushRef{RemoteKey: "whole"}
	push(t, c, whole, provider.PushValue{Secret: map[string][]byte{"a": []byte(a), "b": []byte(b)}})
	var got map[string]string
	if err := json.Unmarshal([]byte(object(t, srv, kvserver.KindSecret, "whole").Value), &got); err != nil || got["a"] != a || got["b"] != b || len(got) != 2 {
		t.Fatalf("the whole Secret is not the JSON object of its keys (%v)", err)
	}
	ctx := testContext(t)
	// Deleting one property writes a version without it; the last one
	// deletes the secret (soft-delete).
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: "whole", Property: "a"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	got = nil
	if err := json.Unmarshal([]byte(object(t, srv, kvserver.KindSecret, "whole").Value), &got); err != nil || len(got) != 1 || got["b"] != b {
		t.Fatalf("after deleting a: keys %v (%v); want only b", keysOf(got), err)
	}
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: "whole", Property: "b"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Object(kvserver.KindSecret, "whole"); ok || !srv.IsDeleted(kvserver.KindSecret, "whole") {
		t.Fatal("the secret was not deleted with its last property")
	}
	// Deleting what is gone is not an error; a soft-deleted name cannot be
	// pushed again until purged, and the error says so.
	if err := c.Delete(ctx, whole, provider.RemoteState{}); err != nil {
		t.Fatalf("deleting a deleted secret: %v", err)
	}
	err := pushErr(t, c, whole, provider.PushValue{SecretKey: "k", Value: []byte(a)})
	noCanary(t, err)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("ObjectIsDeletedButRecoverable")) {
		t.Fatalf("pushing a soft-deleted name: %v; want Key Vault's 409 ObjectIsDeletedButRecoverable", err)
	}

	// Delete of a whole pushed secret.
	push(t, c, provider.PushRef{RemoteKey: "secret/single"}, provider.PushValue{SecretKey: "k", Value: []byte(a)})
	if err := c.Delete(ctx, provider.PushRef{RemoteKey: "secret/single"}, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if !srv.IsDeleted(kvserver.KindSecret, "single") {
		t.Fatal("the pushed secret was not deleted")
	}
}

func TestPushRefusesWhatKeyVaultCannotHold(t *testing.T) {
	srv := newServer(t)
	c := pusher(t, srv)
	for name, tc := range map[string]struct {
		ref provider.PushRef
		v   provider.PushValue
	}{
		"a secret that is not UTF-8":      {provider.PushRef{RemoteKey: "bin"}, provider.PushValue{SecretKey: "k", Value: append([]byte(canary), 0xff, 0xfe)}},
		"a key that is not a private key": {provider.PushRef{RemoteKey: "key/k"}, provider.PushValue{SecretKey: "k", Value: []byte("not-a-key-" + canary)}},
		"a JWK without its private part":  {provider.PushRef{RemoteKey: "key/k"}, provider.PushValue{SecretKey: "k", Value: []byte(`{"kty":"RSA","n":"` + base64.RawURLEncoding.EncodeToString([]byte(canary)) + `","e":"AQAB"}`)}},
		"a certificate that is not one":   {provider.PushRef{RemoteKey: "cert/c"}, provider.PushValue{SecretKey: "k", Value: []byte("not-a-cert-" + canary)}},
		"a whole Secret into a key":       {provider.PushRef{RemoteKey: "key/k"}, provider.PushValue{Secret: map[string][]byte{"k": []byte(canary)}}},
	} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, pushErr(t, c, tc.ref, tc.v), provider.ErrInvalidPush)
		})
	}
	for _, kind := range []kvserver.Kind{kvserver.KindSecret, kvserver.KindKey, kvserver.KindCertificate} {
		for _, n := range []string{"bin", "k", "c"} {
			if _, ok := srv.Object(kind, n); ok {
				t.Fatalf("a refused push created %s %s", kind, n)
			}
		}
	}
	// A reader cannot push: Key Vault's 403 is ErrForbidden.
	reader := readerClient(t, srv, kvserver.ReadAll)
	wantErr(t, pushErr(t, reader, provider.PushRef{RemoteKey: "ro"}, provider.PushValue{SecretKey: "k", Value: []byte(canary)}), provider.ErrForbidden)
}

func TestPushImportsKeysFromPEMAndJWK(t *testing.T) {
	srv := newServer(t)
	c := pusher(t, srv)
	_, rsaKey := selfSigned(t, "key")
	pkcs1 := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})
	ref := provider.PushRef{RemoteKey: "key/signing"}
	if !push(t, c, ref, provider.PushValue{SecretKey: "tls.key", Value: pkcs1}) {
		t.Fatal("the key was not imported")
	}
	o := object(t, srv, kvserver.KindKey, "signing")
	if o.JWK["kty"] != "RSA" || o.JWK["n"] != base64.RawURLEncoding.EncodeToString(rsaKey.N.Bytes()) || o.Tags[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("key: kty %v, tags %v; want the RSA public key tagged managed-by", o.JWK["kty"], o.Tags)
	}
	// The same key as PKCS#8 is unchanged: no new version.
	der, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	if push(t, c, ref, provider.PushValue{SecretKey: "tls.key", Value: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})}) {
		t.Fatal("the same key was imported again")
	}

	// An EC key as a JSON Web Key with its private part.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := jwkOf(ec)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(jwk)
	if err != nil {
		t.Fatal(err)
	}
	push(t, c, provider.PushRef{RemoteKey: "key/ec"}, provider.PushValue{SecretKey: "jwk", Value: raw})
	if o := object(t, srv, kvserver.KindKey, "ec"); o.JWK["crv"] != "P-256" || o.JWK["x"] != base64.RawURLEncoding.EncodeToString(jwk.X) {
		t.Fatalf("EC key: %v", o.JWK["crv"])
	}
	if err := c.Delete(testContext(t), ref, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if !srv.IsDeleted(kvserver.KindKey, "signing") {
		t.Fatal("the pushed key was not deleted")
	}
}

func TestPushImportsCertificatesFromPEMAndPKCS12(t *testing.T) {
	srv := newServer(t)
	c := pusher(t, srv)
	cert, key := selfSigned(t, "tls")
	ref := provider.PushRef{RemoteKey: "cert/tls"}
	if !push(t, c, ref, provider.PushValue{SecretKey: "tls.pem", Value: pemBundle(t, cert, key)}) {
		t.Fatal("the certificate was not imported")
	}
	o := object(t, srv, kvserver.KindCertificate, "tls")
	if !bytes.Equal(o.CER, cert.Raw) || o.Tags[provider.ManagedByKey] != provider.ManagedByValue {
		t.Fatalf("certificate: tags %v, DER as pushed %t", o.Tags, bytes.Equal(o.CER, cert.Raw))
	}
	// The same certificate as PKCS#12 is unchanged.
	p12, err := pkcs12.Passwordless.Encode(key, cert, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if push(t, c, ref, provider.PushValue{SecretKey: "cert.p12", Value: p12}) {
		t.Fatal("the same certificate was imported again")
	}
	newCert, newKey := selfSigned(t, "tls-renewed")
	p12, err = pkcs12.Passwordless.Encode(newKey, newCert, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	push(t, c, ref, provider.PushValue{SecretKey: "cert.p12", Value: p12})
	if o := object(t, srv, kvserver.KindCertificate, "tls"); !bytes.Equal(o.CER, newCert.Raw) || o.Versions != 2 {
		t.Fatalf("after renewal: %d versions", o.Versions)
	}
	// What was imported reads back as the read path serves it.
	if got := getValue(t, c, "cert/tls", ""); !bytes.Equal(got.Data, newCert.Raw) {
		t.Fatal("cert/tls does not read back the pushed certificate")
	}
	if err := c.Delete(testContext(t), ref, provider.RemoteState{}); err != nil {
		t.Fatal(err)
	}
	if !srv.IsDeleted(kvserver.KindCertificate, "tls") {
		t.Fatal("the pushed certificate was not deleted")
	}
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// FuzzPushValues feeds arbitrary pushed values to the parsers of keys and
// certificates and to the property merge: they never panic, a refusal is
// ErrInvalidPush and never quotes the value, and a merged property reads
// back as pushed with the other fields kept.
func FuzzPushValues(f *testing.F) {
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}`), "p", `{"a":"b"}`)
	f.Add([]byte("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n"), "password", `{}`)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), "", `not json`)
	f.Add([]byte{0x30, 0x82, 0x01}, "a.b", `{"a":{"b":1}}`)
	f.Fuzz(func(t *testing.T, value []byte, property, current string) {
		leak := func(err error) {
			if err == nil {
				return
			}
			if !errors.Is(err, provider.ErrInvalidPush) {
				t.Fatalf("error %q does not wrap ErrInvalidPush", err)
			}
			if len(value) >= 24 && strings.Contains(err.Error(), string(value)) {
				t.Fatalf("error %q quotes the value", err)
			}
		}
		_, err := importedKey("k", value)
		leak(err)
		_, err = importedCertificate("k", value)
		leak(err)

		ref := provider.PushRef{RemoteKey: "s", Property: property}
		cur := remote{exists: true, value: &current}
		next, err := secretValue(ref, provider.PushValue{SecretKey: "k", Value: value}, value, cur)
		if err != nil {
			if len(current) >= 24 && strings.Contains(err.Error(), current) {
				t.Fatalf("error %q quotes the current value", err)
			}
			leak(err)
			return
		}
		if property == "" {
			if next != string(value) {
				t.Fatal("without a property the value is not pushed as it is")
			}
			return
		}
		var before, after map[string]json.RawMessage
		if err := json.Unmarshal([]byte(next), &after); err != nil {
			t.Fatalf("the merged value is not a JSON object: %v", err)
		}
		var got string
		if err := json.Unmarshal(after[property], &got); err != nil || got != string(value) {
			t.Fatalf("property %q does not read back as pushed", property)
		}
		if current != "" && json.Unmarshal([]byte(current), &before) == nil {
			for k := range before {
				if _, ok := after[k]; !ok {
					t.Fatalf("field %q was dropped", k)
				}
			}
		}
	})
}
