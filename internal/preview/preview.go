// Package preview computes, offline, the Secret an ExternalSecret (or a
// ClusterExternalSecret, or a PushSecret's template) produces from values
// given as files: the engine of `keyferry render`. It compiles manifests
// and renders templates with the operator's own code (the ExternalSecret
// compiler, engine.Preview and the render sandbox with its default
// limits); nothing is fetched and no cluster is contacted.
package preview

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	yamlv3 "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/controller/externalsecret"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/render"
)

// Options are the inputs of Render: file names and how to read them.
type Options struct {
	// Manifests are files (- for stdin) with ExternalSecrets,
	// ClusterExternalSecrets or PushSecrets; other kinds are skipped.
	Manifests []string
	// Values are YAML (1.2) or JSON files mapping each key the template
	// sees to its value as text (a structured value is given as JSON).
	Values []string
	// SecretData are YAML or JSON files mapping keys to base64 values, as
	// a Secret's data (esoctl's --source-secret-data-file).
	SecretData []string
	// FromDirs are directories with one file per key.
	FromDirs []string
	// ConfigMaps and Secrets are files with the objects templateFrom names.
	ConfigMaps, Secrets []string
	// Namespace is the namespace of objects that name none, and of the
	// ExternalSecret a ClusterExternalSecret creates.
	Namespace string
	// Name, when set, renders only the object of that name.
	Name string
	// Decoded prints values that are UTF-8 text under stringData.
	Decoded bool
}

// Render renders every selected object of o.Manifests and returns the
// Secrets as a YAML stream, one document each.
func Render(ctx context.Context, o Options) ([]byte, error) {
	if o.Namespace == "" {
		o.Namespace = metav1.NamespaceDefault
	}
	data, err := loadValues(o)
	if err != nil {
		return nil, err
	}
	reader := &fileReader{objects: map[string]client.Object{}}
	for _, f := range o.ConfigMaps {
		if err := reader.load(f, "ConfigMap"); err != nil {
			return nil, err
		}
	}
	for _, f := range o.Secrets {
		if err := reader.load(f, "Secret"); err != nil {
			return nil, err
		}
	}
	var targets []renderTarget
	for _, f := range o.Manifests {
		more, err := readTargets(f, o.Namespace)
		if err != nil {
			return nil, err
		}
		targets = append(targets, more...)
	}
	const kinds = "ExternalSecret, ClusterExternalSecret or PushSecret"
	if o.Name != "" {
		var sel []renderTarget
		for _, t := range targets {
			if t.es.Name == o.Name || (t.push != nil && t.push.Name == o.Name) {
				sel = append(sel, t)
			}
		}
		if len(sel) == 0 {
			return nil, fmt.Errorf("no %s named %q in %s", kinds, o.Name, strings.Join(o.Manifests, ", "))
		}
		targets = sel
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("no %s in %s", kinds, strings.Join(o.Manifests, ", "))
	}
	// One sandbox with the operator's default limits, as in a sync.
	e := &engine.Engine{APIReader: reader, Templates: render.NewSandbox(render.Limits{})}
	var out bytes.Buffer
	for i, t := range targets {
		s, err := renderOne(ctx, e, t, data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.what, err)
		}
		doc, err := secretYAML(s, o.Decoded)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.what, err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		if t.push != nil {
			fmt.Fprintf(&out, "# %s: the keys it pushes (spec.data and spec.dataTo select from them)\n", t.what)
		}
		out.Write(doc)
	}
	return out.Bytes(), nil
}

// renderOne returns the Secret one target produces from data.
func renderOne(ctx context.Context, e *engine.Engine, t renderTarget, data map[string][]byte) (*corev1.Secret, error) {
	if t.push != nil {
		return previewPush(ctx, e, t, data)
	}
	plan, err := externalsecret.Compile(t.es)
	if err != nil {
		return nil, err
	}
	if err := checkDataKeys(t.es, data); err != nil {
		return nil, err
	}
	return e.Preview(ctx, plan, data)
}

// checkDataKeys fails when a spec.data entry has no value: the template
// would fail on it, or the Secret would lack it, for a reason that is not
// the template's.
func checkDataKeys(es *esv1.ExternalSecret, data map[string][]byte) error {
	var missing []string
	for _, d := range es.Spec.Data {
		if _, ok := data[d.SecretKey]; !ok {
			missing = append(missing, d.SecretKey)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no value for spec.data secretKey %s: give each in --values, --secret-data or --from-dir", quoteAll(missing))
	}
	return nil
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}

// loadValues reads the values of every --values, --secret-data and
// --from-dir source; a key given twice is an error.
func loadValues(o Options) (map[string][]byte, error) {
	data := map[string][]byte{}
	put := func(src, k string, v []byte) error {
		if _, dup := data[k]; dup {
			return fmt.Errorf("%s: key %q is given more than once", src, k)
		}
		data[k] = v
		return nil
	}
	for _, f := range o.Values {
		b, err := readFile(f)
		if err != nil {
			return nil, err
		}
		// YAML 1.2, so that keys and values such as "on" or "y" stay text.
		var m map[string]any
		if err := yamlv3.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: not a YAML or JSON map of keys to values: %w", f, err)
		}
		for _, k := range sortedKeys(m) {
			v, err := valueText(m[k])
			if err != nil {
				return nil, fmt.Errorf("%s: key %q: %w", f, k, err)
			}
			if err := put(f, k, v); err != nil {
				return nil, err
			}
		}
	}
	for _, f := range o.SecretData {
		b, err := readFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]string
		if err := yamlv3.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%s: not a YAML or JSON map of keys to base64 values: %w", f, err)
		}
		for _, k := range sortedKeys(m) {
			v, err := base64.StdEncoding.DecodeString(strings.TrimSpace(m[k]))
			if err != nil {
				return nil, fmt.Errorf("%s: key %q: the value is not base64", f, k)
			}
			if err := put(f, k, v); err != nil {
				return nil, err
			}
		}
	}
	for _, dir := range o.FromDirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("reading --from-dir: %w", err)
		}
		for _, ent := range entries {
			// "..data" and "..2024_..." are the bookkeeping of a mounted
			// Secret or ConfigMap volume, not keys.
			if strings.HasPrefix(ent.Name(), "..") {
				continue
			}
			p := filepath.Join(dir, ent.Name())
			st, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("reading --from-dir: %w", err)
			}
			if st.IsDir() {
				continue
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("reading --from-dir: %w", err)
			}
			if err := put(dir, ent.Name(), b); err != nil {
				return nil, err
			}
		}
	}
	return data, nil
}

// valueText is a --values entry as the template sees it: text as it is,
// anything else (a number, a map) as JSON, as a provider returns a
// structured value.
func valueText(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return []byte(x), nil
	case nil:
		return nil, errors.New("the value is empty (null)")
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, fmt.Errorf("the value cannot be encoded as JSON: %w", err)
		}
		return b, nil
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func readFile(name string) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return nil, fmt.Errorf("reading stdin: %w", err)
		}
		return b, nil
	}
	return os.ReadFile(name)
}

// documents reads a file (- for stdin) and splits it into its documents.
func documents(name string) ([][]byte, error) {
	b, err := readFile(name)
	if err != nil {
		return nil, err
	}
	return splitDocuments(name, b)
}

// splitDocuments splits a YAML (or JSON) stream into its documents,
// skipping empty ones.
func splitDocuments(name string, b []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			docs = append(docs, doc)
		}
	}
}

// renderTarget is one object to render: an ExternalSecret, or the
// ExternalSecret-shaped view of a ClusterExternalSecret or a PushSecret.
type renderTarget struct {
	// what names the object in errors, e.g. "ExternalSecret ns/name".
	what string
	es   *esv1.ExternalSecret
	// push is set for a PushSecret: the output is the Secret as pushed.
	push *esv1alpha1.PushSecret
}

// readTargets returns what a manifest file asks to render: its
// ExternalSecrets, an ExternalSecret for each ClusterExternalSecret (as it
// would be created in namespace), and its PushSecrets. Other kinds are
// skipped; unknown fields are an error, as with kubectl's strict field
// validation.
func readTargets(name, namespace string) ([]renderTarget, error) {
	docs, err := documents(name)
	if err != nil {
		return nil, err
	}
	return parseTargets(name, docs, namespace)
}

func parseTargets(name string, docs [][]byte, namespace string) ([]renderTarget, error) {
	var out []renderTarget
	for i, doc := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
		switch {
		case tm.APIVersion == esv1.GroupVersion.String() && tm.Kind == "ExternalSecret":
			es := &esv1.ExternalSecret{}
			if err := yaml.UnmarshalStrict(doc, es); err != nil {
				return nil, fmt.Errorf("%s: document %d (ExternalSecret): %w", name, i+1, err)
			}
			if es.Namespace == "" {
				es.Namespace = namespace
			}
			out = append(out, renderTarget{what: "ExternalSecret " + es.Namespace + "/" + es.Name, es: es})
		case tm.APIVersion == esv1.GroupVersion.String() && tm.Kind == "ClusterExternalSecret":
			ces := &esv1.ClusterExternalSecret{}
			if err := yaml.UnmarshalStrict(doc, ces); err != nil {
				return nil, fmt.Errorf("%s: document %d (ClusterExternalSecret): %w", name, i+1, err)
			}
			es := &esv1.ExternalSecret{
				ObjectMeta: metav1.ObjectMeta{Name: ces.Spec.ExternalSecretName, Namespace: namespace,
					Labels: ces.Spec.ExternalSecretMetadata.Labels, Annotations: ces.Spec.ExternalSecretMetadata.Annotations},
				Spec: ces.Spec.ExternalSecretSpec,
			}
			if es.Name == "" {
				es.Name = ces.Name
			}
			out = append(out, renderTarget{what: "ClusterExternalSecret " + ces.Name + " (ExternalSecret " + es.Namespace + "/" + es.Name + ")", es: es})
		case tm.APIVersion == esv1alpha1.GroupVersion.String() && tm.Kind == "PushSecret":
			ps := &esv1alpha1.PushSecret{}
			if err := yaml.UnmarshalStrict(doc, ps); err != nil {
				return nil, fmt.Errorf("%s: document %d (PushSecret): %w", name, i+1, err)
			}
			if ps.Namespace == "" {
				ps.Namespace = namespace
			}
			out = append(out, renderTarget{what: "PushSecret " + ps.Namespace + "/" + ps.Name, es: pushView(ps), push: ps})
		}
	}
	return out, nil
}

// pushView is the ExternalSecret whose template is a PushSecret's: its
// output is the Secret whose keys the PushSecret pushes (named after the
// selected Secret). Compile checks the template as for an ExternalSecret.
func pushView(ps *esv1alpha1.PushSecret) *esv1.ExternalSecret {
	name := ps.Name
	if sel := ps.Spec.Selector.Secret; sel != nil && sel.Name != "" {
		name = sel.Name
	}
	return &esv1.ExternalSecret{
		ObjectMeta: metav1.ObjectMeta{Name: ps.Name, Namespace: ps.Namespace},
		Spec: esv1.ExternalSecretSpec{
			Target: esv1.ExternalSecretTarget{Name: name, Template: ps.Spec.Template},
		},
	}
}

// previewPush returns the Secret a PushSecret pushes keys from: the
// selected Secret's data (data) through the PushSecret's template. Every
// spec.data[].match.secretKey must be one of its keys.
func previewPush(ctx context.Context, e *engine.Engine, t renderTarget, data map[string][]byte) (*corev1.Secret, error) {
	ps := t.push
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: t.es.Spec.Target.Name, Namespace: ps.Namespace},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	if ps.Spec.Template != nil {
		plan, err := externalsecret.Compile(t.es)
		if err != nil {
			return nil, err
		}
		if s, err = e.Preview(ctx, plan, data); err != nil {
			return nil, err
		}
		// What is pushed is the data; keyferry's bookkeeping of the
		// Secrets it writes does not apply.
		s.OwnerReferences = nil
		delete(s.Labels, engine.LabelManaged)
		delete(s.Annotations, engine.AnnotationDataHash)
		delete(s.Annotations, engine.AnnotationOwner)
	}
	var missing []string
	for _, d := range ps.Spec.Data {
		if k := d.Match.SecretKey; k != "" {
			if _, ok := s.Data[k]; !ok {
				missing = append(missing, k)
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("spec.data match.secretKey %s: not a key of the Secret to push (the selected Secret's data, through spec.template)", quoteAll(missing))
	}
	return s, nil
}

// secretYAML is a Secret as a manifest, without the fields the API server
// fills in; with decoded, values that are UTF-8 text are under stringData.
func secretYAML(s *corev1.Secret, decoded bool) ([]byte, error) {
	if decoded {
		s = s.DeepCopy()
		for k, v := range s.Data {
			if utf8.Valid(v) {
				if s.StringData == nil {
					s.StringData = map[string]string{}
				}
				s.StringData[k] = string(v)
				delete(s.Data, k)
			}
		}
		if len(s.Data) == 0 {
			s.Data = nil
		}
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(s)
	if err != nil {
		return nil, fmt.Errorf("encoding the Secret: %w", err)
	}
	u["apiVersion"], u["kind"] = "v1", "Secret"
	if md, ok := u["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	b, err := yaml.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("encoding the Secret: %w", err)
	}
	return b, nil
}

// fileReader is a client.Reader over ConfigMaps and Secrets read from
// files: what templateFrom reads, offline.
type fileReader struct {
	objects map[string]client.Object // kind/namespace/name
}

func (r *fileReader) load(name, kind string) error {
	docs, err := documents(name)
	if err != nil {
		return err
	}
	n := 0
	for i, doc := range docs {
		var obj client.Object
		switch kind {
		case "ConfigMap":
			obj = &corev1.ConfigMap{}
		default:
			obj = &corev1.Secret{}
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
		if tm.Kind != kind {
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return fmt.Errorf("%s: document %d (%s): %w", name, i+1, kind, err)
		}
		if s, ok := obj.(*corev1.Secret); ok {
			// The API server folds stringData into data.
			for k, v := range s.StringData {
				if s.Data == nil {
					s.Data = map[string][]byte{}
				}
				s.Data[k] = []byte(v)
			}
		}
		// An object without a namespace serves every namespace.
		r.objects[kind+"/"+obj.GetNamespace()+"/"+obj.GetName()] = obj
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s: no %s in the file", name, kind)
	}
	return nil
}

// Get copies the named ConfigMap or Secret into obj.
func (r *fileReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	var kind, hint string
	switch obj.(type) {
	case *corev1.ConfigMap:
		kind, hint = "ConfigMap", "--template-from-config-map"
	case *corev1.Secret:
		kind, hint = "Secret", "--template-from-secret"
	default:
		return fmt.Errorf("keyferry render reads only ConfigMaps and Secrets, not %T", obj)
	}
	src, ok := r.objects[kind+"/"+key.Namespace+"/"+key.Name]
	if !ok {
		src, ok = r.objects[kind+"//"+key.Name]
	}
	if !ok {
		return fmt.Errorf("%s %s/%s was not given (give it with %s)", kind, key.Namespace, key.Name, hint)
	}
	switch dst := obj.(type) {
	case *corev1.ConfigMap:
		src.(*corev1.ConfigMap).DeepCopyInto(dst)
	case *corev1.Secret:
		src.(*corev1.Secret).DeepCopyInto(dst)
	}
	return nil
}

// List is not used by templateFrom.
func (r *fileReader) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return errors.New("keyferry render does not list objects")
}
