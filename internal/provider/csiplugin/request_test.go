package csiplugin

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/keyferry/keyferry/internal/provider"
)

const canary = "kf-canary-csi-5e21"

func TestBuildRequest(t *testing.T) {
	exp := time.Date(2026, 12, 4, 20, 0, 0, 0, time.UTC)
	base := mountInput{
		Params:  map[string]string{"objects": "- name: a", "region": "eu"},
		PodName: "keyferry-0", PodUID: "uid-1", Namespace: "team-a", ServiceAccount: "reader",
	}
	tests := []struct {
		name  string
		in    func(mountInput) mountInput
		check func(t *testing.T, attrs map[string]string, req *v1alpha1.MountRequest)
	}{
		{"parameters are passed as they are", nil, func(t *testing.T, a map[string]string, _ *v1alpha1.MountRequest) {
			if a["objects"] != "- name: a" || a["region"] != "eu" {
				t.Fatalf("attributes %v", a)
			}
		}},
		{"pod and ServiceAccount attributes are added", nil, func(t *testing.T, a map[string]string, _ *v1alpha1.MountRequest) {
			want := map[string]string{attrPodName: "keyferry-0", attrPodUID: "uid-1", attrPodNamespace: "team-a", attrServiceAccountName: "reader"}
			for k, v := range want {
				if a[k] != v {
					t.Fatalf("attribute %s = %q, want %q", k, a[k], v)
				}
			}
		}},
		{"no audience sends no tokens attribute", nil, func(t *testing.T, a map[string]string, _ *v1alpha1.MountRequest) {
			if _, ok := a[attrServiceAccountTokens]; ok {
				t.Fatalf("tokens attribute without audiences")
			}
		}},
		{"tokens are keyed by audience with their expiry", func(in mountInput) mountInput {
			in.Tokens = map[string]Token{"api://acme": {Token: "tok-1", Expires: exp}, "vault": {Token: "tok-2", Expires: exp}}
			return in
		}, func(t *testing.T, a map[string]string, _ *v1alpha1.MountRequest) {
			var toks map[string]struct {
				Token               string `json:"token"`
				ExpirationTimestamp string `json:"expirationTimestamp"`
			}
			if err := json.Unmarshal([]byte(a[attrServiceAccountTokens]), &toks); err != nil {
				t.Fatalf("tokens attribute: %v", err)
			}
			if len(toks) != 2 || toks["api://acme"].Token != "tok-1" || toks["vault"].Token != "tok-2" || toks["vault"].ExpirationTimestamp != "2026-12-04T20:00:00Z" {
				t.Fatalf("tokens %+v", toks)
			}
		}},
		{"a parameter cannot set a reserved attribute", func(in mountInput) mountInput {
			in.Params = map[string]string{attrServiceAccountName: "admin", attrServiceAccountTokens: "forged"}
			return in
		}, func(t *testing.T, a map[string]string, _ *v1alpha1.MountRequest) {
			if a[attrServiceAccountName] != "reader" {
				t.Fatalf("serviceAccount.name %q", a[attrServiceAccountName])
			}
			if _, ok := a[attrServiceAccountTokens]; ok {
				t.Fatalf("a forged tokens attribute was sent")
			}
		}},
		{"the fixed fields are the Sync Controller's", nil, func(t *testing.T, _ map[string]string, r *v1alpha1.MountRequest) {
			if r.Secrets != "{}" || r.TargetPath != TargetPath || r.Permission != "420" {
				t.Fatalf("secrets %q target %q permission %q", r.Secrets, r.TargetPath, r.Permission)
			}
		}},
		{"current versions are sorted by id", func(in mountInput) mountInput {
			in.Versions = map[string]string{"b": "2", "a": "1"}
			return in
		}, func(t *testing.T, _ map[string]string, r *v1alpha1.MountRequest) {
			v := r.CurrentObjectVersion
			if len(v) != 2 || v[0].Id != "a" || v[0].Version != "1" || v[1].Id != "b" {
				t.Fatalf("versions %v", v)
			}
		}},
		{"nil parameters", func(in mountInput) mountInput { in.Params = nil; return in }, func(t *testing.T, a map[string]string, _ *v1alpha1.MountRequest) {
			if len(a) != 4 {
				t.Fatalf("attributes %v", a)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			if tt.in != nil {
				in = tt.in(in)
			}
			req, err := buildRequest(in)
			if err != nil {
				t.Fatal(err)
			}
			var attrs map[string]string
			if err := json.Unmarshal([]byte(req.Attributes), &attrs); err != nil {
				t.Fatalf("attributes are not a JSON object of strings: %v", err)
			}
			tt.check(t, attrs, req)
		})
	}
}

func file(path, contents string) *v1alpha1.File {
	return &v1alpha1.File{Path: path, Contents: []byte(contents)}
}

func TestReadResponse(t *testing.T) {
	ov := []*v1alpha1.ObjectVersion{{Id: "db/password", Version: "7"}}
	tests := []struct {
		name    string
		resp    *v1alpha1.MountResponse
		want    map[string]string
		wantErr error
		errHas  string
	}{
		{"files by path", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{file("db/password", "p-"+canary), file("user", "u")}},
			map[string]string{"db/password": "p-" + canary, "user": "u"}, nil, ""},
		{"a later file of the same path wins", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{file("a", "1"), file("a", "2")}},
			map[string]string{"a": "2"}, nil, ""},
		{"empty object versions are fine", &v1alpha1.MountResponse{ObjectVersion: []*v1alpha1.ObjectVersion{}, Files: []*v1alpha1.File{file("a", "1")}},
			map[string]string{"a": "1"}, nil, ""},
		{"an error code fails", &v1alpha1.MountResponse{ObjectVersion: ov, Error: &v1alpha1.Error{Code: "GRPCProviderError"}, Files: []*v1alpha1.File{file("a", canary)}},
			nil, nil, `error code "GRPCProviderError"`},
		{"no object versions fail, as in the driver", &v1alpha1.MountResponse{Files: []*v1alpha1.File{file("a", canary)}},
			nil, provider.ErrBadResponse, "no object versions"},
		{"no files: the plugin writes files itself", &v1alpha1.MountResponse{ObjectVersion: ov},
			nil, provider.ErrBadResponse, "returned no files"},
		{"an absolute path fails", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{file("/etc/passwd", canary)}},
			nil, provider.ErrBadResponse, "files[0]"},
		{"a '..' path fails", &v1alpha1.MountResponse{ObjectVersion: ov, Files: []*v1alpha1.File{file("a", "1"), file("../x", canary)}},
			nil, provider.ErrBadResponse, "files[1]"},
		{"a nil response fails", nil, nil, provider.ErrBadResponse, "empty Mount response"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := readResponse("acme", tt.resp)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %v, want one containing %q", err, tt.errHas)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v does not wrap %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), canary) {
					t.Fatalf("the error quotes a file's content")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.files) != len(tt.want) {
				t.Fatalf("files %d, want %d", len(m.files), len(tt.want))
			}
			for p, c := range tt.want {
				if string(m.files[p]) != c {
					t.Fatalf("file %s differs", p)
				}
			}
		})
	}
}

func TestMountedFile(t *testing.T) {
	m := mounted{files: map[string][]byte{"db/password": []byte("p-" + canary)}, versions: map[string]string{"db/password": "7"}}
	tests := []struct {
		name    string
		ref     provider.Ref
		want    string
		version string
		wantErr error
	}{
		{"a file by its path", provider.Ref{Key: "db/password"}, "p-" + canary, "7", nil},
		{"a file the plugin did not return", provider.Ref{Key: "other"}, "", "", provider.ErrNotFound},
		{"a version that is not a part", provider.Ref{Key: "db/password", Version: "3"}, "", "", provider.ErrInvalidConfig},
		{"metadata", provider.Ref{Key: "db/password", Metadata: true}, "", "", provider.ErrMetadataNotSupported},
		{"the certificate of a file that has none", provider.Ref{Key: "db/password", Version: provider.ClassPartCert}, "", "", errAny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := m.file("acme", "spc", tt.ref)
			if tt.wantErr != nil {
				if err == nil || (tt.wantErr != errAny && !errors.Is(err, tt.wantErr)) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), canary) {
					t.Fatalf("the error quotes a file's content")
				}
				return
			}
			if err != nil || string(v.Data) != tt.want || v.Version != tt.version {
				t.Fatalf("value (version %q) err %v", v.Version, err)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestValidateSpec(t *testing.T) {
	p := New(Options{Dir: t.TempDir()})
	class := func(name string, params map[string]string) provider.Store {
		return provider.Store{Kind: provider.ClassKind, Namespace: "ns", Name: "spc", Class: &provider.Class{Provider: name, Parameters: params, ServiceAccount: "sa"}}
	}
	tests := []struct {
		name   string
		store  provider.Store
		errHas string
	}{
		{"a plugin name", class("acme", map[string]string{"objects": "x"}), ""},
		{"digits, '-' and '_'", class("conjur_2-x", nil), ""},
		{"a name of 30 characters", class(strings.Repeat("a", 30), nil), ""},
		{"a name of 31 characters", class(strings.Repeat("a", 31), nil), "not a CSI provider plugin name"},
		{"a path", class("../acme", nil), "not a CSI provider plugin name"},
		{"a dot", class("acme.sock", nil), "not a CSI provider plugin name"},
		{"empty", class("", nil), "not a CSI provider plugin name"},
		{"a reserved parameter", class("acme", map[string]string{"csi.storage.k8s.io/serviceAccount.tokens": "x"}), "parameters.csi.storage.k8s.io/serviceAccount.tokens is reserved"},
		{"not a class", provider.Store{Kind: "SecretStore", Name: "s"}, "SecretProviderClasses only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.ValidateSpec(tt.store)
			if tt.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("error %v, want one containing %q", err, tt.errHas)
			}
		})
	}
}

func TestClassFile(t *testing.T) {
	p := New(Options{Dir: t.TempDir()})
	for _, tt := range []struct {
		file string
		ok   bool
	}{
		{"password", true}, {"db/password", true}, {"tls.crt", true},
		{"", false}, {"/abs", false}, {"../up", false}, {"a//b", false}, {"a/./b", false}, {`a\b`, false},
	} {
		o, err := p.ClassFile(nil, tt.file)
		if (err == nil) != tt.ok {
			t.Fatalf("ClassFile(%q) error %v, want ok %v", tt.file, err, tt.ok)
		}
		if tt.ok && (o.File != tt.file || o.Ref.Key != tt.file || o.CertRef.Version != provider.ClassPartCert || o.KeyRef.Version != provider.ClassPartKey) {
			t.Fatalf("ClassFile(%q) = %+v", tt.file, o)
		}
	}
	if objs, err := p.ClassObjects(map[string]string{"objects": "x"}); err != nil || len(objs) != 0 {
		t.Fatalf("ClassObjects = %v, %v", objs, err)
	}
}

// The Mount response is the plugin's input to keyferry: whatever it holds,
// reading it never panics and no error quotes a file's content.
func FuzzReadResponse(f *testing.F) {
	f.Add("db/password", []byte("secret"), "v1", "", "a", []byte("b"))
	f.Add("/abs", []byte("x"), "", "code", "../x", []byte("y"))
	f.Add("", []byte{}, "", "", "", []byte{0})
	f.Fuzz(func(t *testing.T, p1 string, c1 []byte, version, code, p2 string, c2 []byte) {
		contents := append([]byte(canary), c1...)
		resp := &v1alpha1.MountResponse{
			ObjectVersion: []*v1alpha1.ObjectVersion{{Id: p1, Version: version}},
			Files:         []*v1alpha1.File{{Path: p1, Contents: contents}, {Path: p2, Contents: c2}},
		}
		if code != "" {
			resp.Error = &v1alpha1.Error{Code: code}
		}
		m, err := readResponse("acme", resp)
		if err != nil {
			if strings.Contains(err.Error(), canary) && !strings.Contains(p1+p2+code, canary) {
				t.Fatalf("an error quotes a file's content: %v", err)
			}
			return
		}
		for p := range m.files {
			if !provider.ValidClassFilePath(p) {
				t.Fatalf("accepted path %q", p)
			}
		}
		_, _ = m.file("acme", "spc", provider.Ref{Key: p1, Version: provider.ClassPartKey})
	})
}

// Class parameters, provider names and sourcePaths are user input: checking
// them never panics, an accepted name is a plain socket file name and an
// accepted sourcePath a relative path that stays below the mount.
func FuzzValidateSpec(f *testing.F) {
	f.Add("acme", "objects", "x")
	f.Add("../x", "csi.storage.k8s.io/pod.name", "y")
	f.Fuzz(func(t *testing.T, name, key, value string) {
		p := New(Options{Dir: "/run/plugins"})
		if o, err := p.ClassFile(nil, value); err == nil && (o.File != value || strings.HasPrefix(value, "/") || strings.Contains("/"+value+"/", "/../")) {
			t.Fatalf("ClassFile accepted %q as %q", value, o.File)
		}
		st := provider.Store{Kind: provider.ClassKind, Name: "spc", Class: &provider.Class{Provider: name, Parameters: map[string]string{key: value}}}
		if err := p.ValidateSpec(st); err != nil {
			return
		}
		if strings.ContainsAny(name, "/.\\\x00") || name == "" {
			t.Fatalf("accepted provider %q", name)
		}
		if _, err := buildRequest(mountInput{Params: st.Class.Parameters}); err != nil {
			t.Fatalf("building the request: %v", err)
		}
	})
}
