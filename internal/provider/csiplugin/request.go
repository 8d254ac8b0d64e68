// This file builds a Mount request the way the Secrets Store Sync
// Controller builds it (which mimics the CSI driver's NodePublishVolume),
// and reads a Mount response into files. Both are pure functions.

package csiplugin

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/secrets-store-csi-driver/provider/v1alpha1"

	"github.com/keyferry/keyferry/internal/provider"
)

// The attributes the CSI driver adds to a class's parameters (the
// kubelet's volume context, https://kubernetes-csi.github.io/docs/pod-info.html
// and token-requests.html); the Sync Controller adds the same.
const (
	reservedAttributePrefix  = "csi.storage.k8s.io/"
	attrPodName              = "csi.storage.k8s.io/pod.name"
	attrPodNamespace         = "csi.storage.k8s.io/pod.namespace"
	attrPodUID               = "csi.storage.k8s.io/pod.uid"
	attrServiceAccountName   = "csi.storage.k8s.io/serviceAccount.name"
	attrServiceAccountTokens = "csi.storage.k8s.io/serviceAccount.tokens" //nolint:gosec // an attribute name, not a credential
)

// TargetPath is the target_path of every Mount: no volume is mounted, and
// a plugin returns the files instead of writing them (the Sync Controller
// sends the same path).
const TargetPath = "/mnt/secrets-store"

// filePermission is the permission sent (JSON of the file mode, as the
// driver sends it): 0644.
const filePermission os.FileMode = 0o644

// maxErrorText bounds the text of a plugin's error that keyferry repeats.
const maxErrorText = 512

// Token is one ServiceAccount token sent to a plugin.
type Token struct {
	Token   string
	Expires time.Time
}

// mountInput is what one Mount request is built from.
type mountInput struct {
	// Params are the class's parameters.
	Params map[string]string
	// PodName and PodUID are keyferry's pod.
	PodName, PodUID string
	// Namespace and ServiceAccount are the SecretSync's.
	Namespace, ServiceAccount string
	// Tokens are the ServiceAccount's tokens by audience.
	Tokens map[string]Token
	// Versions are the object versions of the previous Mount, by id.
	Versions map[string]string
}

// buildRequest returns the Mount request of in: attributes are the
// parameters plus the pod and ServiceAccount attributes (which override any
// parameter of the same name), secrets is an empty JSON object (a
// SecretSync has no nodePublishSecretRef), current_object_version lists
// Versions sorted by id.
func buildRequest(in mountInput) (*v1alpha1.MountRequest, error) {
	attrs := maps.Clone(in.Params)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs[attrPodName] = in.PodName
	attrs[attrPodUID] = in.PodUID
	attrs[attrPodNamespace] = in.Namespace
	attrs[attrServiceAccountName] = in.ServiceAccount
	delete(attrs, attrServiceAccountTokens)
	if len(in.Tokens) > 0 {
		tokens := make(map[string]authenticationv1.TokenRequestStatus, len(in.Tokens))
		for aud, t := range in.Tokens {
			tokens[aud] = authenticationv1.TokenRequestStatus{Token: t.Token, ExpirationTimestamp: metav1.NewTime(t.Expires)}
		}
		b, err := json.Marshal(tokens)
		if err != nil {
			return nil, fmt.Errorf("encoding the ServiceAccount tokens: %T", err)
		}
		attrs[attrServiceAccountTokens] = string(b)
	}
	attributes, err := json.Marshal(attrs)
	if err != nil {
		return nil, fmt.Errorf("encoding the attributes: %T", err)
	}
	perm, _ := json.Marshal(filePermission)
	req := &v1alpha1.MountRequest{
		Attributes: string(attributes),
		Secrets:    "{}",
		TargetPath: TargetPath,
		Permission: string(perm),
	}
	for _, id := range slices.Sorted(maps.Keys(in.Versions)) {
		req.CurrentObjectVersion = append(req.CurrentObjectVersion, &v1alpha1.ObjectVersion{Id: id, Version: in.Versions[id]})
	}
	return req, nil
}

// mounted is a Mount response as keyferry uses it.
type mounted struct {
	// files are the files' contents by path.
	files map[string][]byte
	// versions are the object versions by id.
	versions map[string]string
}

// readResponse checks a Mount response of plugin and returns its files
// and versions. A response that carries an error code, no object versions
// (the driver refuses those too), no files (a plugin that writes its files
// itself) or a file path the driver would refuse is an error; a later file
// of the same path replaces an earlier one. Errors name paths and codes,
// never contents.
func readResponse(plugin string, resp *v1alpha1.MountResponse) (mounted, error) {
	if resp == nil {
		return mounted{}, fmt.Errorf("%w: CSI provider plugin %q returned an empty Mount response", provider.ErrBadResponse, plugin)
	}
	if code := resp.GetError().GetCode(); code != "" {
		return mounted{}, &PluginError{Plugin: plugin, Code: clean(code)}
	}
	if resp.GetObjectVersion() == nil {
		return mounted{}, fmt.Errorf("%w: CSI provider plugin %q returned no object versions", provider.ErrBadResponse, plugin)
	}
	m := mounted{files: map[string][]byte{}, versions: map[string]string{}}
	for _, v := range resp.GetObjectVersion() {
		m.versions[v.GetId()] = v.GetVersion()
	}
	if len(resp.GetFiles()) == 0 {
		return mounted{}, fmt.Errorf("%w: CSI provider plugin %q returned no files: it writes them to the target path itself; configure the plugin to return files to the driver (for example --driver-write-secrets=true for azure, -write_secrets=false for gcp)", provider.ErrBadResponse, plugin)
	}
	for i, f := range resp.GetFiles() {
		if !provider.ValidClassFilePath(f.GetPath()) {
			return mounted{}, fmt.Errorf("%w: CSI provider plugin %q returned files[%d] with path %s, which is not a relative path without '.' or '..'", provider.ErrBadResponse, plugin, i, strconv.Quote(clean(f.GetPath())))
		}
		m.files[f.GetPath()] = f.GetContents()
	}
	return m, nil
}

// PluginError is a Mount response's error code.
type PluginError struct {
	Plugin string
	Code   string
}

func (e *PluginError) Error() string {
	return fmt.Sprintf("CSI provider plugin %q failed the Mount with error code %q", e.Plugin, e.Code)
}

// clean bounds a text the plugin chose and keeps it printable.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorText {
		s = strings.ToValidUTF8(s[:maxErrorText], "") + "..."
	}
	return s
}
