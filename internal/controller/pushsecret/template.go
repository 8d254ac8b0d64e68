package pushsecret

import (
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/render"
)

// PushTemplate is a checked spec.template: what the engine renders over the
// source Secret's data before a push (engine.RenderPush), and the type the
// pushed Secret gets (ESO sets the in-memory Secret's type to
// template.type, empty included).
type PushTemplate struct {
	engine.Template
	Type corev1.SecretType
}

// templateIsValid: spec.template uses engine v2, its templates parse, and
// each templateFrom entry names one source and a known target.
func templateIsValid(ps *esv1alpha1.PushSecret) string {
	if ps.Spec.Template == nil {
		return ""
	}
	if _, msg := compileTemplate(ps.Spec.Template); msg != "" {
		return msg
	}
	return ""
}

// compileTemplate turns spec.template into the engine's template, or says
// why it cannot. Items are in ESO's order of precedence, lowest first:
// templateFrom literals (ConfigMaps and Secrets are read at push time and
// come before them), then template.data, then labels and annotations.
func compileTemplate(tpl *esv1.ExternalSecretTemplate) (*PushTemplate, string) {
	if tpl.EngineVersion != "" && tpl.EngineVersion != esv1.TemplateEngineV2 {
		return nil, fmt.Sprintf("spec.template.engineVersion %q is not supported: use v2", tpl.EngineVersion)
	}
	out := &PushTemplate{Type: corev1.SecretType(tpl.Type)}
	for i, tf := range tpl.TemplateFrom {
		target := render.Target(tf.Target)
		if target == "" {
			target = render.TargetData
		}
		if target != render.TargetData && target != render.TargetLabels && target != render.TargetAnnotations {
			return nil, fmt.Sprintf("spec.template.templateFrom[%d].target %q: use Data, Labels or Annotations", i, tf.Target)
		}
		if d := tf.ValuesDecodingStrategy; d != "" && d != esv1.DecodingStrategyNone {
			return nil, fmt.Sprintf("spec.template.templateFrom[%d].valuesDecodingStrategy %q is not supported by keyferry yet (only None)", i, d)
		}
		switch {
		case tf.Literal != nil:
			out.Items = append(out.Items, render.Item{Template: *tf.Literal, KeysAndValues: true, Target: target,
				Source: fmt.Sprintf("spec.template.templateFrom[%d].literal", i)})
		case tf.ConfigMap != nil || tf.Secret != nil:
			from := engine.TemplateFrom{Target: target}
			ref := tf.ConfigMap
			if ref != nil {
				from.ConfigMap = ref.Name
			} else {
				ref = tf.Secret
				from.Secret = ref.Name
			}
			if ref.Name == "" {
				return nil, fmt.Sprintf("spec.template.templateFrom[%d] names no ConfigMap or Secret", i)
			}
			for _, it := range ref.Items {
				from.Items = append(from.Items, engine.TemplateFromItem{Key: it.Key, KeysAndValues: it.TemplateAs == esv1.TemplateScopeKeysAndValues})
			}
			out.From = append(out.From, from)
		default:
			return nil, fmt.Sprintf("spec.template.templateFrom[%d] sets none of configMap, secret and literal", i)
		}
	}
	for _, k := range sortedKeys(tpl.Data) {
		out.Items = append(out.Items, render.Item{Key: k, Template: tpl.Data[k], Source: "spec.template.data." + k})
	}
	for _, k := range sortedKeys(tpl.Metadata.Labels) {
		out.Items = append(out.Items, render.Item{Key: k, Template: tpl.Metadata.Labels[k], Target: render.TargetLabels, Source: "spec.template.metadata.labels." + k})
	}
	for _, k := range sortedKeys(tpl.Metadata.Annotations) {
		out.Items = append(out.Items, render.Item{Key: k, Template: tpl.Metadata.Annotations[k], Target: render.TargetAnnotations, Source: "spec.template.metadata.annotations." + k})
	}
	for _, it := range out.Items {
		if err := render.Validate(it.Source, it.Template); err != nil {
			return nil, err.Error()
		}
	}
	return out, ""
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
