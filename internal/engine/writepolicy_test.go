package engine

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

const esUID = types.UID("uid-of-app")

func testPlan(policy esv1.CreationPolicy) Plan {
	return Plan{
		Owner: Owner{APIVersion: "external-secrets.io/v1", Kind: "ExternalSecret", Namespace: "ns", Name: "app", UID: esUID},
		Target: Target{Name: "app", CreationPolicy: policy, DeletionPolicy: esv1.DeletionPolicyRetain,
			ManagedBy: "ExternalSecret/app", SetOwnerReference: policy == esv1.CreatePolicyOwner},
	}
}

// secret builds a Secret in namespace ns named app; edits shape it.
func secret(edits ...func(*corev1.Secret)) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "app", Labels: map[string]string{}, Annotations: map[string]string{}},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{"k": []byte("v")},
	}
	for _, e := range edits {
		e(s)
	}
	return s
}

func withType(t corev1.SecretType) func(*corev1.Secret) {
	return func(s *corev1.Secret) { s.Type = t }
}

func withAnnotation(k, v string) func(*corev1.Secret) {
	return func(s *corev1.Secret) { s.Annotations[k] = v }
}

func withLabel(k, v string) func(*corev1.Secret) {
	return func(s *corev1.Secret) { s.Labels[k] = v }
}

func withController(kind, name string, uid types.UID) func(*corev1.Secret) {
	return func(s *corev1.Secret) {
		s.OwnerReferences = append(s.OwnerReferences, metav1.OwnerReference{APIVersion: "v1", Kind: kind, Name: name, UID: uid, Controller: ptr(true)})
	}
}

func withManager(m string) func(*corev1.Secret) {
	return func(s *corev1.Secret) {
		s.ManagedFields = append(s.ManagedFields, metav1.ManagedFieldsEntry{Manager: m, Operation: metav1.ManagedFieldsOperationUpdate})
	}
}

func withData(kv ...string) func(*corev1.Secret) {
	return func(s *corev1.Secret) {
		s.Data = map[string][]byte{}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Data[kv[i]] = []byte(kv[i+1])
		}
	}
}

func in(ns, name string) func(*corev1.Secret) {
	return func(s *corev1.Secret) { s.Namespace, s.Name = ns, name }
}

// esoOrphan is a Secret exactly as ESO v2.9.0 leaves it for an
// ExternalSecret named app with creationPolicy Orphan.
func esoOrphan(edits ...func(*corev1.Secret)) *corev1.Secret {
	return secret(append([]func(*corev1.Secret){
		withLabel(LabelManaged, LabelManagedValue),
		withAnnotation(AnnotationDataHash, "3c4a"),
		withManager("externalsecrets.external-secrets.io/app"),
	}, edits...)...)
}

// Each row is one rule of the write decision; the row's name is the rule.
func TestWriteChecks(t *testing.T) {
	owner := testPlan(esv1.CreatePolicyOwner)
	orphan := testPlan(esv1.CreatePolicyOrphan)
	merge := testPlan(esv1.CreatePolicyMerge)
	deleteMerge := testPlan(esv1.CreatePolicyOwner)
	deleteMerge.Target.DeletionPolicy = esv1.DeletionPolicyMerge
	clusterES := testPlan(esv1.CreatePolicyOrphan)
	clusterES.Owner.Kind = "SecretSync"

	cases := []struct {
		name    string
		chain   []writeCheck
		plan    Plan
		current *corev1.Secret
		next    *corev1.Secret
		gone    bool
		reason  string // "" allows
		says    string // the message names this
	}{
		// never take over
		{name: "never take over a Secret nobody gave us", chain: claimChecks, plan: owner, current: secret(), reason: ReasonSecretNotOwned, says: AnnotationAdopt + "=ExternalSecret/app"},
		{name: "never take over another controller's Secret", chain: claimChecks, plan: owner, current: secret(withController("Certificate", "web", "other")), reason: ReasonSecretNotOwned},
		{name: "never take over a Secret owned by an ExternalSecret of the same name with another UID", chain: claimChecks, plan: owner, current: secret(withController("ExternalSecret", "app", "old-uid")), reason: ReasonSecretNotOwned},
		{name: "own Secret by controller reference", chain: claimChecks, plan: owner, current: secret(withController("ExternalSecret", "app", esUID))},
		{name: "own Secret by owner annotation", chain: claimChecks, plan: orphan, current: secret(withAnnotation(AnnotationOwner, "ExternalSecret/app"))},
		{name: "owner annotation naming another writer is not ownership", chain: claimChecks, plan: orphan, current: secret(withAnnotation(AnnotationOwner, "ExternalSecret/other")), reason: ReasonSecretNotOwned},
		// adoption
		{name: "adoption annotation naming this writer allows taking over", chain: claimChecks, plan: owner, current: secret(withAnnotation(AnnotationAdopt, "ExternalSecret/app"))},
		{name: "adoption annotation naming another writer allows nothing", chain: claimChecks, plan: owner, current: secret(withAnnotation(AnnotationAdopt, "ExternalSecret/other")), reason: ReasonSecretNotOwned},
		// ESO's orphaned Secrets
		{name: "Secret ESO created for this ExternalSecret keeps syncing", chain: claimChecks, plan: orphan, current: esoOrphan()},
		{name: "Secret ESO created for an ExternalSecret with a long name keeps syncing", chain: claimChecks,
			plan: func() Plan {
				p := testPlan(esv1.CreatePolicyOrphan)
				p.Owner.Name = strings.Repeat("a", 40)
				return p
			}(),
			current: esoOrphan(func(s *corev1.Secret) { s.ManagedFields[0].Manager = ESOFieldManager(strings.Repeat("a", 40)) })},
		{name: "Secret ESO created for another ExternalSecret is not ours", chain: claimChecks, plan: orphan, current: esoOrphan(func(s *corev1.Secret) { s.ManagedFields[0].Manager = "externalsecrets.external-secrets.io/other" }), reason: ReasonSecretNotOwned},
		{name: "ESO's label without ESO's field manager is not ours", chain: claimChecks, plan: orphan, current: esoOrphan(func(s *corev1.Secret) { s.ManagedFields = nil }), reason: ReasonSecretNotOwned},
		{name: "ESO's field manager without ESO's label is not ours", chain: claimChecks, plan: orphan, current: esoOrphan(func(s *corev1.Secret) { delete(s.Labels, LabelManaged) }), reason: ReasonSecretNotOwned},
		{name: "ESO's marks without the data hash are not ours", chain: claimChecks, plan: orphan, current: esoOrphan(func(s *corev1.Secret) { delete(s.Annotations, AnnotationDataHash) }), reason: ReasonSecretNotOwned},
		{name: "ESO's marks on a Secret another controller controls are not ours", chain: claimChecks, plan: orphan, current: esoOrphan(withController("Certificate", "web", "c")), reason: ReasonSecretNotOwned},
		{name: "ESO's marks count only for ExternalSecrets", chain: claimChecks, plan: clusterES, current: esoOrphan(), reason: ReasonSecretNotOwned},
		// Merge only its keys, never into credentials or other controllers' Secrets
		{name: "Merge writes into a plain Secret", chain: claimChecks, plan: merge, current: secret()},
		{name: "Merge never writes into a ServiceAccount token", chain: claimChecks, plan: merge, current: secret(withType(corev1.SecretTypeServiceAccountToken), withAnnotation(corev1.ServiceAccountNameKey, "default")), reason: ReasonMergeNotAllowed, says: "ServiceAccount token"},
		{name: "Merge never writes into a Secret bound to a ServiceAccount", chain: claimChecks, plan: merge, current: secret(withAnnotation(corev1.ServiceAccountNameKey, "default")), reason: ReasonMergeNotAllowed},
		{name: "Merge never writes into a bootstrap token", chain: claimChecks, plan: merge, current: secret(withType(corev1.SecretTypeBootstrapToken)), reason: ReasonMergeNotAllowed},
		{name: "Merge never writes into a Helm release", chain: claimChecks, plan: merge, current: secret(withType(SecretTypeHelmRelease)), reason: ReasonMergeNotAllowed, says: "Helm release"},
		{name: "Merge never writes into a Helm release even when adopted", chain: claimChecks, plan: merge, current: secret(withType(SecretTypeHelmRelease), withAnnotation(AnnotationAdopt, "ExternalSecret/app")), reason: ReasonMergeNotAllowed},
		{name: "Merge never writes into another controller's Secret", chain: claimChecks, plan: merge, current: secret(withController("Certificate", "web", "c")), reason: ReasonMergeNotAllowed, says: `Certificate "web"`},
		{name: "Merge never writes into a cert-manager Secret", chain: claimChecks, plan: merge, current: secret(withType(corev1.SecretTypeTLS), withAnnotation(AnnotationCertManagerCertificate, "web")), reason: ReasonMergeNotAllowed, says: "cert-manager"},
		{name: "Merge writes into another controller's Secret that opts in", chain: claimChecks, plan: merge, current: secret(withController("Certificate", "web", "c"), withAnnotation(AnnotationAdopt, "ExternalSecret/app"))},
		{name: "Merge writes into a Secret this ExternalSecret controls", chain: claimChecks, plan: merge, current: secret(withController("ExternalSecret", "app", esUID))},
		// allowed types
		{name: "never write a ServiceAccount token", chain: contentChecks, plan: owner, next: secret(withType(corev1.SecretTypeServiceAccountToken)), reason: ReasonCredentialNotAllowed, says: "token controller"},
		{name: "never write the ServiceAccount name annotation", chain: contentChecks, plan: owner, next: secret(withAnnotation(corev1.ServiceAccountNameKey, "default")), reason: ReasonCredentialNotAllowed, says: corev1.ServiceAccountNameKey},
		{name: "never write the ServiceAccount UID annotation", chain: contentChecks, plan: owner, next: secret(withAnnotation(corev1.ServiceAccountUIDKey, "u")), reason: ReasonCredentialNotAllowed},
		{name: "never write a bootstrap token in kube-system", chain: contentChecks, plan: owner, next: secret(in("kube-system", "tok"), withType(corev1.SecretTypeBootstrapToken)), reason: ReasonCredentialNotAllowed, says: "bootstrap"},
		{name: "never write a Secret named bootstrap-token-* in kube-system", chain: contentChecks, plan: owner, next: secret(in("kube-system", "bootstrap-token-abcdef")), reason: ReasonCredentialNotAllowed},
		{name: "a bootstrap-token type outside kube-system is inert and allowed", chain: contentChecks, plan: owner, next: secret(withType(corev1.SecretTypeBootstrapToken))},
		{name: "an Opaque Secret is allowed", chain: contentChecks, plan: owner, next: secret()},
		{name: "a TLS Secret is allowed", chain: contentChecks, plan: owner, next: secret(withType(corev1.SecretTypeTLS))},
		// never blank
		{name: "never blank a Secret", chain: changeChecks, plan: owner, current: secret(), next: secret(withData()), reason: ReasonWouldBeEmpty, says: "keeps its 1 keys"},
		{name: "deletionPolicy Merge empties a Secret whose values are all gone", chain: changeChecks, plan: deleteMerge, current: secret(), next: secret(withData()), gone: true},
		{name: "an empty Secret may stay empty", chain: changeChecks, plan: owner, current: secret(withData()), next: secret(withData())},
		// immutable and type
		{name: "an immutable Secret never changes", chain: changeChecks, plan: owner, current: secret(func(s *corev1.Secret) { s.Immutable = ptr(true) }), next: secret(withData("k", "new")), reason: ReasonSecretImmutable},
		{name: "a Secret's type never changes", chain: changeChecks, plan: owner, current: secret(), next: secret(withType(corev1.SecretTypeTLS)), reason: ReasonInvalidSpec, says: "delete the Secret"},
		{name: "a mutable Secret changes", chain: changeChecks, plan: owner, current: secret(), next: secret(withData("k", "new"))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := &write{plan: tc.plan, current: tc.current, next: tc.next, gone: tc.gone,
				merge: tc.plan.Target.CreationPolicy == esv1.CreatePolicyMerge || tc.plan.Target.CreationPolicy == esv1.CreatePolicyCreateOrMerge}
			err := runChecks(w, tc.chain)
			switch {
			case tc.reason == "" && err != nil:
				t.Fatalf("refused (%s): %v", err.Reason, err)
			case tc.reason != "" && err == nil:
				t.Fatalf("allowed; want %s", tc.reason)
			case tc.reason != "" && err.Reason != tc.reason:
				t.Fatalf("reason %s, want %s: %v", err.Reason, tc.reason, err)
			case err != nil && !strings.Contains(err.Error(), tc.says):
				t.Fatalf("message does not say %q: %v", tc.says, err)
			}
		})
	}
}

func TestWaitsForChange(t *testing.T) {
	for reason, want := range map[string]bool{
		ReasonSecretNotOwned: true, ReasonSecretMissing: true, ReasonSecretImmutable: true,
		ReasonCredentialNotAllowed: true, ReasonMergeNotAllowed: true,
		ReasonUnreachable: false, ReasonWriteFailed: false, ReasonWouldBeEmpty: false, ReasonInvalidSpec: false,
	} {
		if got := WaitsForChange(reason); got != want {
			t.Errorf("WaitsForChange(%s) = %v, want %v", reason, got, want)
		}
	}
}

func TestESOFieldManager(t *testing.T) {
	if got := ESOFieldManager("app"); got != "externalsecrets.external-secrets.io/app" {
		t.Errorf("short name: %s", got)
	}
	// ESO hashes names whose field manager would exceed 63 characters:
	// sha3-224 of the name, in hex.
	long := strings.Repeat("x", 40)
	got := ESOFieldManager(long)
	if !strings.HasPrefix(got, "externalsecrets.external-secrets.io/sha3/") || len(got) != len("externalsecrets.external-secrets.io/sha3/")+56 {
		t.Errorf("long name: %s", got)
	}
	// 27 characters is the longest name kept verbatim (36 + 27 = 63).
	if got := ESOFieldManager(strings.Repeat("y", 27)); strings.Contains(got, "sha3") {
		t.Errorf("63 characters must not be hashed: %s", got)
	}
}

func TestMergeKeepsEachWritersKeys(t *testing.T) {
	s := secret(withData("theirs", "t"))
	mergeInto(s, map[string][]byte{"a": []byte("1"), "shared": []byte("x")}, "ExternalSecret/a")
	mergeInto(s, map[string][]byte{"b": []byte("2"), "shared": []byte("y")}, "ExternalSecret/b")
	if got := s.Annotations[AnnotationMergedKeysByWriter]; got != `{"ExternalSecret/a":["a","shared"],"ExternalSecret/b":["b","shared"]}` {
		t.Fatalf("record: %s", got)
	}
	// a drops its keys: its own key goes, the key b also wrote stays, b's and
	// the owner's keys stay.
	mergeInto(s, map[string][]byte{}, "ExternalSecret/a")
	if got := keysOf(s.Data); !reflect.DeepEqual(got, []string{"b", "shared", "theirs"}) {
		t.Fatalf("keys after a dropped everything: %v", got)
	}
	if got := s.Annotations[AnnotationMergedKeysByWriter]; got != `{"ExternalSecret/b":["b","shared"]}` {
		t.Fatalf("record: %s", got)
	}
	mergeInto(s, map[string][]byte{}, "ExternalSecret/b")
	if got := keysOf(s.Data); !reflect.DeepEqual(got, []string{"theirs"}) {
		t.Fatalf("keys after both dropped everything: %v", got)
	}
	if _, ok := s.Annotations[AnnotationMergedKeysByWriter]; ok {
		t.Fatal("an empty record is kept")
	}
}

func TestMergeReadsTheSingleWriterRecordOfOlderVersions(t *testing.T) {
	// Older versions kept one comma list for whoever merged last; whose keys
	// they were is unknown, so none is removed on its word.
	s := secret(withData("theirs", "t", "old", "o"), withAnnotation(AnnotationMergedKeys, "old"))
	mergeInto(s, map[string][]byte{"new": []byte("n")}, "ExternalSecret/app")
	if got := keysOf(s.Data); !reflect.DeepEqual(got, []string{"new", "old", "theirs"}) {
		t.Fatalf("keys: %v", got)
	}
	if _, ok := s.Annotations[AnnotationMergedKeys]; ok {
		t.Fatal("the single-writer record is kept beside the per-writer one")
	}
	if got := s.Annotations[AnnotationMergedKeysByWriter]; got != `{"ExternalSecret/app":["new"]}` {
		t.Fatalf("record: %s", got)
	}
}

func TestMergeIgnoresARecordThatDoesNotParse(t *testing.T) {
	s := secret(withData("theirs", "t"), withAnnotation(AnnotationMergedKeysByWriter, `{"ExternalSecret/app":`))
	mergeInto(s, map[string][]byte{"a": []byte("1")}, "ExternalSecret/app")
	if got := keysOf(s.Data); !reflect.DeepEqual(got, []string{"a", "theirs"}) {
		t.Fatalf("keys: %v", got)
	}
}

func FuzzMergedKeysRecord(f *testing.F) {
	f.Add(`{"ExternalSecret/a":["k"]}`)
	f.Add(`{"ExternalSecret/a":"k"}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, rec string) {
		s := secret(withData("theirs", "t"), withAnnotation(AnnotationMergedKeysByWriter, rec))
		mergeInto(s, map[string][]byte{"mine": []byte("m")}, "ExternalSecret/app")
		if string(s.Data["theirs"]) != "t" && !strings.Contains(rec, "theirs") {
			t.Fatalf("a key no record names was removed (record %q)", rec)
		}
		if string(s.Data["mine"]) != "m" {
			t.Fatal("own key not written")
		}
	})
}

func keysOf(m map[string][]byte) []string { return sortedKeys(m) }
