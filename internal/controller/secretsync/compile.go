// Package secretsync is the SecretSync front-end: it serves the Secrets Store
// Sync Controller's API (secret-sync.x-k8s.io/v1alpha1 SecretSync, reading
// secrets-store.csi.x-k8s.io/v1 SecretProviderClass) the way the Azure Key
// Vault Secret Store extension does, on keyferry's engine.
//
// Compile turns a SecretSync and its SecretProviderClass into an
// engine.Plan (a pure step). The plan's sources read through a store of kind
// SecretProviderClass, which NewResolver resolves into an azurekv store
// (vault, tenant, client ID, cloud, and workload identity with the
// SecretSync's ServiceAccount) and WrapAzureProvider serves with the Azure
// provider's object semantics (objectType, objectEncoding,
// objectVersionHistory). The Reconciler decides when a sync is due (spec or
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
	"github.com/keyferry/keyferry/internal/provider/azurekv"
)

// StoreKind is the kind of the stores SecretSync plans read through, in
// engine.StoreRef and provider.Store.
const StoreKind = "SecretProviderClass"

// ProviderAzure is the only SecretProviderClass provider keyferry serves.
const ProviderAzure = "azure"

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

// storeName is the name of a SecretProviderClass store: the class and the
// ServiceAccount whose identity reads through it, so that SecretSyncs using
// different ServiceAccounts never share a client. Kubernetes names never
// contain '/'.
func storeName(spc, serviceAccount string) string { return spc + "/" + serviceAccount }

func splitStoreName(name string) (spc, serviceAccount string, ok bool) {
	spc, serviceAccount, ok = strings.Cut(name, "/")
	return spc, serviceAccount, ok && spc != "" && serviceAccount != ""
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
// plan. It does no I/O; its errors are *Error and say which field is wrong.
func Compile(ss *ssv1.SecretSync, spc *spcv1.SecretProviderClass) (engine.Plan, error) {
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
	if err := providerIsAzure(spc); err != nil {
		return engine.Plan{}, err
	}
	if _, err := parseConnection(spc.Spec.Parameters); err != nil {
		return engine.Plan{}, failf(kindSPC, "SecretProviderClass %q: %v", spc.Name, err)
	}
	objs, err := ParseObjects(spc.Spec.Parameters["objects"])
	if err != nil {
		return engine.Plan{}, failf(kindSPC, "SecretProviderClass %q: %v", spc.Name, err)
	}
	files := objectFiles(objs)

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
	store := engine.StoreRef{Kind: StoreKind, Name: storeName(spc.Name, ss.Spec.ServiceAccountName)}
	for i, d := range so.Data {
		path, key := strings.TrimSpace(d.SourcePath), strings.TrimSpace(d.TargetKey)
		f, ok := files[path]
		if !ok {
			return engine.Plan{}, failf(kindInput, "spec.secretObject.data[%d].sourcePath %q is not an object of SecretProviderClass %q (it provides %s)", i, path, spc.Name, listFiles(files))
		}
		ref := objectRef{Type: f.obj.Type, Name: f.obj.Name, Version: f.obj.Version, Index: f.index, Encoding: f.obj.Encoding, Format: f.obj.Format}
		if typ == corev1.SecretTypeTLS {
			switch key {
			case corev1.TLSCertKey:
				ref.Part = partCert
			case corev1.TLSPrivateKeyKey:
				ref.Part = partKey
			}
		}
		plan.Sources = append(plan.Sources, engine.Source{Store: store, Data: &engine.DataSource{SecretKey: key, Ref: ref.ref()}})
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

func providerIsAzure(spc *spcv1.SecretProviderClass) error {
	p := strings.TrimSpace(string(spc.Spec.Provider))
	switch {
	case p == ProviderAzure:
		return nil
	case p == "":
		return failf(kindSPC, "SecretProviderClass %q sets no spec.provider: keyferry synchronizes SecretProviderClasses with provider azure", spc.Name)
	default:
		return failf(kindSPC, "SecretProviderClass %q uses provider %q: keyferry synchronizes SecretProviderClasses with provider azure only (for other stores, use an ExternalSecret)", spc.Name, p)
	}
}

// spcFingerprint identifies the SecretProviderClass a Secret was written
// from.
func spcFingerprint(spc *spcv1.SecretProviderClass) string {
	return string(spc.UID) + "/" + strconv.FormatInt(spc.Generation, 10)
}

// objectFile is what a sourcePath reads: an object, and which of its
// versions (index -1: the object's version or the latest).
type objectFile struct {
	obj   Object
	index int
}

// objectFiles maps the sourcePaths the objects provide to the objects. As
// when the Azure provider writes them as files, a later object with the same
// file name replaces an earlier one.
func objectFiles(objs []Object) map[string]objectFile {
	out := map[string]objectFile{}
	for _, o := range objs {
		if o.VersionHistory <= 1 {
			out[o.FileName()] = objectFile{obj: o, index: -1}
			continue
		}
		for i, f := range o.Files() {
			out[f] = objectFile{obj: o, index: i}
		}
	}
	return out
}

func listFiles(files map[string]objectFile) string {
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

// connection is how a SecretProviderClass with provider azure reaches its
// vault: the parameters of the Azure provider of the Secrets Store CSI
// driver that keyferry serves.
type connection struct {
	VaultName string
	Cloud     esv1.AzureEnvironmentType
	TenantID  string
	// ClientID of the identity: the workload identity's (clientID), or with
	// ManagedIdentity the user-assigned identity's (userAssignedIdentityID).
	ClientID        string
	ManagedIdentity bool
}

// parseConnection reads the connection parameters, as the Azure provider
// does: tenantID wins over the older tenantId; booleans parse like Go's
// strconv.ParseBool.
func parseConnection(params map[string]string) (connection, error) {
	get := func(k string) string { return strings.TrimSpace(params[k]) }
	var c connection
	c.VaultName = get("keyvaultName")
	if c.VaultName == "" {
		return c, fmt.Errorf("parameters.keyvaultName is required")
	}
	var err error
	if c.Cloud, err = azurekv.CloudFromName(get("cloudName")); err != nil {
		return c, fmt.Errorf("parameters.cloudName: %v", err)
	}
	if _, err := azurekv.VaultURLFromName(c.VaultName, c.Cloud); err != nil {
		return c, fmt.Errorf("parameters.keyvaultName: %v", err)
	}
	if get("cloudEnvFileName") != "" {
		return c, fmt.Errorf("parameters.cloudEnvFileName is not supported by keyferry (it names a file on the node)")
	}
	c.TenantID = get("tenantID")
	if c.TenantID == "" {
		c.TenantID = get("tenantId")
	}
	podIdentity, err := parseBool(get("usePodIdentity"))
	if err != nil {
		return c, fmt.Errorf("parameters.usePodIdentity: %v", err)
	}
	if podIdentity {
		return c, fmt.Errorf("parameters.usePodIdentity: AAD pod identity is not supported; use workload identity (clientID and the SecretSync's serviceAccountName)")
	}
	if c.ManagedIdentity, err = parseBool(get("useVMManagedIdentity")); err != nil {
		return c, fmt.Errorf("parameters.useVMManagedIdentity: %v", err)
	}
	if c.ManagedIdentity {
		c.ClientID = get("userAssignedIdentityID")
	} else {
		c.ClientID = get("clientID")
	}
	return c, nil
}

func parseBool(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", s)
	}
	return b, nil
}
