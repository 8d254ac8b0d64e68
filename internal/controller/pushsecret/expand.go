package pushsecret

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"

	esv1alpha1 "github.com/keyferry/keyferry/apis/externalsecrets/v1alpha1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/values"
	"github.com/keyferry/keyferry/internal/provider"
)

// bundleSource is how a dataTo bundle (remoteKey set) is named among the
// source keys when two dataTo entries collide, as ESO names it.
const bundleSource = "(bundle)"

// Rewriters builds the function a rewrite applies to a key
// (engine.Engine.KeyRewriter in the controller).
type Rewriters func(engine.Rewrite) (values.Rewriter, error)

// pushesFor lists what one source Secret (its data, after the template)
// pushes to one store, as ESO expands it: first the dataTo entries that
// target the store, each over the Secret's keys (converted by its
// conversionStrategy, filtered by match.regexp, then either bundled into
// remoteKey or each pushed to the remote secret its rewrites name), then
// spec.data. An explicit data entry wins over a dataTo entry for the same
// source key; two pushes to the same remote ref are refused. The order is
// stable: dataTo entries in spec order, their keys sorted, then spec.data.
func (s *Spec) pushesFor(st Target, data map[string][]byte, rw Rewriters) ([]Push, error) {
	var expanded []Push
	remoteOf := map[string]string{} // remote key -> "dataTo[i]:source key"
	for _, d := range s.DataTo {
		if !d.targets(st) {
			continue
		}
		ps, err := expandDataTo(st.Store, d, data, rw)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			src := p.SecretKey
			if p.Only != nil {
				src = bundleSource
			}
			if prev, dup := remoteOf[p.Ref.RemoteKey]; dup {
				return nil, invalidPush("spec.dataTo[%d]: source key %q and %s both push to remote key %q", d.Index, src, prev, p.Ref.RemoteKey)
			}
			remoteOf[p.Ref.RemoteKey] = fmt.Sprintf("dataTo[%d]:%q", d.Index, src)
		}
		expanded = append(expanded, ps...)
	}

	explicit := make(map[string]bool, len(s.Data))
	for _, d := range s.Data {
		explicit[originalKey(d, data)] = true
	}
	out := make([]Push, 0, len(expanded)+len(s.Data))
	for _, p := range expanded {
		// A bundle's source key is "" and is only dropped by an explicit
		// entry that pushes the whole Secret (ESO compares source keys).
		if !explicit[p.SecretKey] {
			out = append(out, p)
		}
	}
	for _, d := range s.Data {
		out = append(out, Push{
			Store:      st.Store,
			Ref:        provider.PushRef{RemoteKey: d.Match.RemoteRef.RemoteKey, Property: d.Match.RemoteRef.Property},
			SecretKey:  d.Match.SecretKey,
			Conversion: d.ConversionStrategy,
			Data:       d,
			Metadata:   metadataOf(d),
		})
	}
	seen := make(map[string]string, len(out))
	for _, p := range out {
		k := RemoteKey(p.Ref)
		if prev, dup := seen[k]; dup {
			return nil, invalidPush("source keys %q and %q both push to remote ref %q of %s %q", prev, p.SecretKey, k, st.Store.Kind, st.Store.Name)
		}
		seen[k] = p.SecretKey
	}
	return out, nil
}

// expandDataTo expands one dataTo entry over data.
func expandDataTo(store engine.StoreRef, d DataTo, data map[string][]byte, rw Rewriters) ([]Push, error) {
	converted, err := convertKeys(d.Conversion, data)
	if err != nil {
		return nil, invalidPush("spec.dataTo[%d].conversionStrategy: %v", d.Index, err)
	}
	original := make(map[string]string, len(data))
	for k := range data {
		original[reverseKey(d.Conversion, k)] = k
	}
	var matched []string
	for _, k := range slices.Sorted(maps.Keys(converted)) {
		if d.Match == nil || d.Match.MatchString(k) {
			matched = append(matched, k)
		}
	}
	if len(matched) == 0 {
		return nil, nil
	}
	if d.RemoteKey != "" {
		// Bundle: the matched keys, converted, as one whole-Secret push.
		return []Push{{
			Store:      store,
			Ref:        provider.PushRef{RemoteKey: d.RemoteKey},
			Conversion: d.Conversion,
			Only:       matched,
			Metadata:   d.Metadata,
			Data: esv1alpha1.PushSecretData{
				Match:              esv1alpha1.PushSecretMatch{RemoteRef: esv1alpha1.PushSecretRemoteRef{RemoteKey: d.RemoteKey}},
				ConversionStrategy: esv1alpha1.PushSecretConversionNone,
			},
		}}, nil
	}
	rewriters := make([]values.Rewriter, 0, len(d.Rewrite))
	for _, r := range d.Rewrite {
		f, err := rw(r)
		if err != nil {
			return nil, err
		}
		rewriters = append(rewriters, f)
	}
	out := make([]Push, 0, len(matched))
	for _, k := range matched {
		remote := k
		for j, f := range rewriters {
			if remote, err = f(remote); err != nil {
				return nil, wrapInvalid(err, "spec.dataTo[%d].rewrite[%d] of key %q", d.Index, j, k)
			}
		}
		if remote == "" {
			return nil, invalidPush("spec.dataTo[%d]: the rewrites turn key %q into an empty remote key", d.Index, k)
		}
		// Per key: the value is looked up under the Secret's own key, as
		// ESO records it (conversionStrategy None).
		src := original[k]
		out = append(out, Push{
			Store:     store,
			Ref:       provider.PushRef{RemoteKey: remote},
			SecretKey: src,
			Metadata:  d.Metadata,
			Data: esv1alpha1.PushSecretData{
				Match:              esv1alpha1.PushSecretMatch{SecretKey: src, RemoteRef: esv1alpha1.PushSecretRemoteRef{RemoteKey: remote}},
				ConversionStrategy: esv1alpha1.PushSecretConversionNone,
			},
		})
	}
	return out, nil
}

// originalKey is the Secret's own key a data entry reads: its secretKey,
// or under ReverseUnicode the key that converts to it.
func originalKey(d esv1alpha1.PushSecretData, data map[string][]byte) string {
	key := d.Match.SecretKey
	if d.ConversionStrategy != esv1alpha1.PushSecretConversionReverseUnicode {
		return key
	}
	for k := range data {
		if reverseKey(d.ConversionStrategy, k) == key {
			return k
		}
	}
	return key
}

// unicodeEscape is ESO's escape of a character in a Secret key
// (conversionStrategy Unicode of an ExternalSecret writes it).
var unicodeEscape = regexp.MustCompile(`_U([0-9a-fA-F]{4,5})_`)

// reverseKey applies a PushSecret conversionStrategy to a key: under
// ReverseUnicode each _UXXXX_ escape becomes the character it stands for.
func reverseKey(c esv1alpha1.PushSecretConversionStrategy, key string) string {
	if c != esv1alpha1.PushSecretConversionReverseUnicode {
		return key
	}
	return unicodeEscape.ReplaceAllStringFunc(key, func(m string) string {
		n, err := strconv.ParseInt(m[2:len(m)-1], 16, 32)
		if err != nil {
			return m
		}
		return string(rune(n))
	})
}

// convertKeys applies c to every key of data; two keys that convert to
// the same are an error (naming the key, never a value).
func convertKeys(c esv1alpha1.PushSecretConversionStrategy, data map[string][]byte) (map[string][]byte, error) {
	if c != esv1alpha1.PushSecretConversionReverseUnicode {
		return data, nil
	}
	out := make(map[string][]byte, len(data))
	for _, k := range slices.Sorted(maps.Keys(data)) {
		nk := reverseKey(c, k)
		if _, dup := out[nk]; dup {
			return nil, fmt.Errorf("two keys of the source Secret convert to %q", nk)
		}
		out[nk] = data[k]
	}
	return out, nil
}

// invalidPush is an InvalidSpec failure found while expanding the pushes:
// it depends on the source Secret's keys, and names keys, never values.
func invalidPush(format string, args ...any) error {
	return &engine.Error{Reason: engine.ReasonInvalidSpec, Err: fmt.Errorf(format, args...)}
}

// wrapInvalid adds context to a rewrite failure, keeping its reason
// (a transform that fails is TemplateFailed).
func wrapInvalid(err error, format string, args ...any) error {
	ee := engine.Classify(err)
	return &engine.Error{Reason: ee.Reason, RetryAfter: ee.RetryAfter, Err: fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)}
}

// metadataOf is a data entry's metadata as written, nil when it has none.
func metadataOf(d esv1alpha1.PushSecretData) []byte {
	if !usesMetadata(d.Metadata) {
		return nil
	}
	return d.Metadata.Raw
}
