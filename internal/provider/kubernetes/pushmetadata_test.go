package kubernetes

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/keyferry/keyferry/internal/provider"
)

// pushMetadataJSON wraps spec (JSON) in ESO's PushSecretMetadata envelope.
func pushMetadataJSON(spec string) []byte {
	return []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":` + spec + `}`)
}

func TestParsePushMetadata(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  []byte
		want pushMetadata
		// field is what a refusal names; empty: accepted.
		field string
	}{
		{name: "the example of ESO's Kubernetes guide", raw: pushMetadataJSON(`{"sourceMergePolicy":"Merge","targetMergePolicy":"Merge","labels":{"color":"red"},"annotations":{"yes":"please"}}`),
			want: pushMetadata{SourceMergePolicy: "Merge", TargetMergePolicy: "Merge", Labels: map[string]string{"color": "red"}, Annotations: map[string]string{"yes": "please"}}},
		{name: "Replace and Ignore", raw: pushMetadataJSON(`{"sourceMergePolicy":"Replace","targetMergePolicy":"Ignore"}`),
			want: pushMetadata{SourceMergePolicy: "Replace", TargetMergePolicy: "Ignore"}},
		{name: "target Replace, prefixed keys", raw: pushMetadataJSON(`{"targetMergePolicy":"Replace","labels":{"app.kubernetes.io/part-of":"argocd"},"annotations":{"example.com/Note":"any text: ok"}}`),
			want: pushMetadata{TargetMergePolicy: "Replace", Labels: map[string]string{"app.kubernetes.io/part-of": "argocd"}, Annotations: map[string]string{"example.com/Note": "any text: ok"}}},
		{name: "no spec", raw: []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata"}`)},
		{name: "an unknown field", raw: pushMetadataJSON(`{"tags":{"a":"b"}}`), field: `"tags"`},
		{name: "a field spelled otherwise", raw: pushMetadataJSON(`{"Labels":{"a":"b"}}`), field: `"Labels"`},
		{name: "another apiVersion", raw: []byte(`{"apiVersion":"v1","kind":"PushSecretMetadata"}`), field: "metadata.apiVersion"},
		{name: "another kind", raw: []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"Secret"}`), field: "metadata.kind"},
		{name: "not an object", raw: []byte(`"x"`), field: "metadata must be an object"},
		{name: "labels not strings", raw: pushMetadataJSON(`{"labels":{"a":true}}`), field: "metadata.spec.labels must be"},
		{name: "an unknown sourceMergePolicy", raw: pushMetadataJSON(`{"sourceMergePolicy":"Ignore"}`), field: "metadata.spec.sourceMergePolicy"},
		{name: "an unknown targetMergePolicy", raw: pushMetadataJSON(`{"targetMergePolicy":"merge"}`), field: "metadata.spec.targetMergePolicy"},
		{name: "remoteNamespace", raw: pushMetadataJSON(`{"remoteNamespace":"other"}`), field: "metadata.spec.remoteNamespace"},
		{name: "keyferry's mark", raw: pushMetadataJSON(`{"labels":{"keyferry.io/pushed":"false"}}`), field: "cannot set keyferry.io/pushed"},
		{name: "an invalid label key", raw: pushMetadataJSON(`{"labels":{"a b":"c"}}`), field: `metadata.spec.labels has an invalid key "a b"`},
		{name: "an invalid label value", raw: pushMetadataJSON(`{"labels":{"a":"not valid!"}}`), field: "metadata.spec.labels.a is not a valid label value"},
		{name: "an invalid annotation key", raw: pushMetadataJSON(`{"annotations":{"-a":"c"}}`), field: `metadata.spec.annotations has an invalid key "-a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePushMetadata(tc.raw)
			if tc.field != "" {
				if !errors.Is(err, provider.ErrInvalidPush) || !strings.Contains(err.Error(), tc.field) {
					t.Fatalf("parsePushMetadata = %v; want ErrInvalidPush naming %s", err, tc.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.SourceMergePolicy != tc.want.SourceMergePolicy || got.TargetMergePolicy != tc.want.TargetMergePolicy ||
				!maps.Equal(got.Labels, tc.want.Labels) || !maps.Equal(got.Annotations, tc.want.Annotations) {
				t.Fatalf("parsePushMetadata = %+v; want %+v", got, tc.want)
			}
		})
	}
}

// setMetadata is ESO's two merges (source, then target), with keyferry's
// mark always on the remote Secret and never the source's
// last-applied-configuration (it holds the source's data).
func TestSetMetadata(t *testing.T) {
	src := provider.PushValue{
		Labels:      map[string]string{"app": "web", "tier": "src", LabelPushed: "false"},
		Annotations: map[string]string{"note": "from source", corev1.LastAppliedConfigAnnotation: `{"stringData":{"k":"v"}}`},
	}
	remote := func() *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{LabelPushed: "true", "tier": "remote", "keep": "me"},
			Annotations: map[string]string{"theirs": "x"},
		}}
	}
	spec := func(source, target string) *pushMetadata {
		return &pushMetadata{SourceMergePolicy: source, TargetMergePolicy: target,
			Labels: map[string]string{"color": "red", "tier": "meta"}, Annotations: map[string]string{"yes": "please"}}
	}
	for _, tc := range []struct {
		name                     string
		m                        *pushMetadata
		remote                   *corev1.Secret
		wantLabels, wantAnnotats map[string]string
	}{
		{name: "no metadata, new Secret: the source's, and the mark", remote: &corev1.Secret{},
			wantLabels:   map[string]string{"app": "web", "tier": "src", LabelPushed: "true"},
			wantAnnotats: map[string]string{"note": "from source"}},
		{name: "no metadata: the source's merged into the remote's", remote: remote(),
			wantLabels:   map[string]string{"app": "web", "tier": "src", "keep": "me", LabelPushed: "true"},
			wantAnnotats: map[string]string{"note": "from source", "theirs": "x"}},
		{name: "Merge/Merge: the spec over the source, over the remote", m: spec("", ""), remote: remote(),
			wantLabels:   map[string]string{"app": "web", "tier": "meta", "color": "red", "keep": "me", LabelPushed: "true"},
			wantAnnotats: map[string]string{"note": "from source", "yes": "please", "theirs": "x"}},
		{name: "source Replace: the spec's only, merged", m: spec("Replace", "Merge"), remote: remote(),
			wantLabels:   map[string]string{"tier": "meta", "color": "red", "keep": "me", LabelPushed: "true"},
			wantAnnotats: map[string]string{"yes": "please", "theirs": "x"}},
		{name: "target Replace: the remote's are dropped, the mark kept", m: spec("Merge", "Replace"), remote: remote(),
			wantLabels:   map[string]string{"app": "web", "tier": "meta", "color": "red", LabelPushed: "true"},
			wantAnnotats: map[string]string{"note": "from source", "yes": "please"}},
		{name: "Replace/Replace", m: spec("Replace", "Replace"), remote: remote(),
			wantLabels:   map[string]string{"tier": "meta", "color": "red", LabelPushed: "true"},
			wantAnnotats: map[string]string{"yes": "please"}},
		{name: "target Ignore: the remote's as they are", m: spec("Merge", "Ignore"), remote: remote(),
			wantLabels:   map[string]string{LabelPushed: "true", "tier": "remote", "keep": "me"},
			wantAnnotats: map[string]string{"theirs": "x"}},
		{name: "target Ignore, new Secret: the mark only", m: spec("Merge", "Ignore"), remote: &corev1.Secret{},
			wantLabels: map[string]string{LabelPushed: "true"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setMetadata(tc.remote, src, tc.m)
			if !maps.Equal(tc.remote.Labels, tc.wantLabels) || !maps.Equal(tc.remote.Annotations, tc.wantAnnotats) {
				t.Fatalf("labels %v, annotations %v; want %v, %v", tc.remote.Labels, tc.remote.Annotations, tc.wantLabels, tc.wantAnnotats)
			}
		})
	}
	if src.Labels[LabelPushed] != "false" || len(src.Labels) != 3 {
		t.Fatalf("the source's labels were changed: %v", src.Labels)
	}
}

// The parser never panics, refuses only with ErrInvalidPush, never quotes a
// value it refuses, and what it accepts keeps the rules (known policies, no
// remoteNamespace, no keyferry mark); a remote Secret always ends up with
// the mark, whatever the source and the remote held.
func FuzzParsePushMetadata(f *testing.F) {
	f.Add(pushMetadataJSON(`{"sourceMergePolicy":"Merge","targetMergePolicy":"Merge","labels":{"color":"red"},"annotations":{"yes":"please"}}`), "red")
	f.Add(pushMetadataJSON(`{"sourceMergePolicy":"Replace","targetMergePolicy":"Ignore"}`), "Ignore")
	f.Add(pushMetadataJSON(`{"targetMergePolicy":"Replace","remoteNamespace":"x"}`), "x")
	f.Add([]byte(`null`), "")
	f.Add([]byte(`{"apiVersion":1}`), "\x00")
	const marker = "kfvalue-"
	f.Fuzz(func(t *testing.T, raw []byte, value string) {
		check := func(raw []byte) {
			m, err := parsePushMetadata(raw)
			if err != nil {
				if !errors.Is(err, provider.ErrInvalidPush) {
					t.Fatalf("error %v does not wrap ErrInvalidPush", err)
				}
				if strings.Contains(err.Error(), marker) {
					t.Fatalf("error %q quotes a value", err)
				}
				return
			}
			if _, ok := m.Labels[LabelPushed]; ok {
				t.Fatal("accepted keyferry's mark as a label")
			}
			if m.RemoteNamespace != "" {
				t.Fatal("accepted remoteNamespace")
			}
			if err := sourceMergePolicyIsKnown(m); err != nil {
				t.Fatal(err)
			}
			if err := targetMergePolicyIsKnown(m); err != nil {
				t.Fatal(err)
			}
			for _, remote := range []*corev1.Secret{{}, {ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{LabelPushed: "true", "x": "y"}}}} {
				v := provider.PushValue{Labels: map[string]string{LabelPushed: "no"}}
				setMetadata(remote, v, &m)
				if remote.Labels[LabelPushed] != "true" {
					t.Fatal("a pushed Secret lacks the mark")
				}
			}
		}
		check(raw)
		// The value (marked) in every place a value goes.
		q, err := json.Marshal(marker + value)
		if err != nil {
			return
		}
		v := string(q)
		for _, spec := range []string{
			`{"labels":{"a":` + v + `}}`, `{"labels":{"keyferry.io/pushed":` + v + `}}`, `{"annotations":{"a":` + v + `}}`,
			`{"sourceMergePolicy":` + v + `}`, `{"targetMergePolicy":` + v + `}`, `{"remoteNamespace":` + v + `}`,
			`{"labels":[` + v + `]}`, `{"annotations":{"a":` + v + `,"b":1}}`, v,
		} {
			check(pushMetadataJSON(spec))
		}
		check([]byte(`{"apiVersion":` + v + `,"kind":"PushSecretMetadata"}`))
		check([]byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":` + v + `}`))
	})
}
