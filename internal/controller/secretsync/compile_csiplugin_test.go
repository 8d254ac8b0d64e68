package secretsync

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	spcv1 "github.com/keyferry/keyferry/apis/secretsstore/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/csiplugin"
)

// pluginClasses serves azure natively and every other provider through
// the CSI provider plugins, as provider/all registers them with
// --csi-provider-dir.
func pluginClasses() *provider.Registry {
	reg := classes()
	reg.Register(csiplugin.Name, csiplugin.New(csiplugin.Options{Dir: "/run/plugins"}))
	reg.RegisterAnyClass(csiplugin.Name)
	return reg
}

func acmeSPC(spc *spcv1.SecretProviderClass) {
	spc.Spec.Provider = "acme"
	spc.Spec.Parameters = map[string]string{"objects": "anything the plugin reads"}
}

// A class served by a CSI provider plugin provides whatever files the
// SecretSync maps: each sourcePath becomes a ref of that file, and a
// kubernetes.io/tls Secret reads the file's certificate and key parts.
func TestCompileThroughACSIProviderPlugin(t *testing.T) {
	tests := []struct {
		name     string
		reg      *provider.Registry
		spc      *spcv1.SecretProviderClass
		typ      string
		data     []string
		wantRefs []provider.Ref
		wantKind failureKind
		errHas   string
	}{
		{name: "each sourcePath is a file of the plugin", reg: pluginClasses(), spc: testSPC(acmeSPC),
			typ: "Opaque", data: []string{"db-user", "user", "db-password/1", "password"},
			wantRefs: []provider.Ref{{Key: "db-user"}, {Key: "db-password/1"}}},
		{name: "a tls Secret reads the parts of one file", reg: pluginClasses(), spc: testSPC(acmeSPC),
			typ: string(corev1.SecretTypeTLS), data: []string{"cert", corev1.TLSCertKey, "cert", corev1.TLSPrivateKeyKey},
			wantRefs: []provider.Ref{{Key: "cert", Version: provider.ClassPartCert}, {Key: "cert", Version: provider.ClassPartKey}}},
		{name: "a native provider still lists its files", reg: pluginClasses(), spc: testSPC(),
			typ: "Opaque", data: []string{"not-listed", "k"}, wantKind: kindInput, errHas: "is not an object of SecretProviderClass"},
		{name: "without plugins the provider is unsupported", reg: classes(), spc: testSPC(acmeSPC),
			typ: "Opaque", data: []string{"db-user", "user"}, wantKind: kindSPC, errHas: `uses provider "acme"`},
		{name: "a path a plugin cannot return", reg: pluginClasses(), spc: testSPC(acmeSPC),
			typ: "Opaque", data: []string{"../etc", "k"}, wantKind: kindInput, errHas: "is not a file path a CSI provider plugin can return"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Compile(testSS(withType(tt.typ), withData(tt.data...)), tt.spc, tt.reg)
			if tt.errHas != "" {
				var e *Error
				if !errors.As(err, &e) || e.Kind != tt.wantKind || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %v, want kind %d containing %q", err, tt.wantKind, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(plan.Sources) != len(tt.wantRefs) {
				t.Fatalf("%d sources", len(plan.Sources))
			}
			for i, s := range plan.Sources {
				if s.Store.Kind != provider.ClassKind || s.Store.Name != "spc" || s.Data.Ref != tt.wantRefs[i] {
					t.Fatalf("source %d: store %+v ref %+v, want %+v", i, s.Store, s.Data.Ref, tt.wantRefs[i])
				}
			}
		})
	}
}
