package vault

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
)

func TestParseClassObjects(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []SPCObject
		wantErr string
	}{
		{
			// test/bats/configs/vault-kv-secretproviderclass.yaml of the
			// Vault provider (its "Hello World" class).
			name: "the provider's hello world: KV v2 paths, filePermission ignored",
			in: `- objectName: "secret-1"
  secretPath: "secret/data/kv1"
  secretKey: "bar1"
  filePermission: 0624
- objectName: "secret-2"
  secretPath: "secret/data/kv2"
  secretKey: "bar2"
`,
			want: []SPCObject{
				{Name: "secret-1", Path: "secret/data/kv1", Key: "bar1", Method: "GET"},
				{Name: "secret-2", Path: "secret/data/kv2", Key: "bar2", Method: "GET"},
			},
		},
		{
			// vault-kv-sync-secretproviderclass.yaml: the /v1/ prefix with
			// or without its slash, and a base64 encoding.
			name: "the provider's sync example: /v1/ prefixes and encoding",
			in: `- objectName: "secret-1"
  secretPath: "/v1/secret/data/kv-sync1"
  secretKey: "bar1"
- objectName: "secret-2"
  secretPath: "v1/secret/data/kv-sync2"
  secretKey: "bar2"
- objectName: "secret-3"
  secretPath: "/v1/secret/data/kv-sync3"
  secretKey: "bar3"
  encoding: "base64"
`,
			want: []SPCObject{
				{Name: "secret-1", Path: "secret/data/kv-sync1", Key: "bar1", Method: "GET"},
				{Name: "secret-2", Path: "secret/data/kv-sync2", Key: "bar2", Method: "GET"},
				{Name: "secret-3", Path: "secret/data/kv-sync3", Key: "bar3", Method: "GET", Encoding: "base64"},
			},
		},
		{
			// vault-all-secretproviderclass.yaml: dynamic database
			// credentials read twice, and a PKI certificate issued with
			// secretArgs.
			name: "the provider's all-engines example: secretArgs and method",
			in: `- objectName: "dbUsername"
  secretPath: "database/creds/test-role"
  secretKey: "username"
- objectName: "dbPassword"
  secretPath: "database/creds/test-role"
  secretKey: "password"
- objectName: "certs"
  secretPath: "pki/issue/example-dot-com"
  secretArgs:
    common_name: "test.example.com"
    ttl: "24h"
  method: "PUT"
`,
			want: []SPCObject{
				{Name: "dbUsername", Path: "database/creds/test-role", Key: "username", Method: "GET"},
				{Name: "dbPassword", Path: "database/creds/test-role", Key: "password", Method: "GET"},
				{Name: "certs", Path: "pki/issue/example-dot-com", Method: "PUT", Args: map[string]any{"common_name": "test.example.com", "ttl": "24h"}},
			},
		},
		{
			name: "a query, lower-case method and encoding, no secretKey",
			in:   "- objectName: a\n  secretPath: secret/data/x?version=2\n  method: get\n  encoding: HEX\n",
			want: []SPCObject{{Name: "a", Path: "secret/data/x", Query: url.Values{"version": {"2"}}, Method: "GET", Encoding: "hex"}},
		},
		{name: "empty", in: "", wantErr: "parameters.objects is required"},
		{name: "empty list", in: "[]", wantErr: "parameters.objects is empty"},
		{name: "not a list", in: "objectName: a", wantErr: "not a YAML list"},
		{name: "no objectName", in: "- secretPath: a", wantErr: "objects[0]: objectName is required"},
		{name: "no secretPath", in: "- objectName: a", wantErr: "secretPath is required"},
		{name: "only /v1/", in: "- objectName: a\n  secretPath: /v1/", wantErr: "names no Vault path"},
		{name: "a path out of the API", in: "- objectName: a\n  secretPath: ../sys/health", wantErr: "not a Vault API path"},
		{name: "duplicate objectName", in: "- objectName: a\n  secretPath: x\n- objectName: a\n  secretPath: y", wantErr: "[0] and [1] have the same objectName"},
		{name: "objectName escaping the volume", in: "- objectName: ../a\n  secretPath: x", wantErr: "relative file path"},
		{name: "DELETE", in: "- objectName: a\n  secretPath: x\n  method: DELETE", wantErr: "is not GET, PUT or POST"},
		{name: "secretArgs with GET", in: "- objectName: a\n  secretPath: x\n  secretArgs: {a: b}", wantErr: "secretArgs needs method PUT or POST"},
		{name: "a query with PUT", in: "- objectName: a\n  secretPath: x?a=b\n  method: PUT", wantErr: "GET only"},
		{name: "unknown encoding", in: "- objectName: a\n  secretPath: x\n  encoding: rot13", wantErr: "is not utf-8, base64 or hex"},
		{name: "a field of the wrong type", in: "- objectName: a\n  secretPath: [x]", wantErr: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClassObjects(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseClassObjects = %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClassObjects: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseClassParams(t *testing.T) {
	const objects = "- objectName: a\n  secretPath: secret/data/a\n"
	params := func(kv ...string) map[string]string {
		p := map[string]string{"vaultAddress": "https://vault:8200", "roleName": "kv-role", "objects": objects}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "-" {
				delete(p, kv[i])
			} else {
				p[kv[i]] = kv[i+1]
			}
		}
		return p
	}
	tests := []struct {
		name           string
		params         map[string]string
		defaultAddress string
		want           ClassParams
		wantErr        string
	}{
		{name: "the kubernetes mount is the default", params: params("audience", "vault"),
			want: ClassParams{Address: "https://vault:8200", Role: "kv-role", AuthMount: "kubernetes", Audience: "vault"}},
		{name: "vaultKubernetesMountPath", params: params("vaultKubernetesMountPath", "/k8s-prod/"),
			want: ClassParams{Address: "https://vault:8200", Role: "kv-role", AuthMount: "k8s-prod"}},
		{name: "vaultAuthMountPath (JWT auth)", params: params("vaultAuthMountPath", "jwt"),
			want: ClassParams{Address: "https://vault:8200", Role: "kv-role", AuthMount: "jwt"}},
		{name: "namespace and TLS server name", params: params("vaultNamespace", "acceptance", "vaultTLSServerName", "vault.internal"),
			want: ClassParams{Address: "https://vault:8200", Role: "kv-role", AuthMount: "kubernetes", Namespace: "acceptance", TLSServerName: "vault.internal"}},
		{name: "the operator's default address", params: params("vaultAddress", "-"), defaultAddress: "https://vault.vault:8200",
			want: ClassParams{Address: "https://vault.vault:8200", Role: "kv-role", AuthMount: "kubernetes"}},
		// internal/config/testdata/example-parameters-string.txt: skipping
		// TLS verification means nothing over http://.
		{name: "vaultSkipTLSVerify over http", params: params("vaultAddress", "http://vault:8200", "vaultSkipTLSVerify", "true"),
			want: ClassParams{Address: "http://vault:8200", Role: "kv-role", AuthMount: "kubernetes"}},
		{name: "vaultSkipTLSVerify false", params: params("vaultSkipTLSVerify", "false"),
			want: ClassParams{Address: "https://vault:8200", Role: "kv-role", AuthMount: "kubernetes"}},
		{name: "no address", params: params("vaultAddress", "-"), wantErr: "parameters.vaultAddress is required"},
		{name: "not a URL", params: params("vaultAddress", "vault:8200"), wantErr: "must be an http:// or https:// URL"},
		{name: "no role", params: params("roleName", "-"), wantErr: "parameters.roleName is required"},
		{name: "both mounts", params: params("vaultKubernetesMountPath", "a", "vaultAuthMountPath", "b"), wantErr: "cannot both be set"},
		{name: "a mount out of auth/", params: params("vaultKubernetesMountPath", "../sys"), wantErr: "is not a Vault auth mount"},
		{name: "a CA file of the CSI provider's pod", params: params("vaultCACertPath", "/mnt/tls/ca.crt"), wantErr: "parameters.vaultCACertPath is not supported"},
		{name: "a client certificate file", params: params("vaultTLSClientCertPath", "/mnt/tls/client.crt"), wantErr: "parameters.vaultTLSClientCertPath is not supported"},
		{name: "vaultSkipTLSVerify over https", params: params("vaultSkipTLSVerify", "true"), wantErr: "never sends a token to a server whose certificate it did not verify"},
		{name: "vaultSkipTLSVerify not a boolean", params: params("vaultSkipTLSVerify", "yes"), wantErr: "is not true or false"},
		{name: "no objects", params: params("objects", "-"), wantErr: "parameters.objects is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClassParams(tt.params, tt.defaultAddress)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseClassParams = %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClassParams: %v", err)
			}
			got.Objects = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// Every object the parser accepts is one keyferry can send safely: a path
// inside the API, a method that reads or issues, and arguments that are
// JSON.
func FuzzParseClassObjects(f *testing.F) {
	for _, s := range []string{
		"- objectName: a\n  secretPath: secret/data/a\n  secretKey: k\n",
		"- objectName: certs\n  secretPath: pki/issue/x\n  method: PUT\n  secretArgs: {common_name: a, ttl: 24h}\n",
		"- objectName: a\n  secretPath: /v1/x?version=1\n  encoding: base64\n",
		"- {objectName: a, secretPath: x, secretArgs: {1: 2}, method: post}",
		"[]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseClassObjects(s)
		if err != nil {
			if got != nil {
				t.Fatalf("ParseClassObjects returned objects with an error")
			}
			return
		}
		names := map[string]bool{}
		for _, o := range got {
			if names[o.Name] || !provider.ValidClassFilePath(o.Name) {
				t.Fatalf("ParseClassObjects accepted objectName %q", o.Name)
			}
			names[o.Name] = true
			if o.Path == "" || strings.HasPrefix(o.Path, "/") || strings.Contains("/"+o.Path+"/", "/../") {
				t.Fatalf("ParseClassObjects accepted path %q", o.Path)
			}
			if o.Method != "GET" && o.Method != "PUT" && o.Method != "POST" {
				t.Fatalf("ParseClassObjects accepted method %q", o.Method)
			}
			_ = requestKey(o) // never panics
		}
	})
}
