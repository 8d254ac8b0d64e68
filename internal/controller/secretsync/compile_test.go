package secretsync

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	spcv1 "github.com/keyferry/keyferry/apis/secretsstore/v1"
	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/azurekv"
)

const historyObjects = `array:
  - |
    objectName: my-secret
    objectType: secret
    objectVersionHistory: 2
`

// classes serves SecretProviderClasses with provider azure, as
// provider/all registers it.
func classes() *provider.Registry {
	reg := provider.NewRegistry()
	reg.Register(azurekv.Name, azurekv.New())
	reg.RegisterClass(azurekv.ClassName, azurekv.Name)
	return reg
}

func testSPC(mut ...func(*spcv1.SecretProviderClass)) *spcv1.SecretProviderClass {
	spc := &spcv1.SecretProviderClass{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "spc", UID: "spc-uid", Generation: 3},
		Spec: spcv1.SecretProviderClassSpec{
			Provider: "azure",
			Parameters: map[string]string{
				"clientID":     "11111111-2222-3333-4444-555555555555",
				"keyvaultName": "my-kv",
				"tenantID":     "66666666-7777-8888-9999-000000000000",
				"objects":      historyObjects,
			},
		},
	}
	for _, m := range mut {
		m(spc)
	}
	return spc
}

func testSS(mut ...func(*ssv1.SecretSync)) *ssv1.SecretSync {
	ss := &ssv1.SecretSync{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "sync", UID: "ss-uid", Generation: 1},
		Spec: ssv1.SecretSyncSpec{
			ServiceAccountName:      "sa",
			SecretProviderClassName: "spc",
			SecretObject: ssv1.SecretObject{
				Type: "Opaque",
				Data: []ssv1.SecretObjectData{
					{SourcePath: "my-secret/0", TargetKey: "my-secret-data-key0"},
					{SourcePath: "my-secret/1", TargetKey: "my-secret-data-key1"},
				},
			},
		},
	}
	for _, m := range mut {
		m(ss)
	}
	return ss
}

func withParams(kv ...string) func(*spcv1.SecretProviderClass) {
	return func(spc *spcv1.SecretProviderClass) {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(spc.Spec.Parameters, kv[i])
			} else {
				spc.Spec.Parameters[kv[i]] = kv[i+1]
			}
		}
	}
}

func withType(t string) func(*ssv1.SecretSync) {
	return func(ss *ssv1.SecretSync) { ss.Spec.SecretObject.Type = t }
}

func withData(pairs ...string) func(*ssv1.SecretSync) {
	return func(ss *ssv1.SecretSync) {
		ss.Spec.SecretObject.Data = nil
		for i := 0; i+1 < len(pairs); i += 2 {
			ss.Spec.SecretObject.Data = append(ss.Spec.SecretObject.Data, ssv1.SecretObjectData{SourcePath: pairs[i], TargetKey: pairs[i+1]})
		}
	}
}

func TestCompile(t *testing.T) {
	tests := []struct {
		name     string
		ss       *ssv1.SecretSync
		spc      *spcv1.SecretProviderClass
		wantKind failureKind
		wantErr  string
		// wantRefs are the sources' refs, by target key.
		wantRefs map[string]provider.Ref
	}{
		{
			name: "the extension's example: versions 0 and 1",
			ss:   testSS(), spc: testSPC(),
			wantRefs: map[string]provider.Ref{
				"my-secret-data-key0": {Key: "my-secret/0"},
				"my-secret-data-key1": {Key: "my-secret/1"},
			},
		},
		{
			name: "alias, pinned version, encoding",
			ss:   testSS(withData("db", "password")),
			spc: testSPC(withParams("objects", `array:
  - |
    objectName: db-password
    objectType: secret
    objectAlias: db
    objectVersion: abc123
    objectEncoding: base64
`)),
			wantRefs: map[string]provider.Ref{"password": {Key: "db"}},
		},
		{
			name:     "the alias hides the name",
			ss:       testSS(withData("db-password", "password")),
			spc:      testSPC(withParams("objects", "array:\n  - |\n    objectName: db-password\n    objectType: secret\n    objectAlias: db\n")),
			wantKind: kindInput, wantErr: `sourcePath "db-password" is not an object of SecretProviderClass "spc" (it provides "db")`,
		},
		{
			name: "kubernetes.io/tls splits the PEM bundle",
			ss:   testSS(withType("kubernetes.io/tls"), withData("cert", "tls.crt", "cert", "tls.key")),
			spc:  testSPC(withParams("objects", "array:\n  - |\n    objectName: cert\n    objectType: secret\n")),
			wantRefs: map[string]provider.Ref{
				"tls.crt": {Key: "cert/tls.crt"},
				"tls.key": {Key: "cert/tls.key"},
			},
		},
		{
			name:     "keys and certificates",
			ss:       testSS(withData("k", "pub", "c", "crt")),
			spc:      testSPC(withParams("objects", "array:\n  - objectName: k\n    objectType: key\n  - objectName: c\n    objectType: cert\n")),
			wantRefs: map[string]provider.Ref{"pub": {Key: "k"}, "crt": {Key: "c"}},
		},
		{
			name: "the type defaults to Opaque",
			ss:   testSS(withType("")), spc: testSPC(),
			wantRefs: map[string]provider.Ref{
				"my-secret-data-key0": {Key: "my-secret/0"},
				"my-secret-data-key1": {Key: "my-secret/1"},
			},
		},
		{name: "service account tokens are refused", ss: testSS(withType("kubernetes.io/service-account-token")), spc: testSPC(), wantKind: kindInput, wantErr: `spec.secretObject.type "kubernetes.io/service-account-token" is not allowed`},
		{name: "unknown types are refused", ss: testSS(withType("example.com/custom")), spc: testSPC(), wantKind: kindInput, wantErr: "is not allowed"},
		{name: "tls needs both keys", ss: testSS(withType("kubernetes.io/tls"), withData("my-secret/0", "tls.crt")), spc: testSPC(), wantKind: kindInput, wantErr: "needs the targetKey tls.key"},
		{name: "basic-auth needs a username or a password", ss: testSS(withType("kubernetes.io/basic-auth")), spc: testSPC(), wantKind: kindInput, wantErr: "needs the targetKey username or password"},
		{name: "reserved label", ss: testSS(func(ss *ssv1.SecretSync) {
			ss.Spec.SecretObject.Labels = map[string]string{"secrets-store.sync.x-k8s.io/x": "y"}
		}), spc: testSPC(), wantKind: kindLabel, wantErr: "is reserved for the controller"},
		{name: "reserved annotation", ss: testSS(func(ss *ssv1.SecretSync) {
			ss.Spec.SecretObject.Annotations = map[string]string{"secrets-store.sync.x-k8s.io": ""}
		}), spc: testSPC(), wantKind: kindAnnotation, wantErr: "is reserved for the controller"},
		{name: "no data", ss: testSS(withData()), spc: testSPC(), wantKind: kindInput, wantErr: "spec.secretObject.data is empty"},
		{name: "duplicate target key", ss: testSS(withData("my-secret/0", "k", "my-secret/1", "k")), spc: testSPC(), wantKind: kindInput, wantErr: `both write targetKey "k"`},
		{name: "invalid target key", ss: testSS(withData("my-secret/0", "a b")), spc: testSPC(), wantKind: kindInput, wantErr: "is not a valid Secret key"},
		{name: "version beyond the history", ss: testSS(withData("my-secret/2", "k")), spc: testSPC(), wantKind: kindInput, wantErr: `sourcePath "my-secret/2" is not an object`},
		{name: "no index without a history", ss: testSS(withData("my-secret", "k")), spc: testSPC(), wantKind: kindInput, wantErr: `sourcePath "my-secret" is not an object`},
		{name: "another provider", ss: testSS(), spc: testSPC(func(s *spcv1.SecretProviderClass) { s.Spec.Provider = "vault" }), wantKind: kindSPC, wantErr: `uses provider "vault": keyferry synchronizes SecretProviderClasses with provider azure only`},
		{name: "no provider", ss: testSS(), spc: testSPC(func(s *spcv1.SecretProviderClass) { s.Spec.Provider = "" }), wantKind: kindSPC, wantErr: "sets no spec.provider"},
		{name: "no vault", ss: testSS(), spc: testSPC(withParams("keyvaultName", "")), wantKind: kindSPC, wantErr: "parameters.keyvaultName is required"},
		{name: "bad vault name", ss: testSS(), spc: testSPC(withParams("keyvaultName", "no_underscores")), wantKind: kindSPC, wantErr: "is not a Key Vault name"},
		{name: "unknown cloud", ss: testSS(), spc: testSPC(withParams("cloudName", "Mars")), wantKind: kindSPC, wantErr: "parameters.cloudName"},
		{name: "pod identity", ss: testSS(), spc: testSPC(withParams("usePodIdentity", "true")), wantKind: kindSPC, wantErr: "AAD pod identity is not supported"},
		{name: "bad boolean", ss: testSS(), spc: testSPC(withParams("useVMManagedIdentity", "yes please")), wantKind: kindSPC, wantErr: "parameters.useVMManagedIdentity"},
		{name: "no objects", ss: testSS(), spc: testSPC(withParams("objects", "")), wantKind: kindSPC, wantErr: "objects is empty"},
		{name: "bad objects", ss: testSS(), spc: testSPC(withParams("objects", "array: [")), wantKind: kindSPC, wantErr: "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := Compile(tt.ss, tt.spc, classes())
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("Compile succeeded; want an error containing %q", tt.wantErr)
				}
				var e *Error
				if !errors.As(err, &e) || e.Kind != tt.wantKind {
					t.Fatalf("error %v has kind %v, want %v", err, kindOf(err), tt.wantKind)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			got := map[string]provider.Ref{}
			for _, s := range plan.Sources {
				if s.Data == nil {
					t.Fatalf("source %+v is not a data source", s)
				}
				if want := (engine.StoreRef{Kind: provider.ClassKind, Name: "spc", ServiceAccount: "sa"}); s.Store != want {
					t.Fatalf("source reads store %+v, want %+v", s.Store, want)
				}
				got[s.Data.SecretKey] = s.Data.Ref
			}
			if len(got) != len(tt.wantRefs) {
				t.Fatalf("refs %v, want %v", got, tt.wantRefs)
			}
			for k, want := range tt.wantRefs {
				if got[k] != want {
					t.Fatalf("key %q reads %+v, want %+v", k, got[k], want)
				}
			}
		})
	}
}

func TestCompileTarget(t *testing.T) {
	ss := testSS(func(ss *ssv1.SecretSync) {
		ss.Spec.SecretObject.Labels = map[string]string{"app": "web"}
		ss.Spec.SecretObject.Annotations = map[string]string{"note": "x"}
	})
	plan, err := Compile(ss, testSPC(), classes())
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	tg := plan.Target
	if tg.Name != "sync" || tg.Type != corev1.SecretTypeOpaque || !tg.SetOwnerReference || tg.CreationPolicy != esv1.CreatePolicyOwner || tg.DeletionPolicy != esv1.DeletionPolicyRetain {
		t.Fatalf("target %+v", tg)
	}
	// The writer recorded on the Secret (keyferry.io/owner): existing
	// Secrets carry this format, so it never changes.
	if tg.ManagedBy != "SecretSync/sync" {
		t.Fatalf("ManagedBy %q, want SecretSync/sync", tg.ManagedBy)
	}
	if v, ok := tg.Labels[LabelController]; !ok || v != "" || tg.Labels["app"] != "web" {
		t.Fatalf("labels %v", tg.Labels)
	}
	if v, ok := tg.Annotations[AnnotationController]; !ok || v != "" || tg.Annotations["note"] != "x" || tg.Annotations[AnnotationSecretProviderClass] != "spc-uid/3" {
		t.Fatalf("annotations %v", tg.Annotations)
	}
	if ss.Spec.SecretObject.Labels[LabelController] != "" || len(ss.Spec.SecretObject.Labels) != 1 {
		t.Fatalf("Compile changed the SecretSync's labels: %v", ss.Spec.SecretObject.Labels)
	}
	o := plan.Owner
	if o.APIVersion != "secret-sync.x-k8s.io/v1alpha1" || o.Kind != "SecretSync" || o.Name != "sync" || o.Namespace != "ns" || o.UID != "ss-uid" {
		t.Fatalf("owner %+v", o)
	}
}

func TestReasonFor(t *testing.T) {
	tests := []struct {
		kind       failureKind
		ph         phase
		wantReason string
		wantStatus metav1.ConditionStatus
	}{
		{kindProvider, phaseCreate, ssv1.ReasonCreateFailedProviderError, metav1.ConditionFalse},
		{kindProvider, phaseUpdate, ssv1.ReasonUpdateFailedProviderError, metav1.ConditionFalse},
		{kindLabel, phaseCreate, ssv1.ReasonCreateFailedInvalidLabel, metav1.ConditionFalse},
		{kindLabel, phaseUpdate, ssv1.ReasonUpdateFailedInvalidLabel, metav1.ConditionFalse},
		{kindAnnotation, phaseCreate, ssv1.ReasonCreateFailedInvalidAnnotation, metav1.ConditionFalse},
		{kindAnnotation, phaseUpdate, ssv1.ReasonUpdateFailedInvalidAnnotation, metav1.ConditionFalse},
		{kindInput, phaseUpdate, ssv1.ReasonUserInputValidationFailed, metav1.ConditionFalse},
		{kindSPC, phaseCreate, ssv1.ReasonControllerSpcError, metav1.ConditionFalse},
		{kindPatch, phaseCreate, ssv1.ReasonSecretPatchFailedUnknownError, metav1.ConditionUnknown},
		{kindInternal, phaseUpdate, ssv1.ReasonControllerInternalError, metav1.ConditionUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.wantReason, func(t *testing.T) {
			reason, status := reasonFor(tt.kind, tt.ph)
			if reason != tt.wantReason || status != tt.wantStatus {
				t.Fatalf("reasonFor = %s/%s, want %s/%s", reason, status, tt.wantReason, tt.wantStatus)
			}
		})
	}
}

func TestOwnershipChecks(t *testing.T) {
	ss := testSS()
	ref := metav1.OwnerReference{APIVersion: "secret-sync.x-k8s.io/v1alpha1", Kind: "SecretSync", Name: "sync", UID: "old-uid"}
	secret := func(labels, annotations map[string]string, refs ...metav1.OwnerReference) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sync", Labels: labels, Annotations: annotations, OwnerReferences: refs}}
	}
	mark := map[string]string{LabelController: ""}
	tests := []struct {
		name     string
		s        *corev1.Secret
		wantKind failureKind
		ok       bool
	}{
		{name: "written by the Secrets Store Sync Controller", s: secret(mark, mark, ref), ok: true},
		{name: "no label", s: secret(nil, mark, ref), wantKind: kindLabel},
		{name: "no annotation", s: secret(mark, nil, ref), wantKind: kindAnnotation},
		{name: "no owner", s: secret(mark, mark), wantKind: kindLabel},
		{name: "owned by another SecretSync", s: secret(mark, mark, metav1.OwnerReference{APIVersion: "secret-sync.x-k8s.io/v1alpha1", Kind: "SecretSync", Name: "other"}), wantKind: kindLabel},
		{name: "owned by a kind of the same name elsewhere", s: secret(mark, mark, metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "SecretSync", Name: "sync"}), wantKind: kindLabel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkOwnership(tt.s, ss)
			if tt.ok {
				if err != nil {
					t.Fatalf("checkOwnership: %v", err)
				}
				return
			}
			if err == nil || err.Kind != tt.wantKind {
				t.Fatalf("checkOwnership = %v, want kind %v", err, tt.wantKind)
			}
		})
	}
}

func TestSyncHash(t *testing.T) {
	ss, spc := testSS(), testSPC()
	base := syncHash("h", ss, spc)
	if base != syncHash("h", testSS(), testSPC()) {
		t.Fatalf("syncHash is not deterministic")
	}
	for name, other := range map[string]string{
		"content": syncHash("h2", ss, spc),
		"force":   syncHash("h", testSS(func(s *ssv1.SecretSync) { s.Spec.ForceSynchronization = "now" }), spc),
		"ss gen":  syncHash("h", testSS(func(s *ssv1.SecretSync) { s.Generation = 2 }), spc),
		"spc gen": syncHash("h", ss, testSPC(func(s *spcv1.SecretProviderClass) { s.Generation = 4 })),
		"spc uid": syncHash("h", ss, testSPC(func(s *spcv1.SecretProviderClass) { s.UID = "other" })),
		"ss uid":  syncHash("h", testSS(func(s *ssv1.SecretSync) { s.UID = "other" }), spc),
	} {
		if other == base {
			t.Errorf("syncHash ignores the %s", name)
		}
	}
}
