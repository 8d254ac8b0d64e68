// Package secretsync is the SecretSync front-end: it serves the Secrets Store
// Sync Controller's API (secret-sync.x-k8s.io/v1alpha1 SecretSync, reading
// secrets-store.csi.x-k8s.io/v1 SecretProviderClass) the way the Azure Key
// Vault Secret Store extension does, on keyferry's engine.
//
// Compile turns a SecretSync into an engine.Plan (a pure step) with the
// SecretSync's own rules (Secret type, reserved labels and annotations,
// data mapping, required keys); the files a SecretProviderClass provides,
// and how each is read, come from the provider that serves the class
// (provider.ClassProvider; azurekv for provider azure). The plan's sources
// read through a store of kind SecretProviderClass, which the engine
// resolves. The Reconciler decides when a sync is due (spec or
// SecretProviderClass change, forceSynchronization, the rotation poll
// interval), checks that the target Secret belongs to the SecretSync, runs
// the engine and reports the result in the SecretSync's status and Events.
package secretsync

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	spcv1 "github.com/keyferry/keyferry/apis/secretsstore/v1"
	ssv1 "github.com/keyferry/keyferry/apis/secretsync/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
)

// Metadata the controller puts on the Secrets it writes, as the Secrets Store
// Sync Controller does: a label and an annotation under its reserved prefix,
// and an ownerReference to the SecretSync.
const (
	LabelController      = "secrets-store.sync.x-k8s.io"
	AnnotationController = "secrets-store.sync.x-k8s.io"
	// AnnotationSecretProviderClass records the SecretProviderClass (UID and
	// generation) the Secret was last written from, so that a change made
	// while keyferry was not running is noticed without fetching.
	AnnotationSecretProviderClass = "keyferry.io/secretproviderclass"
)

// reservedPrefix is the prefix of the label and annotation keys reserved
// for the controller.
const reservedPrefix = "secrets-store.sync.x-k8s.io"

// allowedTypes are the Secret types a SecretSync may write: those the Secrets
// Store Sync Controller's admission policy allows. Service account tokens are
// never written.
var allowedTypes = map[corev1.SecretType]bool{
	corev1.SecretTypeOpaque:           true,
	corev1.SecretTypeBasicAuth:        true,
	corev1.SecretTypeDockercfg:        true,
	corev1.SecretTypeDockerConfigJson: true,
	corev1.SecretTypeSSHAuth:          true,
	corev1.SecretTypeTLS:              true,
	corev1.SecretTypeBootstrapToken:   true,
}

// requiredKeys are the keys the API server requires for a Secret type; each
// inner list needs one of its keys.
var requiredKeys = map[corev1.SecretType][][]string{
	corev1.SecretTypeTLS:              {{corev1.TLSCertKey}, {corev1.TLSPrivateKeyKey}},
	corev1.SecretTypeBasicAuth:        {{corev1.BasicAuthUsernameKey, corev1.BasicAuthPasswordKey}},
	corev1.SecretTypeSSHAuth:          {{corev1.SSHAuthPrivateKey}},
	corev1.SecretTypeDockercfg:        {{corev1.DockerConfigKey}},
	corev1.SecretTypeDockerConfigJson: {{corev1.DockerConfigJsonKey}},
}

// failureKind says what a failure is about; with the phase (create or
// update) it gives the SecretSync's condition reason (see reasonFor).
type failureKind int

const (
	kindInternal   failureKind = iota // ControllerInternalError
	kindInput                         // UserInputValidationFailed
	kindSPC                           // ControllerSpcError
	kindLabel                         // Create/UpdateFailedInvalidLabel
	kindAnnotation                    // Create/UpdateFailedInvalidAnnotation
	kindProvider                      // Create/UpdateFailedProviderError
	kindPatch                         // SecretPatchFailedUnknownError
)

// Error is a failed sync step, with what it is about. Its message never
// contains a secret value.
type Error struct {
	Kind failureKind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

func failf(kind failureKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, args...)}
}

// SecretType is the type of the Secret a SecretSync writes (Opaque when
// unset, as the CRD defaults it).
func SecretType(ss *ssv1.SecretSync) corev1.SecretType {
	t := strings.TrimSpace(ss.Spec.SecretObject.Type)
	if t == "" {
		return corev1.SecretTypeOpaque
	}
	return corev1.SecretType(t)
}

// Compile turns a SecretSync and the SecretProviderClass it names into a
// plan; classes serves the class (provider.Registry.Class). It does no I/O;
// its errors are *Error and say which field is wrong.
func Compile(ss *ssv1.SecretSync, spc *spcv1.SecretProviderClass, classes *provider.Registry) (engine.Plan, error) {
	for _, check := range []func(*ssv1.SecretSync) error{
		secretTypeIsAllowed,
		labelsAreNotReserved,
		annotationsAreNotReserved,
		dataIsValid,
		requiredKeysArePresent,
	} {
		if err := check(ss); err != nil {
			return engine.Plan{}, err
		}
	}
	files, resolve, err := classFiles(spc, classes)
	if err != nil {
		return engine.Plan{}, err
	}

	typ := SecretType(ss)
	so := ss.Spec.SecretObject
	owner := engine.Owner{
		APIVersion: ssv1.GroupVersion.String(), Kind: Kind,
		Namespace: ss.Namespace, Name: ss.Name, UID: ss.UID,
	}
	plan := engine.Plan{
		Owner: owner,
		Target: engine.Target{
			Name:              ss.Name,
			Type:              typ,
			Labels:            withEntry(so.Labels, LabelController, ""),
			Annotations:       withEntry(withEntry(so.Annotations, AnnotationController, ""), AnnotationSecretProviderClass, spcFingerprint(spc)),
			CreationPolicy:    esv1.CreatePolicyOwner,
			DeletionPolicy:    esv1.DeletionPolicyRetain,
			ManagedBy:         owner.Ref().ManagedBy(),
			SetOwnerReference: true,
		},
	}
	store := engine.StoreRef{Kind: provider.ClassKind, Name: spc.Name, ServiceAccount: ss.Spec.ServiceAccountName}
	for i, d := range so.Data {
		path, key := strings.TrimSpace(d.SourcePath), strings.TrimSpace(d.TargetKey)
		f, ok := files[path]
		if !ok && resolve != nil {
			if f, err = resolve.ClassFile(spc.Spec.Parameters, path); err != nil {
				return engine.Plan{}, failf(kindInput, "spec.secretObject.data[%d].sourcePath: %v", i, err)
			}
			ok = true
		}
		if !ok {
			return engine.Plan{}, failf(kindInput, "spec.secretObject.data[%d].sourcePath %q is not an object of SecretProviderClass %q (it provides %s)", i, path, spc.Name, listFiles(files))
		}
		// A kubernetes.io/tls Secret takes the certificates and the private
		// key of the file's content, as the Secrets Store Sync Controller
		// splits them.
		ref := f.Ref
		if typ == corev1.SecretTypeTLS {
			switch key {
			case corev1.TLSCertKey:
				ref = f.CertRef
			case corev1.TLSPrivateKeyKey:
				ref = f.KeyRef
			}
		}
		plan.Sources = append(plan.Sources, engine.Source{Store: store, Data: &engine.DataSource{SecretKey: key, Ref: ref}})
	}
	return plan, nil
}

func secretTypeIsAllowed(ss *ssv1.SecretSync) error {
	t := SecretType(ss)
	if !allowedTypes[t] {
		return failf(kindInput, "spec.secretObject.type %q is not allowed: use Opaque, kubernetes.io/basic-auth, kubernetes.io/dockercfg, kubernetes.io/dockerconfigjson, kubernetes.io/ssh-auth, kubernetes.io/tls or bootstrap.kubernetes.io/token", t)
	}
	return nil
}

func labelsAreNotReserved(ss *ssv1.SecretSync) error {
	for _, k := range sortedKeys(ss.Spec.SecretObject.Labels) {
		if strings.HasPrefix(k, reservedPrefix) {
			return failf(kindLabel, "spec.secretObject.labels: %q is reserved for the controller", k)
		}
	}
	return nil
}

func annotationsAreNotReserved(ss *ssv1.SecretSync) error {
	for _, k := range sortedKeys(ss.Spec.SecretObject.Annotations) {
		if strings.HasPrefix(k, reservedPrefix) {
			return failf(kindAnnotation, "spec.secretObject.annotations: %q is reserved for the controller", k)
		}
	}
	return nil
}

func dataIsValid(ss *ssv1.SecretSync) error {
	data := ss.Spec.SecretObject.Data
	if len(data) == 0 {
		return failf(kindInput, "spec.secretObject.data is empty: map at least one sourcePath to a targetKey")
	}
	seen := map[string]int{}
	for i, d := range data {
		path, key := strings.TrimSpace(d.SourcePath), strings.TrimSpace(d.TargetKey)
		switch {
		case path == "":
			return failf(kindInput, "spec.secretObject.data[%d].sourcePath is empty", i)
		case key == "":
			return failf(kindInput, "spec.secretObject.data[%d].targetKey is empty", i)
		case !values.ValidKey(key):
			return failf(kindInput, "spec.secretObject.data[%d].targetKey %q is not a valid Secret key (letters, digits, '-', '_', '.')", i, key)
		}
		if j, dup := seen[key]; dup {
			return failf(kindInput, "spec.secretObject.data[%d] and [%d] both write targetKey %q", j, i, key)
		}
		seen[key] = i
	}
	return nil
}

func requiredKeysArePresent(ss *ssv1.SecretSync) error {
	t := SecretType(ss)
	keys := map[string]bool{}
	for _, d := range ss.Spec.SecretObject.Data {
		keys[strings.TrimSpace(d.TargetKey)] = true
	}
	for _, oneOf := range requiredKeys[t] {
		found := false
		for _, k := range oneOf {
			found = found || keys[k]
		}
		if !found {
			return failf(kindInput, "a Secret of type %s needs the targetKey %s", t, strings.Join(oneOf, " or "))
		}
	}
	return nil
}

// spcFingerprint identifies the SecretProviderClass a Secret was written
// from.
func spcFingerprint(spc *spcv1.SecretProviderClass) string {
	return string(spc.UID) + "/" + strconv.FormatInt(spc.Generation, 10)
}

// classFiles returns the files the SecretProviderClass provides, by name,
// from the provider that serves its spec.provider, and that provider when
// it resolves files its parameters do not list (provider.ClassFileResolver:
// a CSI provider plugin).
func classFiles(spc *spcv1.SecretProviderClass, classes *provider.Registry) (map[string]provider.ClassObject, provider.ClassFileResolver, error) {
	class := strings.TrimSpace(string(spc.Spec.Provider))
	_, cp, ok := classes.Class(class)
	if !ok {
		return nil, nil, &Error{Kind: kindSPC, Err: classes.UnsupportedClass(spc.Name, class)}
	}
	objs, err := cp.ClassObjects(spc.Spec.Parameters)
	if err != nil {
		return nil, nil, failf(kindSPC, "SecretProviderClass %q: %v", spc.Name, err)
	}
	files := make(map[string]provider.ClassObject, len(objs))
	for _, o := range objs {
		files[o.File] = o
	}
	resolve, _ := cp.(provider.ClassFileResolver)
	return files, resolve, nil
}

func listFiles(files map[string]provider.ClassObject) string {
	names := make([]string, 0, len(files))
	for f := range files {
		names = append(names, strconv.Quote(f))
	}
	sort.Strings(names)
	if len(names) > 10 {
		names = append(names[:10], fmt.Sprintf("and %d more", len(names)-10))
	}
	return strings.Join(names, ", ")
}

func withEntry(m map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for key, val := range m {
		out[key] = val
	}
	out[k] = v
	return out
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func ptr[T any](v T) *T { return &v }
