package gcpsm

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/internal/provider"
)

func TestParseClassSecrets(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []ClassSecret
		wantErr string
	}{
		{
			// examples/app-secrets.yaml.tmpl of the GCP provider, with
			// $PROJECT_ID filled in.
			name: "the provider's example: one secret under two paths",
			in: `- resourceName: "projects/my-project/secrets/testsecret/versions/latest"
  path: "good1.txt"
- resourceName: "projects/my-project/secrets/testsecret/versions/latest"
  path: "good2.txt"
`,
			want: []ClassSecret{
				{ResourceName: "projects/my-project/secrets/testsecret/versions/latest", Project: "my-project", Secret: "testsecret", Version: "latest", File: "good1.txt"},
				{ResourceName: "projects/my-project/secrets/testsecret/versions/latest", Project: "my-project", Secret: "testsecret", Version: "latest", File: "good2.txt"},
			},
		},
		{
			// examples/app-secrets-with-extract-key.yaml.tmpl: a global and
			// a regional secret, each a JSON document.
			name: "the provider's extract-key example: global and regional",
			in: `- resourceName: "projects/my-project/secrets/testsecret/versions/latest"
  path: "good1.txt"
  extractJSONKey: "user"
- resourceName: "projects/my-project/locations/us-central1/secrets/testsecret/versions/latest"
  path: "good2.txt"
  extractJSONKey: "user"
`,
			want: []ClassSecret{
				{ResourceName: "projects/my-project/secrets/testsecret/versions/latest", Project: "my-project", Secret: "testsecret", Version: "latest", File: "good1.txt", ExtractJSONKey: "user"},
				{ResourceName: "projects/my-project/locations/us-central1/secrets/testsecret/versions/latest", Project: "my-project", Location: "us-central1", Secret: "testsecret", Version: "latest", File: "good2.txt", ExtractJSONKey: "user"},
			},
		},
		{
			name: "fileName when there is no path; mode and unknown fields ignored",
			in:   "- resourceName: projects/p/secrets/s/versions/3\n  fileName: s.txt\n  mode: 0400\n  other: x\n",
			want: []ClassSecret{{ResourceName: "projects/p/secrets/s/versions/3", Project: "p", Secret: "s", Version: "3", File: "s.txt"}},
		},
		{
			name: "path wins over fileName; a path may have folders",
			in:   "- resourceName: projects/p/secrets/s/versions/3\n  fileName: ignored.txt\n  path: dir/s.txt\n  extractYAMLKey: k\n",
			want: []ClassSecret{{ResourceName: "projects/p/secrets/s/versions/3", Project: "p", Secret: "s", Version: "3", File: "dir/s.txt", ExtractYAMLKey: "k"}},
		},
		{name: "empty", in: "  ", wantErr: "parameters.secrets is required"},
		{name: "empty list", in: "[]", wantErr: "parameters.secrets is empty"},
		{name: "not a list", in: "resourceName: x", wantErr: "not a YAML list"},
		{name: "not YAML", in: "- [", wantErr: "not a YAML list"},
		{name: "no resourceName", in: "- path: a", wantErr: "secrets[0]: resourceName is required"},
		{name: "no path", in: "- resourceName: projects/p/secrets/s/versions/1", wantErr: "path (or fileName) is required"},
		{name: "a secret, not a version", in: "- resourceName: projects/p/secrets/s\n  path: a", wantErr: "is not projects/PROJECT/secrets/SECRET/versions/VERSION"},
		{name: "something before projects/", in: "- resourceName: x/projects/p/secrets/s/versions/1\n  path: a", wantErr: "is not projects/"},
		{name: "Parameter Manager", in: "- resourceName: projects/p/locations/global/parameters/x/versions/v\n  path: a", wantErr: "Parameter Manager"},
		{name: "location too long", in: "- resourceName: projects/p/locations/" + strings.Repeat("a", 31) + "/secrets/s/versions/1\n  path: a", wantErr: "is not a GCP location"},
		{name: "location that would change the endpoint", in: "- resourceName: projects/p/locations/evil.com:443#/secrets/s/versions/1\n  path: a", wantErr: "is not a GCP location"},
		{name: "secret ID of 256 characters", in: "- resourceName: projects/p/secrets/" + strings.Repeat("s", 256) + "/versions/1\n  path: a", wantErr: "is not a secret ID"},
		{name: "version of 64 characters", in: "- resourceName: projects/p/secrets/s/versions/" + strings.Repeat("v", 64) + "\n  path: a", wantErr: "is not a version"},
		{name: "bad project", in: "- resourceName: projects/P_1/secrets/s/versions/1\n  path: a", wantErr: "is not a GCP project ID"},
		{name: "absolute path", in: "- resourceName: projects/p/secrets/s/versions/1\n  path: /etc/x", wantErr: "relative file path"},
		{name: "path escaping the volume", in: "- resourceName: projects/p/secrets/s/versions/1\n  path: a/../../x", wantErr: "relative file path"},
		{name: "both extract keys", in: "- resourceName: projects/p/secrets/s/versions/1\n  path: a\n  extractJSONKey: a\n  extractYAMLKey: b", wantErr: "cannot both be set"},
		{name: "a field of the wrong type", in: "- resourceName: projects/p/secrets/s/versions/1\n  path: [a]", wantErr: "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClassSecrets(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseClassSecrets = %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClassSecrets: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseClassParams(t *testing.T) {
	const secrets = "- resourceName: projects/p/secrets/s/versions/1\n  path: a\n"
	tests := []struct {
		name     string
		params   map[string]string
		wantAuth string
		wantErr  string
	}{
		{name: "pod-adc is the default", params: map[string]string{"secrets": secrets}, wantAuth: AuthPodADC},
		{name: "pod-adc", params: map[string]string{"secrets": secrets, "auth": "pod-adc"}, wantAuth: AuthPodADC},
		// docs/authentication.md of the GCP provider.
		{name: "provider-adc", params: map[string]string{"secrets": secrets, "auth": "provider-adc"}, wantAuth: AuthProviderADC},
		{name: "unknown auth", params: map[string]string{"secrets": secrets, "auth": "node-publish-secret"}, wantErr: "parameters.auth"},
		{name: "no secrets", params: map[string]string{}, wantErr: "parameters.secrets is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClassParams(tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseClassParams = %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Auth != tt.wantAuth || len(got.Secrets) != 1 {
				t.Fatalf("ParseClassParams = %+v, %v; want auth %s and one secret", got, err, tt.wantAuth)
			}
		})
	}
}

// Errors never quote more than a resource name or a path: a value pasted
// into the wrong field is not echoed whole.
func FuzzParseClassSecrets(f *testing.F) {
	for _, s := range []string{
		"- resourceName: projects/p/secrets/s/versions/latest\n  path: a.txt\n",
		"- resourceName: projects/p/locations/us-central1/secrets/s/versions/1\n  fileName: b\n  extractJSONKey: user\n",
		"- {resourceName: x, path: [1]}",
		"[]",
		"- &a {resourceName: *a}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseClassSecrets(s)
		if err != nil {
			if got != nil {
				t.Fatalf("ParseClassSecrets returned secrets with an error")
			}
			return
		}
		if len(got) == 0 {
			t.Fatalf("ParseClassSecrets returned no secret and no error")
		}
		for _, sec := range got {
			if !provider.ValidClassFilePath(sec.File) || sec.Secret == "" || sec.Version == "" || strings.Contains(sec.Secret, "/") {
				t.Fatalf("ParseClassSecrets accepted %+v", sec)
			}
			if sec.Location != "" && !locationPattern.MatchString(sec.Location) {
				t.Fatalf("ParseClassSecrets accepted location %q", sec.Location)
			}
			if sec.Parent()+"/secrets/"+sec.Secret+"/versions/"+sec.Version != sec.ResourceName {
				t.Fatalf("the parts of %q do not make it up again", sec.ResourceName)
			}
		}
	})
}
