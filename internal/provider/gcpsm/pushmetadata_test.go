package gcpsm

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/testing/testserver/gcpsmemulator"
)

// metadataJSON is a PushSecretMetadata with spec (JSON) as written.
func metadataJSON(spec string) []byte {
	return []byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":` + spec + `}`)
}

func TestParsePushMetadata(t *testing.T) {
	const secretish = "val-" + canary
	tests := []struct {
		name string
		raw  string
		want pushMetadata
		// field is what the refusal must name ("" : accepted).
		field string
	}{
		{name: "ESO's GCP example", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"mergePolicy":"Merge","labels":{"anotherLabel":"anotherValue"}}}`,
			want: pushMetadata{MergePolicy: "Merge", Labels: map[string]string{"anotherLabel": "anotherValue"}}},
		{name: "every field", raw: string(metadataJSON(`{"labels":{"a":"b"},"annotations":{"c":"d"},"mergePolicy":"Replace","topics":["projects/p/topics/t"],"cmekKeyName":"projects/p/locations/l/keyRings/r/cryptoKeys/k","replicationLocations":["us-east1","europe-west1"]}`)),
			want: pushMetadata{Labels: map[string]string{"a": "b"}, Annotations: map[string]string{"c": "d"}, MergePolicy: "Replace", Topics: []string{"projects/p/topics/t"},
				CMEKKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k", Locations: []string{"us-east1", "europe-west1"}}},
		{name: "deprecated replicationLocation", raw: string(metadataJSON(`{"replicationLocation":"us-east1"}`)), want: pushMetadata{Locations: []string{"us-east1"}}},
		{name: "replicationLocations win over replicationLocation", raw: string(metadataJSON(`{"replicationLocation":"us-east1","replicationLocations":["eu"]}`)), want: pushMetadata{Locations: []string{"eu"}}},
		{name: "no spec", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata"}`},
		{name: "null spec", raw: string(metadataJSON(`null`))},
		{name: "null fields", raw: string(metadataJSON(`{"labels":null,"topics":null}`))},

		{name: "not an object", raw: `["x"]`, field: "metadata must be an object"},
		{name: "null", raw: `null`, field: "metadata.apiVersion"},
		{name: "not JSON", raw: `{"apiVersion":` + secretish, field: "metadata must be an object"},
		{name: "wrong apiVersion", raw: `{"apiVersion":"` + secretish + `","kind":"PushSecretMetadata"}`, field: "metadata.apiVersion"},
		{name: "apiVersion of another group", raw: `{"apiVersion":"external-secrets.io/v1alpha1","kind":"PushSecretMetadata"}`, field: "metadata.apiVersion"},
		{name: "no kind", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1"}`, field: "metadata.kind"},
		{name: "wrong kind", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"` + secretish + `"}`, field: "metadata.kind"},
		{name: "unknown top-level field", raw: `{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","metadata":{"name":"` + secretish + `"}}`, field: `metadata has an unknown field "metadata"`},
		{name: "spec not an object", raw: string(metadataJSON(`"` + secretish + `"`)), field: "metadata.spec must be an object"},
		{name: "unknown spec field", raw: string(metadataJSON(`{"tags":{"a":"` + secretish + `"}}`)), field: `metadata.spec has an unknown field "tags"`},
		{name: "field names are matched exactly", raw: string(metadataJSON(`{"Labels":{"a":"b"}}`)), field: `metadata.spec has an unknown field "Labels"`},
		{name: "labels not strings", raw: string(metadataJSON(`{"labels":{"a":1}}`)), field: "metadata.spec.labels must be an object of strings"},
		{name: "annotations not an object", raw: string(metadataJSON(`{"annotations":["` + secretish + `"]}`)), field: "metadata.spec.annotations must be an object of strings"},
		{name: "topics not a list", raw: string(metadataJSON(`{"topics":"` + secretish + `"}`)), field: "metadata.spec.topics must be a list of strings"},
		{name: "cmekKeyName not a string", raw: string(metadataJSON(`{"cmekKeyName":{}}`)), field: "metadata.spec.cmekKeyName must be a string"},
		{name: "replicationLocations not a list", raw: string(metadataJSON(`{"replicationLocations":"us"}`)), field: "metadata.spec.replicationLocations must be a list of strings"},
		{name: "managed-by label", raw: string(metadataJSON(`{"labels":{"managed-by":"external-secrets"}}`)), field: "metadata.spec.labels cannot set managed-by"},
		{name: "managed-by label of another value", raw: string(metadataJSON(`{"labels":{"managed-by":"` + secretish + `"}}`)), field: "metadata.spec.labels cannot set managed-by"},
		{name: "unknown mergePolicy", raw: string(metadataJSON(`{"mergePolicy":"` + secretish + `"}`)), field: "metadata.spec.mergePolicy"},
		{name: "mergePolicy is case-sensitive", raw: string(metadataJSON(`{"mergePolicy":"merge"}`)), field: "metadata.spec.mergePolicy"},
		{name: "empty topic", raw: string(metadataJSON(`{"topics":["projects/p/topics/t",""]}`)), field: "metadata.spec.topics[1]"},
		{name: "empty location", raw: string(metadataJSON(`{"replicationLocations":[""]}`)), field: "metadata.spec.replicationLocations[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePushMetadata([]byte(tt.raw))
			if tt.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				assertMetadata(t, got, tt.want)
				return
			}
			if err == nil {
				t.Fatalf("accepted as %+v; want a refusal naming %s", got, tt.field)
			}
			wantErr(t, err, provider.ErrInvalidPush)
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
		})
	}
}

func assertMetadata(t *testing.T, got, want pushMetadata) {
	t.Helper()
	if !maps.Equal(got.Labels, want.Labels) || !maps.Equal(got.Annotations, want.Annotations) || got.MergePolicy != want.MergePolicy ||
		!slices.Equal(got.Topics, want.Topics) || got.CMEKKeyName != want.CMEKKeyName || !slices.Equal(got.Locations, want.Locations) {
		t.Fatalf("parsed %+v; want %+v", got, want)
	}
}

func TestCheckMetadataForStore(t *testing.T) {
	tests := []struct {
		name     string
		m        pushMetadata
		regional bool
		refused  bool
	}{
		{name: "locations in a global store", m: pushMetadata{Locations: []string{"us-east1"}}},
		{name: "locations in a regional store", m: pushMetadata{Locations: []string{"us-east1"}}, regional: true, refused: true},
		{name: "CMEK in a regional store", m: pushMetadata{CMEKKeyName: "k"}, regional: true},
		{name: "labels in a regional store", m: pushMetadata{Labels: map[string]string{"a": "b"}}, regional: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkMetadataForStore(tt.m, tt.regional)
			if tt.refused != (err != nil) {
				t.Fatalf("error = %v; want refused %v", err, tt.refused)
			}
			if err != nil && (!errors.Is(err, provider.ErrInvalidPush) || !strings.Contains(err.Error(), "metadata.spec.replicationLocations")) {
				t.Fatalf("error %q does not wrap ErrInvalidPush naming the field", err)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	const key = "projects/p/locations/us/keyRings/r/cryptoKeys/k"
	managedOnly := map[string]string{provider.ManagedByKey: provider.ManagedByValue}
	tests := []struct {
		name     string
		m        *pushMetadata
		regional bool
		labels   map[string]string
		// replication: "automatic", "user-managed" or "" (none).
		replication string
		locations   []string
		// cmek is the key on every replica, or on a regional secret.
		cmek string
	}{
		{name: "no metadata", labels: managedOnly, replication: "automatic"},
		{name: "no metadata, regional", regional: true, labels: managedOnly},
		{name: "labels keep the mark", m: &pushMetadata{Labels: map[string]string{"team": "a"}},
			labels: map[string]string{"team": "a", provider.ManagedByKey: provider.ManagedByValue}, replication: "automatic"},
		{name: "locations", m: &pushMetadata{Locations: []string{"us-east1", "us-west1"}}, labels: managedOnly, replication: "user-managed", locations: []string{"us-east1", "us-west1"}},
		{name: "locations with CMEK", m: &pushMetadata{Locations: []string{"us-east1"}, CMEKKeyName: key}, labels: managedOnly, replication: "user-managed", locations: []string{"us-east1"}, cmek: key},
		{name: "CMEK alone keeps automatic replication", m: &pushMetadata{CMEKKeyName: key}, labels: managedOnly, replication: "automatic", cmek: key},
		{name: "CMEK of a regional secret", m: &pushMetadata{CMEKKeyName: key}, regional: true, labels: managedOnly, cmek: key},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec := newSecret(tt.m, tt.regional)
			if !maps.Equal(sec.GetLabels(), tt.labels) {
				t.Fatalf("labels = %v; want %v", sec.GetLabels(), tt.labels)
			}
			r := sec.GetReplication()
			switch tt.replication {
			case "automatic":
				if r.GetAutomatic() == nil {
					t.Fatalf("replication = %v; want automatic", r)
				}
				if got := r.GetAutomatic().GetCustomerManagedEncryption().GetKmsKeyName(); got != tt.cmek {
					t.Fatalf("automatic replication's key = %q; want %q", got, tt.cmek)
				}
			case "user-managed":
				var locs []string
				for _, rep := range r.GetUserManaged().GetReplicas() {
					locs = append(locs, rep.GetLocation())
					if got := rep.GetCustomerManagedEncryption().GetKmsKeyName(); got != tt.cmek {
						t.Fatalf("replica %s's key = %q; want %q", rep.GetLocation(), got, tt.cmek)
					}
				}
				if !slices.Equal(locs, tt.locations) {
					t.Fatalf("replicas = %v; want %v", locs, tt.locations)
				}
			default:
				if r != nil {
					t.Fatalf("replication = %v; want none (a regional secret)", r)
				}
				if got := sec.GetCustomerManagedEncryption().GetKmsKeyName(); got != tt.cmek {
					t.Fatalf("the regional secret's key = %q; want %q", got, tt.cmek)
				}
			}
		})
	}
}

func TestWantMetadata(t *testing.T) {
	mark := map[string]string{provider.ManagedByKey: provider.ManagedByValue}
	with := func(m map[string]string) map[string]string {
		out := maps.Clone(m)
		maps.Copy(out, mark)
		return out
	}
	current := with(map[string]string{"owner": "kcc", "team": "old"})
	tests := []struct {
		name        string
		m           pushMetadata
		labels      map[string]string
		annotations map[string]string
	}{
		{name: "Replace drops the other labels", m: pushMetadata{Labels: map[string]string{"team": "new"}}, labels: with(map[string]string{"team": "new"})},
		{name: "Replace without labels keeps only the mark", m: pushMetadata{MergePolicy: "Replace"}, labels: mark},
		{name: "Merge keeps the other labels; a label the secret has keeps its value (ESO)", m: pushMetadata{MergePolicy: "Merge", Labels: map[string]string{"team": "new", "env": "prod"}},
			labels: with(map[string]string{"owner": "kcc", "team": "old", "env": "prod"})},
		{name: "annotations are replaced, also with Merge", m: pushMetadata{MergePolicy: "Merge", Annotations: map[string]string{"a": "1"}},
			labels: current, annotations: map[string]string{"a": "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			labels, annotations := wantMetadata(tt.m, current)
			if !maps.Equal(labels, tt.labels) || !maps.Equal(annotations, tt.annotations) {
				t.Fatalf("labels %v, annotations %v; want %v, %v", labels, annotations, tt.labels, tt.annotations)
			}
		})
	}
	if current["team"] != "old" || len(current) != 3 {
		t.Fatal("wantMetadata changed the secret's labels it was given")
	}
}

// A push with metadata creates the secret with its labels, annotations,
// user-managed replication and CMEK key, as the emulator keeps them; the
// same push again changes nothing (no UpdateSecret, which the emulator does
// not implement), and a new value adds a version.
func TestPushMetadataOnCreate(t *testing.T) {
	e := newPushEnv(t)
	const key = "projects/p1/locations/us-east1/keyRings/r/cryptoKeys/k"
	meta := metadataJSON(`{"labels":{"team":"payments"},"annotations":{"owner":"alice"},"mergePolicy":"Merge","replicationLocations":["us-east1","us-west1"],"cmekKeyName":"` + key + `"}`)
	if err := e.c.CheckPushMetadata(meta); err != nil {
		t.Fatalf("CheckPushMetadata: %v", err)
	}
	ref := provider.PushRef{RemoteKey: "db"}
	v := provider.PushValue{SecretKey: "password", Value: []byte(canary), Metadata: meta}
	if !e.push(ref, v) {
		t.Fatal("the first push wrote nothing")
	}
	s := e.secret("db")
	if want := map[string]string{"team": "payments", provider.ManagedByKey: provider.ManagedByValue}; !maps.Equal(s.GetLabels(), want) {
		t.Fatalf("labels = %v; want %v", s.GetLabels(), want)
	}
	if want := map[string]string{"owner": "alice"}; !maps.Equal(s.GetAnnotations(), want) {
		t.Fatalf("annotations = %v; want %v", s.GetAnnotations(), want)
	}
	var locs []string
	for _, r := range s.GetReplication().GetUserManaged().GetReplicas() {
		locs = append(locs, r.GetLocation())
		if r.GetCustomerManagedEncryption().GetKmsKeyName() != key {
			t.Fatalf("replica %s has key %q; want the metadata's cmekKeyName", r.GetLocation(), r.GetCustomerManagedEncryption().GetKmsKeyName())
		}
	}
	if !slices.Equal(locs, []string{"us-east1", "us-west1"}) {
		t.Fatalf("replication = %v; want user-managed in us-east1 and us-west1", s.GetReplication())
	}
	if e.push(ref, v) {
		t.Fatal("the same push again wrote")
	}
	v.Value = []byte(canary + "-2")
	if !e.push(ref, v) {
		t.Fatal("a new value with the same metadata wrote nothing")
	}
	if got, ver := e.latest("db"); got != canary+"-2" || ver != "2" {
		t.Fatalf("latest is version %s; want the new value as version 2", ver)
	}
}

// A push whose metadata asks other labels than the secret has calls
// UpdateSecret before adding a version. The emulator does not implement
// UpdateSecret (Unimplemented): this shows the call is made and that a
// failed update adds no version; the update itself is not tested here.
func TestPushMetadataUpdatesLabelsBeforeAddingAVersion(t *testing.T) {
	e := newPushEnv(t)
	ref := provider.PushRef{RemoteKey: "db"}
	e.push(ref, provider.PushValue{SecretKey: "k", Value: []byte(canary), Metadata: metadataJSON(`{"labels":{"team":"a"}}`)})
	ctx := testContext(t)
	st := e.inspect(ref)
	_, err := e.c.Push(ctx, ref, provider.PushValue{SecretKey: "k", Value: []byte(canary + "-2"), Metadata: metadataJSON(`{"labels":{"team":"b"}}`)}, st)
	assertNoCanary(t, err)
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("error = %v; want the emulator's Unimplemented UpdateSecret", err)
	}
	if !strings.Contains(err.Error(), "labels and annotations") {
		t.Fatalf("error %q does not say what failed", err)
	}
	if _, ver := e.latest("db"); ver != "1" {
		t.Fatalf("latest version = %s; a failed label update added a version", ver)
	}
	// A push without metadata leaves the labels alone, so it needs no update.
	st = e.inspect(ref)
	if _, err := e.c.Push(ctx, ref, provider.PushValue{SecretKey: "k", Value: []byte(canary + "-2")}, st); err != nil {
		t.Fatalf("a push without metadata: %v", err)
	}
	if got := e.secret("db").GetLabels()["team"]; got != "a" {
		t.Fatalf("label team = %q; a push without metadata changed it", got)
	}
}

// Metadata a push cannot honour is refused before anything is written.
func TestPushMetadataRefusals(t *testing.T) {
	srv := gcpsmemulator.Start(t)
	global := pushClient(t, srv, &esv1.GCPSMProvider{ProjectID: "p1"})
	regional := pushClient(t, srv, &esv1.GCPSMProvider{ProjectID: "p1", Location: "europe-west1"})
	tests := []struct {
		name  string
		c     *Client
		ref   provider.PushRef
		meta  []byte
		field string
	}{
		{name: "metadata with a property (ESO refuses both)", c: global, ref: provider.PushRef{RemoteKey: "a", Property: "p"}, meta: metadataJSON(`{"labels":{"x":"y"}}`), field: "remoteRef.property"},
		{name: "replication locations in a regional store", c: regional, ref: provider.PushRef{RemoteKey: "b"}, meta: metadataJSON(`{"replicationLocations":["us-east1"]}`), field: "metadata.spec.replicationLocations"},
		{name: "the managed-by label", c: global, ref: provider.PushRef{RemoteKey: "c"}, meta: metadataJSON(`{"labels":{"managed-by":"` + canary + `"}}`), field: "managed-by"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testContext(t)
			st, err := tt.c.Inspect(ctx, tt.ref)
			if err != nil {
				t.Fatal(err)
			}
			_, err = tt.c.Push(ctx, tt.ref, provider.PushValue{SecretKey: "k", Value: []byte(canary), Metadata: tt.meta}, st)
			wantErr(t, err, provider.ErrInvalidPush)
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("error %q does not name %s", err, tt.field)
			}
			for _, name := range []string{"projects/p1/secrets/" + tt.ref.RemoteKey, "projects/p1/locations/europe-west1/secrets/" + tt.ref.RemoteKey} {
				if _, err := srv.Client.GetSecret(ctx, &secretmanagerpb.GetSecretRequest{Name: name}); status.Code(err) != codes.NotFound {
					t.Fatalf("%s was created: %v", name, err)
				}
			}
		})
	}
	if err := regional.CheckPushMetadata(metadataJSON(`{"replicationLocation":"us-east1"}`)); !errors.Is(err, provider.ErrInvalidPush) {
		t.Fatalf("CheckPushMetadata of a regional store took replicationLocation: %v", err)
	}
	if err := regional.CheckPushMetadata(metadataJSON(`{"cmekKeyName":"k","labels":{"a":"b"}}`)); err != nil {
		t.Fatalf("CheckPushMetadata of a regional store refused CMEK and labels: %v", err)
	}
}

// The parser never panics, refuses only with ErrInvalidPush, never quotes
// a value it refuses, and what it accepts keeps the rules (no managed-by
// label, a known mergePolicy, no empty topic or location).
func FuzzParsePushMetadata(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":"PushSecretMetadata","spec":{"mergePolicy":"Merge","labels":{"anotherLabel":"anotherValue"}}}`), "x")
	f.Add(metadataJSON(`{"labels":{"a":"b"},"annotations":{"c":"d"},"topics":["t"],"cmekKeyName":"k","replicationLocations":["l"],"replicationLocation":"m"}`), "Merge")
	f.Add([]byte(`null`), "")
	f.Add([]byte(`{"apiVersion":1}`), "\x00")
	f.Add(metadataJSON(`{"Labels":{}}`), `"}`)
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
			if _, ok := m.Labels[provider.ManagedByKey]; ok {
				t.Fatal("accepted a managed-by label")
			}
			if m.MergePolicy != "" && m.MergePolicy != "Replace" && m.MergePolicy != "Merge" {
				t.Fatal("accepted an unknown mergePolicy")
			}
			if slices.Contains(m.Topics, "") || slices.Contains(m.Locations, "") {
				t.Fatal("accepted an empty topic or location")
			}
			sec := newSecret(&m, false)
			if sec.GetLabels()[provider.ManagedByKey] != provider.ManagedByValue {
				t.Fatal("a created secret lacks the mark")
			}
			if l, _ := wantMetadata(m, map[string]string{"x": "y"}); l[provider.ManagedByKey] != provider.ManagedByValue {
				t.Fatal("an updated secret lacks the mark")
			}
		}
		check(raw)
		// The value (marked) in every place a value goes.
		q, err := jsonString([]byte(marker + value))
		if err != nil {
			return
		}
		v := string(q)
		for _, spec := range []string{
			`{"labels":{"a":` + v + `}}`, `{"labels":{"managed-by":` + v + `}}`, `{"annotations":{"a":` + v + `}}`,
			`{"mergePolicy":` + v + `}`, `{"topics":[` + v + `,""]}`, `{"cmekKeyName":` + v + `}`,
			`{"replicationLocation":` + v + `}`, `{"replicationLocations":[` + v + `]}`, `{"labels":[` + v + `]}`, v,
		} {
			check(metadataJSON(spec))
		}
		check([]byte(`{"apiVersion":` + v + `,"kind":"PushSecretMetadata"}`))
		check([]byte(`{"apiVersion":"kubernetes.external-secrets.io/v1alpha1","kind":` + v + `}`))
	})
}
