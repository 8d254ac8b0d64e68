package azurekv

import (
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
			name: "the extension's example: a string per object, with a history",
			in: `array:
  - |
    objectName: my-secret            # The name of the secret to sychronize.
    objectType: secret
    objectVersionHistory: 2                       # [optional] The number of versions to synchronize, starting from latest.
`,
			want: []SPCObject{{Name: "my-secret", Type: "secret", VersionHistory: 2}},
		},
		{
			name: "every field, trimmed and lower-cased where the provider is case-insensitive",
			in: `array:
  - |
    objectName: " tls-cert "
    objectType: SECRET
    objectVersion: 0123abcd
    objectAlias: server
    objectEncoding: Base64
    objectFormat: PFX
    filePermission: "0644"
`,
			want: []SPCObject{{Name: "tls-cert", Type: "secret", Version: "0123abcd", Alias: "server", Encoding: "base64", Format: "pfx"}},
		},
		{
			name: "objects as mappings instead of strings",
			in: `array:
  - objectName: a
    objectType: key
  - objectName: b
    objectType: cert
`,
			want: []SPCObject{{Name: "a", Type: "key"}, {Name: "b", Type: "cert"}},
		},
		{
			name: "objectVersion latest is the latest",
			in:   "array:\n  - |\n    objectName: a\n    objectType: secret\n    objectVersion: latest\n",
			want: []SPCObject{{Name: "a", Type: "secret"}},
		},
		{
			name: "a version that YAML would read as a number stays text",
			in:   "array:\n  - |\n    objectName: a\n    objectType: secret\n    objectVersion: 1e10\n",
			want: []SPCObject{{Name: "a", Type: "secret", Version: "1e10"}},
		},
		{
			name: "quoted history",
			in:   "array:\n  - |\n    objectName: a\n    objectType: secret\n    objectVersionHistory: \"3\"\n",
			want: []SPCObject{{Name: "a", Type: "secret", VersionHistory: 3}},
		},
		{
			name: "null fields are empty",
			in:   "array:\n  - |\n    objectName: a\n    objectType: secret\n    objectAlias: ~\n",
			want: []SPCObject{{Name: "a", Type: "secret"}},
		},
		{
			name: "anchors and aliases",
			in:   "base: &t secret\narray:\n  - objectName: a\n    objectType: *t\n",
			want: []SPCObject{{Name: "a", Type: "secret"}},
		},
		{name: "empty", in: "  \n", wantErr: "objects is empty"},
		{name: "not YAML", in: "array: [", wantErr: "not valid YAML"},
		{name: "not a mapping", in: "- a\n- b\n", wantErr: "not a YAML mapping"},
		{name: "no array", in: "objects: []\n", wantErr: "has no `array`"},
		{name: "array is a string", in: "array: nope\n", wantErr: "`array` is not a list"},
		{name: "array is empty", in: "array: []\n", wantErr: "`array` is empty"},
		{name: "entry is a list", in: "array:\n  - [a, b]\n", wantErr: "array[0]: not a YAML mapping"},
		{name: "entry string is not a mapping", in: "array:\n  - just text\n", wantErr: "array[0]: not a YAML mapping"},
		{name: "objectName missing", in: "array:\n  - objectType: secret\n", wantErr: "objectName is required"},
		{name: "objectName with a slash", in: "array:\n  - objectName: a/b\n    objectType: secret\n", wantErr: "is not a Key Vault object name"},
		{name: "objectName of 128 characters", in: "array:\n  - objectName: " + strings.Repeat("a", 128) + "\n    objectType: secret\n", wantErr: "is not a Key Vault object name"},
		{name: "objectVersion of 65 characters", in: "array:\n  - objectName: a\n    objectType: secret\n    objectVersion: " + strings.Repeat("f", 65) + "\n", wantErr: "objectVersion"},
		{name: "objectType missing", in: "array:\n  - objectName: a\n", wantErr: "objectType is required"},
		{name: "objectType unknown", in: "array:\n  - objectName: a\n    objectType: blob\n", wantErr: `objectType "blob" is not secret, key or cert`},
		{name: "field is a mapping", in: "array:\n  - objectName: {a: b}\n    objectType: secret\n", wantErr: "objectName is not a single value"},
		{name: "history not a number", in: "array:\n  - objectName: a\n    objectType: secret\n    objectVersionHistory: two\n", wantErr: "objectVersionHistory must be a whole number"},
		{name: "history negative", in: "array:\n  - objectName: a\n    objectType: secret\n    objectVersionHistory: -1\n", wantErr: "objectVersionHistory must be a whole number"},
		{name: "history too large", in: "array:\n  - objectName: a\n    objectType: secret\n    objectVersionHistory: 99999999999\n", wantErr: "objectVersionHistory must be a whole number"},
		{name: "encoding unknown", in: "array:\n  - objectName: a\n    objectType: secret\n    objectEncoding: rot13\n", wantErr: `objectEncoding "rot13" is not utf-8, hex or base64`},
		{name: "encoding on a key", in: "array:\n  - objectName: a\n    objectType: key\n    objectEncoding: hex\n", wantErr: "objectEncoding is only supported for objectType secret"},
		{name: "format on a cert", in: "array:\n  - objectName: a\n    objectType: cert\n    objectFormat: pfx\n", wantErr: "objectFormat is only supported for objectType secret"},
		{name: "format unknown", in: "array:\n  - objectName: a\n    objectType: secret\n    objectFormat: der\n", wantErr: `objectFormat "der" is not pem or pfx`},
		{name: "alias with a slash", in: "array:\n  - objectName: a\n    objectType: secret\n    objectAlias: ../etc\n", wantErr: "objectAlias"},
		{name: "alias dot-dot", in: "array:\n  - objectName: a\n    objectType: secret\n    objectAlias: ..\n", wantErr: "objectAlias"},
		{name: "version with a slash", in: "array:\n  - objectName: a\n    objectType: secret\n    objectVersion: a/b\n", wantErr: "is not a Key Vault version identifier"},
		{name: "pinned version with history", in: "array:\n  - objectName: a\n    objectType: secret\n    objectVersion: abc\n    objectVersionHistory: 2\n", wantErr: "objectVersion with objectVersionHistory is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClassObjects(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseClassObjects succeeded with %+v; want an error containing %q", got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClassObjects: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSPCObjectFiles(t *testing.T) {
	tests := []struct {
		name string
		obj  SPCObject
		want []string
	}{
		{"name", SPCObject{Name: "a"}, []string{"a"}},
		{"alias", SPCObject{Name: "a", Alias: "b"}, []string{"b"}},
		{"history 1 is one file", SPCObject{Name: "a", VersionHistory: 1}, []string{"a"}},
		{"history", SPCObject{Name: "a", Alias: "b", VersionHistory: 3}, []string{"b/0", "b/1", "b/2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.obj.Files(); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Files() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestParseClassObjectsErrorsDoNotQuoteEntries: an entry can hold anything a
// user pasted; errors name fields and positions, never the entry's text.
func TestParseClassObjectsErrorsDoNotQuoteEntries(t *testing.T) {
	const canary = "canary-7f3a9e-do-not-log"
	for _, in := range []string{
		"array:\n  - |\n    " + canary + ": [\n",
		"array: [" + canary,
		"array:\n  - " + canary + "\n",
		"array:\n  - objectName: x\n    objectType: secret\n    unknown: " + canary + "\n    objectEncoding: [" + canary + "]\n",
		canary + ": {",
	} {
		_, err := ParseClassObjects(in)
		if err == nil {
			t.Fatalf("ParseClassObjects(%q) succeeded", in)
		}
		if strings.Contains(err.Error(), canary) {
			t.Fatalf("error %q quotes the input", err)
		}
	}
}

func FuzzParseClassObjects(f *testing.F) {
	for _, seed := range []string{
		"array:\n  - |\n    objectName: my-secret\n    objectType: secret\n    objectVersionHistory: 2\n",
		"array:\n  - objectName: a\n    objectType: key\n  - objectName: b\n    objectType: cert\n    objectAlias: c\n",
		"array:\n  - |\n    objectName: a\n    objectType: secret\n    objectEncoding: hex\n    objectFormat: pfx\n",
		"base: &t secret\narray:\n  - objectName: a\n    objectType: *t\n",
		"array: [",
		"a: &a [*a, *a]\narray: *a\n",
		"array:\n  - \"objectName: x\\nobjectType: secret\\nobjectVersionHistory: 3\"\n",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in string) {
		objs, err := ParseClassObjects(in)
		if err != nil {
			if objs != nil {
				t.Fatalf("ParseClassObjects returned objects with an error")
			}
			return
		}
		if len(objs) == 0 {
			t.Fatalf("ParseClassObjects returned no object and no error")
		}
		for _, o := range objs {
			// Everything a successful parse returns is valid and maps to
			// sourcePaths and references that round-trip.
			if err := validateObject(o); err != nil {
				t.Fatalf("ParseClassObjects returned an invalid object %+v: %v", o, err)
			}
			files := o.Files()
			if len(files) == 0 || len(files) > max(o.VersionHistory, 1) {
				t.Fatalf("object %+v has files %v", o, files)
			}
		}
		// Every file resolves to its object, and so do its parts; no part
		// ever names a file.
		files := classFiles(objs)
		c := &classClient{files: files, class: "fuzz"}
		for name, f := range files {
			for key, part := range map[string]string{name: "", name + "/" + partCert: partCert, name + "/" + partKey: partKey} {
				got, gotPart, err := c.lookup(provider.Ref{Key: key})
				if err != nil || got != f || gotPart != part {
					t.Fatalf("lookup(%q) = %+v, %q, %v; want %+v, %q", key, got, gotPart, err, f, part)
				}
			}
			if _, clash := files[name+"/"+partCert]; clash {
				t.Fatalf("file %q/%s is also a file name", name, partCert)
			}
		}
	})
}
