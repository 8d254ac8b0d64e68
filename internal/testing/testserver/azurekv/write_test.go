package azurekv

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The write side's wire format, checked without the SDK.

func send(t *testing.T, hc *http.Client, method, rawURL, token string, body any) (*http.Response, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, rawURL, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %s", method, rawURL, b)
		}
	}
	return resp, out
}

func errorCode(body map[string]any) (code, inner string) {
	e, _ := body["error"].(map[string]any)
	code, _ = e["code"].(string)
	if in, ok := e["innererror"].(map[string]any); ok {
		inner, _ = in["code"].(string)
	}
	return code, inner
}

func TestVaultWriteProtocol(t *testing.T) {
	s := New(t, Options{})
	hc := s.HTTPClient()
	s.AddApp(App{ClientID: "writer", ClientSecret: "pw", Access: ReadAll | WriteAll})
	s.AddApp(App{ClientID: "reader", ClientSecret: "pw", Access: ReadAll})
	_, tok := clientSecretToken(t, s, hc, "writer", "pw")
	token := tok["access_token"].(string)
	_, tok = clientSecretToken(t, s, hc, "reader", "pw")
	readerToken := tok["access_token"].(string)
	u := func(path string) string { return s.VaultURL() + path + "?api-version=2025-07-01" }

	// Set Secret: 200 with the new version's bundle; each set is a version.
	resp, body := send(t, hc, http.MethodPut, u("/secrets/app"), token, map[string]any{"value": "v1", "contentType": "text/plain", "tags": map[string]string{"a": "b"}})
	if resp.StatusCode != http.StatusOK || body["value"] != "v1" || body["contentType"] != "text/plain" || !strings.HasPrefix(body["id"].(string), s.VaultURL()+"/secrets/app/") {
		t.Fatalf("set: %d %v", resp.StatusCode, body)
	}
	first := body["id"].(string)
	_, body = send(t, hc, http.MethodPut, u("/secrets/app"), token, map[string]any{"value": "v2"})
	if body["id"] == first || body["tags"] != nil {
		t.Fatalf("second set: %v; want a new version without the first one's tags", body)
	}
	if o, _ := s.Object(KindSecret, "app"); o.Versions != 2 || o.Value != "v2" {
		t.Fatalf("object: %+v", o)
	}

	// Update Secret sets tags of a version and does not return the value.
	resp, body = send(t, hc, http.MethodPatch, u("/secrets/app/"), token, map[string]any{"tags": map[string]string{"x": "y"}})
	if resp.StatusCode != http.StatusOK || body["value"] != nil || body["tags"].(map[string]any)["x"] != "y" {
		t.Fatalf("update: %d %v", resp.StatusCode, body)
	}

	// Refusals.
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
		status                    int
		code, inner               string
	}{
		{"no value", http.MethodPut, "/secrets/x", token, map[string]any{}, 400, "BadParameter", ""},
		{"too many tags", http.MethodPut, "/secrets/x", token, map[string]any{"value": "v", "tags": manyTags(16)}, 400, "BadParameter", ""},
		{"too large", http.MethodPut, "/secrets/x", token, map[string]any{"value": strings.Repeat("a", maxSecretSize+1)}, 400, "BadParameter", ""},
		{"bad name", http.MethodPut, "/secrets/a_b", token, map[string]any{"value": "v"}, 400, "BadParameter", ""},
		{"reader sets", http.MethodPut, "/secrets/x", readerToken, map[string]any{"value": "v"}, 403, "Forbidden", "ForbiddenByRbac"},
		{"reader deletes", http.MethodDelete, "/secrets/app", readerToken, nil, 403, "Forbidden", "ForbiddenByRbac"},
		{"delete missing", http.MethodDelete, "/secrets/missing", token, nil, 404, "SecretNotFound", ""},
		{"key without private part", http.MethodPut, "/keys/k", token, map[string]any{"key": map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"}}, 400, "BadParameter", ""},
		{"oct key", http.MethodPut, "/keys/k", token, map[string]any{"key": map[string]any{"kty": "oct", "k": "AQAB"}}, 400, "BadParameter", ""},
		{"certificate that is not one", http.MethodPost, "/certificates/c/import", token, map[string]any{"value": "bm90"}, 400, "BadParameter", ""},
	} {
		resp, body := send(t, hc, tc.method, u(tc.path), tc.token, tc.body)
		code, inner := errorCode(body)
		if resp.StatusCode != tc.status || code != tc.code || inner != tc.inner {
			t.Errorf("%s: %d %s/%s, want %d %s/%s", tc.name, resp.StatusCode, code, inner, tc.status, tc.code, tc.inner)
		}
	}

	// Delete is a soft-delete: the deleted bundle without the value, reads
	// answer 404, the name cannot be reused until purged.
	resp, body = send(t, hc, http.MethodDelete, u("/secrets/app"), token, nil)
	if resp.StatusCode != http.StatusOK || body["value"] != nil || body["recoveryId"] != s.VaultURL()+"/deletedsecrets/app" || body["scheduledPurgeDate"] == nil {
		t.Fatalf("delete: %d %v", resp.StatusCode, body)
	}
	if resp, _ := send(t, hc, http.MethodGet, u("/secrets/app"), token, nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("get after delete: %d", resp.StatusCode)
	}
	resp, body = send(t, hc, http.MethodPut, u("/secrets/app"), token, map[string]any{"value": "v3"})
	if code, inner := errorCode(body); resp.StatusCode != http.StatusConflict || code != "Conflict" || inner != "ObjectIsDeletedButRecoverable" {
		t.Fatalf("set of a deleted name: %d %v", resp.StatusCode, body)
	}
	if resp, body := send(t, hc, http.MethodGet, u("/deletedsecrets/app"), token, nil); resp.StatusCode != http.StatusOK || body["value"] != nil {
		t.Fatalf("get deleted: %d %v", resp.StatusCode, body)
	}
	if resp, _ := send(t, hc, http.MethodDelete, u("/deletedsecrets/app"), token, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("purge without the purge permission: %d", resp.StatusCode)
	}
	s.SetAccess("writer", ReadAll|WriteAll|Purge)
	if resp, _ := send(t, hc, http.MethodDelete, u("/deletedsecrets/app"), token, nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("purge: %d", resp.StatusCode)
	}
	if resp, _ := send(t, hc, http.MethodPut, u("/secrets/app"), token, map[string]any{"value": "v4"}); resp.StatusCode != http.StatusOK || s.IsDeleted(KindSecret, "app") {
		t.Fatalf("set after purge: %d", resp.StatusCode)
	}

	// Import Key answers the public key only.
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	pub, _ := ec.PublicKey.Bytes()
	d, _ := ec.Bytes()
	resp, body = send(t, hc, http.MethodPut, u("/keys/signing"), token, map[string]any{
		"key":  map[string]any{"kty": "EC", "crv": "P-256", "x": b64(pub[1:33]), "y": b64(pub[33:]), "d": b64(d)},
		"tags": map[string]string{"managed-by": "external-secrets"},
	})
	key, _ := body["key"].(map[string]any)
	if resp.StatusCode != http.StatusOK || key["d"] != nil || key["x"] != b64(pub[1:33]) || !strings.HasPrefix(key["kid"].(string), s.VaultURL()+"/keys/signing/") {
		t.Fatalf("import key: %d %v", resp.StatusCode, body)
	}
}

func manyTags(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[strings.Repeat("t", i+1)] = "v"
	}
	return m
}
